//! Scheduled restart planning (SPEC T8). Pure. Devices restart off-peak, by default in the
//! local window 01:00–03:00 (upgrades before 01:00). The planner names the next window
//! start, and says "restart now" only inside the window and never while a flow runs; a
//! flow that runs into the window only delays the advice. If the window passes without a
//! chance, the next day's window is planned.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;

/// What the planner tells the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartAdvice {
    /// The next restart is planned for this wall time (announced once per plan).
    Planned { at: SystemTime },
    /// Restart the device now: inside the window and no flow runs.
    RestartNow,
}

#[derive(Debug, Clone)]
pub struct RestartPlanner {
    window: (u8, u8),
    utc_offset_s: i64,
    planned: Option<SystemTime>,
    announced: bool,
    advised: bool,
}

fn secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl RestartPlanner {
    pub fn new(window: (u8, u8), utc_offset_minutes: i32) -> Self {
        RestartPlanner {
            window,
            utc_offset_s: i64::from(utc_offset_minutes) * 60,
            planned: None,
            announced: false,
            advised: false,
        }
    }

    fn local_secs_of_day(&self, t: SystemTime) -> i64 {
        (secs(t) + self.utc_offset_s).rem_euclid(DAY)
    }

    fn window_len(&self) -> i64 {
        let (a, b) = self.window;
        (i64::from(b) - i64::from(a)).rem_euclid(24) * 3600
    }

    /// True if `t` is inside the local window.
    pub fn in_window(&self, t: SystemTime) -> bool {
        let start = i64::from(self.window.0) * 3600;
        (self.local_secs_of_day(t) - start).rem_euclid(DAY) < self.window_len()
    }

    /// The start of the next window strictly after the current one (or the current one if
    /// `t` is before its start today).
    pub fn next_window_start(&self, t: SystemTime) -> SystemTime {
        let start = i64::from(self.window.0) * 3600;
        let until = (start - self.local_secs_of_day(t)).rem_euclid(DAY);
        let until = if until == 0 { DAY } else { until };
        t + Duration::from_secs(until as u64)
    }

    pub fn planned(&self) -> Option<SystemTime> {
        self.planned
    }

    /// When the planner wants to be asked again.
    pub fn poll_timeout(&self, now_wall: SystemTime) -> Duration {
        match self.planned {
            Some(p) if !self.advised => {
                p.duration_since(now_wall).unwrap_or(Duration::ZERO).max(Duration::from_secs(1))
            }
            _ => Duration::from_secs(60),
        }
    }

    /// Advance the plan; returns advice to send to the app, if any.
    pub fn poll(&mut self, now: SystemTime, flow_running: bool) -> Option<RestartAdvice> {
        let in_window = self.in_window(now);
        let plan_passed = self.planned.is_some_and(|p| now >= p + Duration::from_secs(self.window_len() as u64));
        if self.planned.is_none() || plan_passed || (self.advised && !in_window) {
            let at =
                if in_window && !self.advised && self.planned.is_none() { now } else { self.next_window_start(now) };
            self.planned = Some(at);
            self.announced = false;
            self.advised = false;
        }
        if !self.announced {
            self.announced = true;
            return Some(RestartAdvice::Planned { at: self.planned.expect("planned above") });
        }
        if in_window && !flow_running && !self.advised && self.planned.is_some_and(|p| now >= p) {
            self.advised = true;
            return Some(RestartAdvice::RestartNow);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23 00:00 Beijing time = 2026-11-22 16:00 UTC.
    fn beijing(h: u64, m: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_392_000 - 8 * 3600 + h * 3600 + m * 60)
    }

    #[test]
    fn t8_plans_the_next_window_in_local_time() {
        let p = RestartPlanner::new((1, 3), 480);
        assert!(!p.in_window(beijing(0, 59)));
        assert!(p.in_window(beijing(1, 0)));
        assert!(p.in_window(beijing(2, 59)));
        assert!(!p.in_window(beijing(3, 0)));
        assert_eq!(p.next_window_start(beijing(14, 0)), beijing(25, 0));
        assert_eq!(p.next_window_start(beijing(0, 30)), beijing(1, 0));
    }

    #[test]
    fn t8_restart_advised_in_window_and_never_during_a_flow() {
        let mut p = RestartPlanner::new((1, 3), 480);
        assert_eq!(p.poll(beijing(14, 0), false), Some(RestartAdvice::Planned { at: beijing(25, 0) }));
        assert_eq!(p.poll(beijing(23, 0), false), None);
        assert_eq!(p.poll(beijing(25, 0), true), None, "a flow runs: wait");
        assert_eq!(p.poll(beijing(25, 10), false), Some(RestartAdvice::RestartNow));
        assert_eq!(p.poll(beijing(25, 20), false), None, "advised once");
        // After the window the next day's restart is planned.
        assert_eq!(p.poll(beijing(27, 0), false), Some(RestartAdvice::Planned { at: beijing(49, 0) }));
    }

    #[test]
    fn t8_busy_through_the_whole_window_moves_to_the_next_day() {
        let mut p = RestartPlanner::new((1, 3), 480);
        p.poll(beijing(12, 0), false);
        assert_eq!(p.poll(beijing(25, 0), true), None);
        assert_eq!(p.poll(beijing(26, 59), true), None);
        assert_eq!(p.poll(beijing(27, 1), false), Some(RestartAdvice::Planned { at: beijing(49, 0) }));
    }
}
