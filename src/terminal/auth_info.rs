//! The authinfo cache (SPEC T3). Pure: it takes `now` (monotonic) and `wall` and says
//! whether the cached authinfo is valid (T3.1), when to refresh it ahead of expiry — at
//! the configured share of its life and at most every hour (T3.2) — and how it is
//! persisted and restored (T3.3). Expiry runs on monotonic time since the fetch, so a
//! wall-clock jump cannot fool it (T3.4); the wall time of the fetch is stored only to
//! restore the age after a restart, and a wall clock that went backwards makes the
//! persisted entry untrusted. A `ConfigMismatch` (T3.5) stops refreshes for good.

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::clock::{backoff, from_unix_ms, unix_ms};
use crate::error::Secret;
use crate::terminal::backend::AuthInfoGrant;

/// Persisted under this key of the store's `kv` table.
pub const STORE_KEY: &str = "terminal.authinfo";
/// An authinfo is not handed out in its last minute: a flow must finish with it.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(60);
/// T3.2: refresh at least every hour.
pub const MAX_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct Cached {
    pub authinfo: Secret,
    pub ttl: Duration,
    pub fetched_at: Instant,
}

/// The persisted form (T3.3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Persisted {
    pub authinfo: Secret,
    pub expires_in_s: u64,
    pub fetched_unix_ms: i64,
    /// The organisation it was fetched for: a different configuration must not reuse it.
    pub organization_id: String,
}

#[derive(Debug, Clone)]
pub struct AuthCache {
    entry: Option<Cached>,
    refresh_percent: u8,
    default_ttl: Duration,
    /// When a failed fetch may be retried.
    retry_at: Option<Instant>,
    failures: u32,
    /// T3.5: a configuration error, never retried.
    mismatch: bool,
}

impl AuthCache {
    pub fn new(refresh_percent: u8, default_ttl: Duration) -> Self {
        AuthCache { entry: None, refresh_percent, default_ttl, retry_at: None, failures: 0, mismatch: false }
    }

    /// T3.1: the authinfo a flow may use now, if any.
    pub fn valid(&self, now: Instant) -> Option<&Secret> {
        self.entry.as_ref().filter(|c| now + SAFETY_MARGIN < c.fetched_at + c.ttl).map(|c| &c.authinfo)
    }

    /// Remaining validity, for health reports.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.entry.as_ref().map(|c| (c.fetched_at + c.ttl).saturating_duration_since(now))
    }

    /// T3.2: when the next fetch is due (`None` after a mismatch).
    pub fn refresh_at(&self) -> Option<Instant> {
        if self.mismatch {
            return None;
        }
        let ahead = self.entry.as_ref().map(|c| {
            let share = c.ttl.mul_f64(f64::from(self.refresh_percent) / 100.0).min(MAX_REFRESH_INTERVAL);
            c.fetched_at + share
        });
        match (ahead, self.retry_at) {
            (Some(a), Some(r)) => Some(a.max(r)),
            (Some(a), None) => Some(a),
            (None, r) => r,
        }
    }

    /// True when a fetch should start now (no entry and no pending retry, or refresh due).
    pub fn fetch_due(&self, now: Instant) -> bool {
        !self.mismatch && self.refresh_at().is_none_or(|t| now >= t)
    }

    pub fn is_mismatch(&self) -> bool {
        self.mismatch
    }

    /// A fetch answered: cache it and return what to persist.
    pub fn on_fetched(&mut self, g: AuthInfoGrant, organization_id: &str, now: Instant, wall: SystemTime) -> Persisted {
        let ttl = if g.expires_in == 0 { self.default_ttl } else { Duration::from_secs(g.expires_in) };
        self.failures = 0;
        self.retry_at = None;
        self.entry = Some(Cached { authinfo: g.authinfo.clone(), ttl, fetched_at: now });
        Persisted {
            authinfo: g.authinfo,
            expires_in_s: ttl.as_secs(),
            fetched_unix_ms: unix_ms(wall),
            organization_id: organization_id.to_string(),
        }
    }

    /// A fetch failed: retry with bounded exponential backoff (keeps a still-valid entry).
    pub fn on_failed(&mut self, now: Instant, initial: Duration, max: Duration) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let delay = backoff(initial, max, self.failures - 1);
        self.retry_at = Some(now + delay);
        delay
    }

    /// T3.5: the organisation does not belong to the merchant; stop fetching.
    pub fn on_mismatch(&mut self) {
        self.mismatch = true;
        self.entry = None;
    }

    /// T3.3/T3.4: restore a persisted entry. Its age is the wall time elapsed since the
    /// fetch; an entry from another organisation, or from the future (the wall clock went
    /// back), or already expired is not trusted.
    pub fn restore(&mut self, p: Persisted, organization_id: &str, now: Instant, wall: SystemTime) -> bool {
        if p.organization_id != organization_id || p.authinfo.is_empty() {
            return false;
        }
        let fetched_wall = from_unix_ms(p.fetched_unix_ms);
        let Ok(age) = wall.duration_since(fetched_wall) else { return false };
        let ttl = Duration::from_secs(p.expires_in_s);
        if age + SAFETY_MARGIN >= ttl {
            return false;
        }
        let Some(fetched_at) = now.checked_sub(age) else { return false };
        self.entry = Some(Cached { authinfo: p.authinfo, ttl, fetched_at });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(s: u64) -> AuthInfoGrant {
        AuthInfoGrant { authinfo: Secret::new("ai"), expires_in: s }
    }

    #[test]
    fn t3_1_valid_entry_is_reused_until_its_last_minute() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut c = AuthCache::new(50, Duration::from_secs(3600));
        assert!(c.valid(now).is_none() && c.fetch_due(now));
        c.on_fetched(grant(3600), "org", now, wall);
        assert!(c.valid(now + Duration::from_secs(3500)).is_some());
        assert!(c.valid(now + Duration::from_secs(3541)).is_none());
    }

    #[test]
    fn t3_2_refresh_ahead_at_half_life_and_at_most_hourly() {
        let now = Instant::now();
        let mut c = AuthCache::new(50, Duration::from_secs(3600));
        c.on_fetched(grant(3600), "org", now, SystemTime::now());
        assert_eq!(c.refresh_at(), Some(now + Duration::from_secs(1800)));
        assert!(!c.fetch_due(now + Duration::from_secs(1799)));
        assert!(c.fetch_due(now + Duration::from_secs(1800)));
        // A long-lived authinfo is still refreshed every hour.
        c.on_fetched(grant(6 * 3600), "org", now, SystemTime::now());
        assert_eq!(c.refresh_at(), Some(now + MAX_REFRESH_INTERVAL));
        // A failed refresh keeps the valid entry and backs off.
        let d = c.on_failed(now + MAX_REFRESH_INTERVAL, Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(d, Duration::from_secs(1));
        assert!(c.valid(now + MAX_REFRESH_INTERVAL).is_some());
        let d = c.on_failed(now + MAX_REFRESH_INTERVAL, Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(d, Duration::from_secs(2));
    }

    #[test]
    fn t3_3_persisted_entry_restores_with_its_age() {
        let now = Instant::now() + Duration::from_secs(10_000);
        let wall = from_unix_ms(1_795_392_000_000);
        let mut a = AuthCache::new(50, Duration::from_secs(3600));
        let p = a.on_fetched(grant(3600), "org", now, wall);
        let json = serde_json::to_string(&p).expect("json");
        let mut b = AuthCache::new(50, Duration::from_secs(3600));
        let later = wall + Duration::from_secs(1000);
        assert!(b.restore(serde_json::from_str(&json).expect("parse"), "org", now, later));
        assert_eq!(b.remaining(now), Some(Duration::from_secs(2600)));
        assert!(!b.fetch_due(now), "restored within validity: no network needed");
        // Another organisation never reuses it.
        let mut c = AuthCache::new(50, Duration::from_secs(3600));
        assert!(!c.restore(p.clone(), "other-org", now, later));
        // Expired while the device was off.
        assert!(!c.restore(p, "org", now, wall + Duration::from_secs(3600)));
    }

    #[test]
    fn t3_4_wall_clock_jumps_do_not_fool_expiry() {
        let now = Instant::now() + Duration::from_secs(10_000);
        let wall = SystemTime::now();
        let mut c = AuthCache::new(50, Duration::from_secs(3600));
        let p = c.on_fetched(grant(3600), "org", now, wall);
        // In memory, only monotonic time counts: a wall jump of a day changes nothing.
        assert!(c.valid(now + Duration::from_secs(60)).is_some());
        // A persisted entry seen with a wall clock that went backwards is not trusted.
        let mut r = AuthCache::new(50, Duration::from_secs(3600));
        assert!(!r.restore(p, "org", now, wall - Duration::from_secs(5)));
    }

    #[test]
    fn t3_5_mismatch_stops_fetching() {
        let now = Instant::now();
        let mut c = AuthCache::new(50, Duration::from_secs(3600));
        c.on_mismatch();
        assert!(c.is_mismatch());
        assert!(!c.fetch_due(now + Duration::from_secs(1_000_000)));
        assert_eq!(c.refresh_at(), None);
    }
}
