//! Time, one abstraction for every product. Policy types take `now: Instant` (or Unix
//! time) as an argument; the runtimes ask a [`Clock`] — the terminal engine and its outbox,
//! the merchant deduction engine, reconciliation. Monotonic time (`Instant`) decides
//! expiry and deadlines (T3.4: wall-clock jumps cannot fool it); wall time (`SystemTime`)
//! is for persistence, signatures, business days and the local-time restart window (T8).
//!
//! [`SystemClock`]'s monotonic time keeps counting while the device sleeps: `Instant` is
//! CLOCK_MONOTONIC, which stops during suspend, so after a night in suspend an authinfo
//! that expired would still count as valid. It adds the time spent suspended
//! (CLOCK_BOOTTIME − CLOCK_MONOTONIC, which only grows during suspend) to tokio's clock,
//! so `start_paused` tests still step it. [`ManualClock`] is stepped by hand (its `sleep`
//! jumps ahead instead of waiting); [`VirtualClock`] follows tokio's paused clock on
//! both axes (the demo's virtual day); [`ScaledClock`] shortens waits for load and crash
//! tests while reading real time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::wire::BoxFut;

pub trait Clock: Send + Sync + 'static {
    /// Monotonic now (keeps counting while the device is suspended, for [`SystemClock`]).
    fn now(&self) -> Instant;
    /// Wall-clock now.
    fn wall(&self) -> SystemTime;
    /// Waits `d` of this clock's time.
    fn sleep(&self, d: Duration) -> BoxFut<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// tokio's monotonic clock (pausable in tests) plus the time spent suspended, and the
/// system wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        let t = tokio::time::Instant::now().into_std();
        t + suspended_as_of(t)
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How often (in the monotonic time of `now()`) the suspend gap is read again. Reading it
/// costs two more clock reads, too many for every `now()` on the engine's hot path; the
/// gap only grows across a suspend, so after a resume it is counted at most this late.
const SUSPEND_RECHECK: Duration = Duration::from_millis(100);

/// [`suspended`], read again only when `SUSPEND_RECHECK` of monotonic time has passed
/// since the last read (`t` is the caller's tokio-clock now). Never decreases (the largest
/// value read is kept), so `now()` stays monotonic.
fn suspended_as_of(t: Instant) -> Duration {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    static LAST_NS: AtomicU64 = AtomicU64::new(u64::MAX);
    static CACHED_MS: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(|| t);
    let ns = t.saturating_duration_since(base).as_nanos().min(u64::MAX as u128 - 1) as u64;
    let last = LAST_NS.load(Ordering::Relaxed);
    if last == u64::MAX || ns.saturating_sub(last) >= SUSPEND_RECHECK.as_nanos() as u64 {
        LAST_NS.store(ns, Ordering::Relaxed);
        CACHED_MS.fetch_max(suspended().as_millis() as u64, Ordering::Relaxed);
    }
    Duration::from_millis(CACHED_MS.load(Ordering::Relaxed))
}

/// Time spent in suspend since the process first asked, in whole milliseconds, as read
/// now (it may jitter down by a millisecond; [`suspended_as_of`] keeps the largest).
fn suspended() -> Duration {
    static BASE_NS: AtomicU64 = AtomicU64::new(u64::MAX);
    let Some(gap) = boottime_gap_ns() else { return Duration::ZERO };
    let base = match BASE_NS.compare_exchange(u64::MAX, gap, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => gap,
        Err(b) => b,
    };
    // Two clock reads a few nanoseconds apart jitter; whole milliseconds hide that.
    Duration::from_millis(gap.saturating_sub(base) / 1_000_000)
}

/// CLOCK_BOOTTIME − CLOCK_MONOTONIC in nanoseconds: the time the system spent suspended
/// since boot (Linux and Android; elsewhere `None`, and suspend is not counted).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn boottime_gap_ns() -> Option<u64> {
    fn read(id: libc::clockid_t) -> Option<u64> {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes only into it.
        let rc = unsafe { libc::clock_gettime(id, &mut ts) };
        (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }
    let mono = read(libc::CLOCK_MONOTONIC)?;
    let boot = read(libc::CLOCK_BOOTTIME)?;
    Some(boot.saturating_sub(mono))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn boottime_gap_ns() -> Option<u64> {
    None
}

/// A clock moved by hand: `advance` moves both clocks, `jump_wall` moves the wall clock
/// only, and `sleep` advances the clock by the time asked and returns at once (a test of
/// a 24 h retry window runs instantly).
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<(Instant, SystemTime)>>,
}

impl ManualClock {
    pub fn new(wall: SystemTime) -> Self {
        ManualClock { inner: Arc::new(Mutex::new((Instant::now(), wall))) }
    }
    /// Starting at this many Unix seconds.
    pub fn at_unix_s(s: u64) -> Self {
        Self::new(UNIX_EPOCH + Duration::from_secs(s))
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
    fn sleep(&self, d: Duration) -> BoxFut<'static, ()> {
        self.advance(d);
        Box::pin(std::future::ready(()))
    }
}

/// Real time with every wait scaled to `ms_per_s` milliseconds per second asked (1000 =
/// real waits). For load and crash tests of retry policies whose waits are minutes long.
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    pub ms_per_s: u64,
}

impl Clock for ScaledClock {
    fn now(&self) -> Instant {
        SystemClock.now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, d: Duration) -> BoxFut<'static, ()> {
        let scaled = d.as_micros().saturating_mul(self.ms_per_s as u128) / 1000;
        Box::pin(tokio::time::sleep(Duration::from_micros(scaled.min(u64::MAX as u128) as u64)))
    }
}

/// Whole seconds since the Unix epoch (0 for times before it).
pub fn unix_s(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
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

    #[tokio::test]
    async fn manual_clock_sleep_jumps_ahead_and_scaled_clock_shortens_waits() {
        let c = ManualClock::at_unix_s(1_000);
        c.sleep(Duration::from_secs(3600)).await;
        assert_eq!(unix_s(c.wall()), 4_600);
        let real = Instant::now();
        ScaledClock { ms_per_s: 1 }.sleep(Duration::from_secs(2)).await;
        let took = real.elapsed();
        assert!(took >= Duration::from_millis(2), "waited {took:?}");
    }

    #[test]
    fn system_clock_is_monotonic_and_counts_no_suspend_without_one() {
        let a = SystemClock.now();
        let b = SystemClock.now();
        assert!(b >= a);
        // This process was not suspended between the two reads: no gap is added.
        assert!(suspended() < Duration::from_secs(1));
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
