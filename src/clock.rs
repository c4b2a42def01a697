//! Time. Policy types take `now: Instant` as an argument; the runtime asks a [`Clock`].
//! Monotonic time (`Instant`) decides expiry and deadlines (T3.4: wall-clock jumps cannot
//! fool it); wall time (`SystemTime`) is only for persistence and the local-time restart
//! window (T8). [`SystemClock`] reads tokio's clock so `start_paused` tests step it;
//! [`ManualClock`] is stepped by hand in pure tests.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

pub trait Clock: Send + Sync + 'static {
    /// Monotonic now.
    fn now(&self) -> Instant;
    /// Wall-clock now.
    fn wall(&self) -> SystemTime;
}

/// tokio's monotonic clock (pausable in tests) and the system wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock moved by hand: `advance` moves both clocks, `jump_wall` moves the wall clock only.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<(Instant, SystemTime)>>,
}

impl ManualClock {
    pub fn new(wall: SystemTime) -> Self {
        ManualClock { inner: Arc::new(Mutex::new((Instant::now(), wall))) }
    }
    pub fn advance(&self, d: Duration) {
        let mut g = self.inner.lock();
        g.0 += d;
        g.1 += d;
    }
    pub fn jump_wall(&self, forward: bool, d: Duration) {
        let mut g = self.inner.lock();
        g.1 = if forward { g.1 + d } else { g.1 - d };
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.lock().0
    }
    fn wall(&self) -> SystemTime {
        self.inner.lock().1
    }
}

/// Milliseconds since the Unix epoch (0 for times before it).
/// Capped exponential backoff: `initial · 2^attempt` (0-based), at most `max`. The one
/// schedule behind every retry here: reconnects, authinfo, outbox, recon, deductions.
pub fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    initial.saturating_mul(1u32 << attempt.min(20)).min(max)
}

pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// tokio's monotonic clock and a wall clock that advances with it from a chosen start:
/// under `start_paused` tests and the demo's virtual day, "10 minutes later" is 10
/// minutes later on both clocks.
#[derive(Debug, Clone, Copy)]
pub struct VirtualClock {
    mono_base: tokio::time::Instant,
    wall_base: SystemTime,
}

impl VirtualClock {
    /// Must be created inside a tokio runtime (it reads tokio's clock).
    pub fn starting_at(wall: SystemTime) -> Self {
        VirtualClock { mono_base: tokio::time::Instant::now(), wall_base: wall }
    }

    /// Starts at the current system wall time.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
    fn wall(&self) -> SystemTime {
        self.wall_base + (tokio::time::Instant::now() - self.mono_base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn virtual_wall_time_follows_virtual_time() {
        let c = VirtualClock::starting_at(UNIX_EPOCH + Duration::from_secs(1_000));
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(c.wall(), UNIX_EPOCH + Duration::from_secs(1_600));
    }

    #[test]
    fn manual_clock_wall_jumps_leave_monotonic_time_alone() {
        let c = ManualClock::new(UNIX_EPOCH + Duration::from_secs(100));
        let m = c.now();
        c.jump_wall(false, Duration::from_secs(50));
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now() - m, Duration::from_secs(1));
        assert_eq!(c.wall(), UNIX_EPOCH + Duration::from_secs(51));
    }
}
