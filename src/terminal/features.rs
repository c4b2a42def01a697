//! The feature library monitor (SPEC T4). Pure. Verification is refused until a feature
//! update answered since the current init, success or failure (T4.1, T4.4). The SDK
//! checks `getSdkInfo` periodically (T4.2; the same call is the watchdog's heartbeat) and
//! raises `FeaturesStale` when `last_update_data_time` is older than the threshold (T4.3),
//! once per episode, and `FeaturesFresh` when it recovers.

use std::time::{Duration, Instant, SystemTime};

use crate::clock::unix_ms;
use crate::terminal::face_service::SdkInfo;

/// A change worth an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureAlert {
    /// T4.3: features older than the threshold (`age` None: never updated).
    Stale {
        age: Option<Duration>,
    },
    Fresh,
}

#[derive(Debug, Clone)]
pub struct FeatureMonitor {
    check_every: Duration,
    stale_after: Duration,
    updated_since_init: bool,
    /// `last_update_data_time`, Unix ms, as last reported.
    last_update_ms: Option<i64>,
    stale: bool,
    next_check: Option<Instant>,
}

impl FeatureMonitor {
    pub fn new(check_every: Duration, stale_after: Duration) -> Self {
        FeatureMonitor {
            check_every,
            stale_after,
            updated_since_init: false,
            last_update_ms: None,
            stale: false,
            next_check: None,
        }
    }

    /// A new init: the first update must answer again before verification (T4.1).
    pub fn on_init(&mut self, now: Instant) {
        self.updated_since_init = false;
        self.next_check = Some(now + self.check_every);
    }

    /// T4.4: may a flow start?
    pub fn ready(&self) -> bool {
        self.updated_since_init
    }

    pub fn is_stale(&self) -> bool {
        self.stale
    }

    pub fn last_update_ms(&self) -> Option<i64> {
        self.last_update_ms
    }

    /// A `manualUpdateFaceDatas` answered. On success the library is fresh as of `wall`.
    pub fn on_update_answered(&mut self, ok: bool, wall: SystemTime) -> Option<FeatureAlert> {
        self.updated_since_init = true;
        if ok {
            self.last_update_ms = Some(unix_ms(wall));
            if self.stale {
                self.stale = false;
                return Some(FeatureAlert::Fresh);
            }
        }
        None
    }

    /// When the periodic check is due (T4.2).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_check
    }

    pub fn check_due(&self, now: Instant) -> bool {
        self.next_check.is_some_and(|t| now >= t)
    }

    /// The check was sent; schedule the next one.
    pub fn on_check_sent(&mut self, now: Instant) {
        self.next_check = Some(now + self.check_every);
    }

    /// Stop checking (service down); `on_init` resumes.
    pub fn pause(&mut self) {
        self.next_check = None;
    }

    /// `getSdkInfo` answered: judge the age of the library (T4.3).
    pub fn on_sdk_info(&mut self, info: &SdkInfo, wall: SystemTime) -> Option<FeatureAlert> {
        if let Some(t) = info.last_update_data_time_ms {
            self.last_update_ms = Some(self.last_update_ms.map_or(t, |m| m.max(t)));
        }
        let age = self.last_update_ms.map(|t| Duration::from_millis(u64::try_from(unix_ms(wall) - t).unwrap_or(0)));
        let stale = age.is_none_or(|a| a > self.stale_after);
        match (self.stale, stale) {
            (false, true) => {
                self.stale = true;
                Some(FeatureAlert::Stale { age })
            }
            (true, false) => {
                self.stale = false;
                Some(FeatureAlert::Fresh)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn info(last: Option<SystemTime>) -> SdkInfo {
        SdkInfo { last_update_data_time_ms: last.map(unix_ms), ..SdkInfo::default() }
    }

    #[test]
    fn t4_4_verify_refused_until_first_update_answered() {
        let now = Instant::now();
        let mut m = FeatureMonitor::new(MIN, 10 * MIN);
        m.on_init(now);
        assert!(!m.ready());
        // A failed first update also opens verification (T4.1: success or failure).
        m.on_update_answered(false, SystemTime::now());
        assert!(m.ready());
        m.on_init(now);
        assert!(!m.ready(), "every init needs its own first update");
    }

    #[test]
    fn t4_1_first_update_after_init_records_freshness() {
        let wall = SystemTime::now();
        let mut m = FeatureMonitor::new(MIN, 10 * MIN);
        m.on_init(Instant::now());
        assert_eq!(m.on_update_answered(true, wall), None);
        assert_eq!(m.last_update_ms(), Some(unix_ms(wall)));
    }

    #[test]
    fn t4_2_periodic_check_is_scheduled() {
        let now = Instant::now();
        let mut m = FeatureMonitor::new(MIN, 10 * MIN);
        assert_eq!(m.poll_timeout(), None);
        m.on_init(now);
        assert!(!m.check_due(now + MIN - Duration::from_millis(1)));
        assert!(m.check_due(now + MIN));
        m.on_check_sent(now + MIN);
        assert_eq!(m.poll_timeout(), Some(now + 2 * MIN));
        m.pause();
        assert_eq!(m.poll_timeout(), None);
    }

    #[test]
    fn t4_3_stale_after_ten_minutes_alerts_once_then_fresh() {
        let wall = SystemTime::now();
        let mut m = FeatureMonitor::new(MIN, 10 * MIN);
        m.on_init(Instant::now());
        m.on_update_answered(true, wall);
        assert_eq!(m.on_sdk_info(&info(Some(wall)), wall + 10 * MIN), None, "exactly 10 min is not stale yet");
        let alert = m.on_sdk_info(&info(Some(wall)), wall + 11 * MIN);
        assert_eq!(alert, Some(FeatureAlert::Stale { age: Some(11 * MIN) }));
        assert!(m.is_stale());
        assert_eq!(m.on_sdk_info(&info(Some(wall)), wall + 12 * MIN), None, "one alert per episode");
        // The service's own 90 s refresh (no callback) shows up in getSdkInfo.
        let alert = m.on_sdk_info(&info(Some(wall + 12 * MIN)), wall + 12 * MIN + Duration::from_secs(5));
        assert_eq!(alert, Some(FeatureAlert::Fresh));
        // Never updated at all is stale too.
        let mut n = FeatureMonitor::new(MIN, 10 * MIN);
        assert_eq!(n.on_sdk_info(&info(None), wall), Some(FeatureAlert::Stale { age: None }));
    }
}
