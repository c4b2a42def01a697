//! The engine actor's one timer table (DESIGN "Pure policy, thin runtime"; SPEC T1.1,
//! T1.2, T3.2, T4.2, T6, T7.2, T8 are the deadlines it holds). Each kind of deadline has
//! one slot; after every batch of events the actor copies each policy's next deadline into
//! its slot, sleeps until the earliest ([`TimerTable::next_timeout`]) and, when woken,
//! handles exactly the timers that expired ([`TimerTable::expired`]) instead of polling
//! every policy on every turn of its loop.

use std::time::Instant;

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
