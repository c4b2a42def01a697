//! A [`Clock`] whose wall time follows tokio's (pausable) clock: `wall()` is the wall time
//! at creation plus the tokio time elapsed since. Under `#[tokio::test(start_paused = true)]`
//! `SystemTime::now()` does not move with virtual time, so the simulated face service
//! stamps `last_update_data_time` with this clock by default; then "10 minutes without an
//! update" (SPEC T4.3) means 10 virtual minutes. In real time it tracks `SystemTime::now()`
//! (except for wall-clock jumps, which it ignores).

use std::time::{Instant, SystemTime};

use crate::clock::Clock;

#[derive(Debug, Clone, Copy)]
pub struct VirtualWallClock {
    wall_at_start: SystemTime,
    start: tokio::time::Instant,
}

impl VirtualWallClock {
    /// Starts at the current system wall time and tokio instant.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// Starts at a chosen wall time (reproducible runs).
    pub fn starting_at(wall: SystemTime) -> Self {
        VirtualWallClock { wall_at_start: wall, start: tokio::time::Instant::now() }
    }
}

impl Default for VirtualWallClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for VirtualWallClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
    fn wall(&self) -> SystemTime {
        self.wall_at_start + tokio::time::Instant::now().duration_since(self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn wall_time_follows_virtual_time() {
        let c = VirtualWallClock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000));
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(c.wall(), SystemTime::UNIX_EPOCH + Duration::from_secs(1_600));
    }
}
