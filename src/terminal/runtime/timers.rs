//! The engine actor's one timer table (DESIGN "Pure policy, thin runtime"; SPEC T1.1,
//! T1.2, T3.2, T4.2, T6, T7.2, T8 are the deadlines it holds). Each kind of deadline has
//! one slot; after every batch of events the actor copies each policy's next deadline into
//! its slot, sleeps until the earliest ([`TimerTable::next_timeout`]) and, when woken,
//! handles exactly the timers that expired ([`TimerTable::expired`]) instead of polling
//! every policy on every turn of its loop.

use std::time::{Duration, Instant};

use super::{Actor, TIMER_PASSES};
use crate::clock::unix_ms;
use crate::terminal::health::EngineEvent;
use crate::terminal::restart::RestartAdvice;
use crate::terminal::verify::Input;

/// One kind of deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// The link's next init (backoff, T1.2).
    Link,
    /// The running flow's deadlines (T7.2, first callback T1.1).
    Flow,
    /// The periodic feature check (T4.2).
    Features,
    /// The authinfo refresh ahead of expiry (T3.2).
    AuthRefresh,
    /// A pending preview bind (settle period or a refused bind's back-off, T6).
    Preview,
    /// The gate's next flow or heartbeat (T1.3).
    Gate,
    /// The restart planner (T8).
    Restart,
}

impl Timer {
    const ALL: [Timer; 7] =
        [Timer::Link, Timer::Flow, Timer::Features, Timer::AuthRefresh, Timer::Preview, Timer::Gate, Timer::Restart];
}

/// Every deadline the actor waits for, one slot per [`Timer`].
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TimerTable {
    slots: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    /// Sets (`Some`) or stops (`None`) a timer.
    pub(super) fn set(&mut self, t: Timer, at: Option<Instant>) {
        self.slots[t as usize] = at;
    }

    pub(super) fn get(&self, t: Timer) -> Option<Instant> {
        self.slots[t as usize]
    }

    /// The earliest deadline of all, if any timer is set.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        self.slots.iter().flatten().min().copied()
    }

    /// The timers due at `now`, in the order of [`Timer`]; each is stopped (the actor
    /// sets it again from its policy after handling it).
    pub(super) fn expired(&mut self, now: Instant) -> impl Iterator<Item = Timer> {
        let mut due = [None; Timer::ALL.len()];
        for (i, t) in Timer::ALL.into_iter().enumerate() {
            if self.get(t).is_some_and(|at| at <= now) {
                self.set(t, None);
                due[i] = Some(t);
            }
        }
        due.into_iter().flatten()
    }
}

impl Actor {
    /// The loop's next wake-up: the timer table's earliest deadline (an hour away if no
    /// timer is set, so the loop still turns now and then).
    pub(super) fn next_wake(&self) -> Instant {
        let now = self.now();
        self.timers.next_timeout().unwrap_or(now + Duration::from_secs(3600)).max(now)
    }

    /// Copies every policy's next deadline into the timer table (the restart planner's
    /// slot is kept: it is set when the planner is asked, see `on_timer`).
    pub(super) fn sync_timers(&mut self) {
        let ready = self.life.is_ready();
        // Verification is open: the link is up and the whole start-up sequence answered.
        let open = self.is_open();
        let now = self.now();
        let refresh =
            ready && !self.fetching_auth && !self.refreshing_raw && self.past_rawdata() && !self.auth.is_mismatch();
        let tt = &mut self.timers;
        tt.set(Timer::Link, self.life.poll_timeout());
        tt.set(Timer::Flow, self.flow.as_ref().and_then(|c| c.flow.poll_timeout()));
        tt.set(Timer::Features, open.then(|| self.features.poll_timeout()).flatten());
        // The refresh asks for raw data, which the sequence does itself until it has; with
        // nothing cached and no retry planned, it is due at once (never after T3.5's
        // mismatch: that is a configuration error, not a retry loop).
        tt.set(Timer::AuthRefresh, refresh.then(|| self.auth.refresh_at().unwrap_or(now)));
        tt.set(Timer::Preview, open.then(|| self.preview.poll_timeout()).flatten());
        // Only when it can act: a gate start that waits for the link or the first feature
        // update is resumed by those answers, not by spinning on the clock.
        tt.set(Timer::Gate, self.gate.poll_timeout(open, self.flow.is_none()));
    }

    /// Handles the timers that expired, each by the policy it belongs to; a handler that
    /// makes another timer due at once (a gate start when verification opens) is served in
    /// the same turn, at most [`TIMER_PASSES`] times.
    pub(super) fn on_timers(&mut self) {
        for _ in 0..TIMER_PASSES {
            self.sync_timers();
            let now = self.now();
            if self.timers.next_timeout().is_none_or(|t| t > now) {
                return;
            }
            for t in self.timers.expired(now) {
                self.on_timer(t);
            }
        }
        self.sync_timers();
    }

    pub(super) fn on_timer(&mut self, t: Timer) {
        let now = self.now();
        match t {
            Timer::Link => {
                let a = self.life.poll(now);
                self.link(a);
            }
            Timer::Flow => {
                let _ = self.flow_event(None, Input::Tick);
            }
            Timer::Features => {
                if self.is_open() && self.features.check_due(now) {
                    self.features.on_check_sent(now);
                    // T4.2: our own periodic check; also the watchdog's heartbeat (T1.1).
                    self.spawn_check();
                }
            }
            Timer::AuthRefresh => {
                if self.life.is_ready() && self.past_rawdata() && !self.fetching_auth && self.auth.fetch_due(now) {
                    self.start_refresh();
                }
            }
            Timer::Preview => {
                if let Some(a) = self.preview.poll(now) {
                    self.on_preview(a);
                }
            }
            Timer::Gate => self.on_gate_timer(),
            Timer::Restart => {
                let wall = self.deps.clock.wall();
                match self.restart.poll(wall, self.pay_flow_running()) {
                    Some(RestartAdvice::Planned { at }) => {
                        self.emit(EngineEvent::RestartPlanned { at_unix_ms: unix_ms(at) })
                    }
                    Some(RestartAdvice::RestartNow) => self.emit(EngineEvent::RestartNow),
                    None => {}
                }
                self.timers.set(Timer::Restart, Some(now + self.restart.poll_timeout(wall)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn t1_1_the_next_wake_up_is_the_earliest_timer_and_only_expired_timers_fire() {
        let now = Instant::now();
        let s = Duration::from_secs(1);
        let mut tt = TimerTable::default();
        assert_eq!(tt.next_timeout(), None);
        tt.set(Timer::Restart, Some(now + 3600 * s));
        tt.set(Timer::Flow, Some(now + 40 * s));
        tt.set(Timer::Gate, Some(now + s));
        assert_eq!(tt.next_timeout(), Some(now + s));
        assert_eq!(tt.expired(now).count(), 0, "nothing due yet");
        assert_eq!(tt.expired(now + s).collect::<Vec<_>>(), vec![Timer::Gate]);
        assert_eq!(tt.get(Timer::Gate), None, "an expired timer is stopped");
        assert_eq!(tt.next_timeout(), Some(now + 40 * s));
        tt.set(Timer::Flow, None);
        assert_eq!(tt.next_timeout(), Some(now + 3600 * s));
        tt.set(Timer::Link, Some(now));
        tt.set(Timer::Preview, Some(now));
        assert_eq!(tt.expired(now + 3600 * s).collect::<Vec<_>>(), vec![Timer::Link, Timer::Preview, Timer::Restart]);
        assert_eq!(tt.next_timeout(), None);
    }
}
