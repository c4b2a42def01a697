//! Gate mode (continuous recognition at an access gate, 门禁) as a pure policy (SPEC T1.3,
//! T1.1). While the app wants the gate, it starts a recognition flow whenever verification
//! is open and no flow runs, pauses briefly after each recognition, and sends a heartbeat
//! (`getSdkInfo`) every [`HEARTBEAT`]: a gate waits for faces without any call of its own,
//! so without the heartbeat a restarted service would be found only at the next minute's
//! feature check. A flow that ended because the link was lost is not restarted on the
//! clock: the runtime tells the gate when verification opens again ([`Gate::on_opened`]),
//! and the gate starts at once then (T1.3: no app action after a restart). Time is an
//! argument; [`Gate::poll_timeout`] says when the runtime must call [`Gate::poll`].

use std::time::{Duration, Instant};

/// Pause between a recognition and the next `startVerify`.
pub const PAUSE: Duration = Duration::from_millis(200);
/// The heartbeat period while a gate runs (T1.1, T1.3).
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// What the runtime must do for the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateAction {
    /// Start a recognition flow (gate mode) now.
    StartFlow,
    /// Send the heartbeat (`getSdkInfo`) now.
    Heartbeat,
}

/// How the gate's last flow ended, as far as the gate cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateEnd {
    /// Recognised someone (or failed a recognition): the next flow after [`PAUSE`].
    Done,
    /// The link was lost: the next flow when verification opens again.
    LinkLost,
}

#[derive(Debug, Clone)]
pub struct Gate {
    wanted: bool,
    /// The next flow may start from then on (when verification is open and no flow runs).
    start_at: Option<Instant>,
    /// The next heartbeat is due then (`None` while the gate is stopped).
    check_at: Option<Instant>,
    /// Retry delay when a start was due but could not be made (no authinfo yet).
    retry: Duration,
}

impl Gate {
    pub fn new(retry: Duration) -> Self {
        Gate { wanted: false, start_at: None, check_at: None, retry }
    }

    /// The app wants the gate running.
    pub fn is_running(&self) -> bool {
        self.wanted
    }

    /// The app started the gate: the first flow as soon as verification is open.
    pub fn start(&mut self, now: Instant) {
        self.wanted = true;
        self.start_at = Some(now);
        self.check_at.get_or_insert(now);
    }

    /// The app stopped the gate (or released the service): nothing more is due.
    pub fn stop(&mut self) {
        self.wanted = false;
        self.start_at = None;
        self.check_at = None;
    }

    /// Verification opened (the start-up sequence answered, or the features became
    /// ready): a gate that waits for it starts now.
    pub fn on_opened(&mut self, now: Instant) {
        if self.wanted {
            self.start_at.get_or_insert(now);
        }
    }

    /// The gate's flow ended.
    pub fn on_flow_ended(&mut self, end: GateEnd, now: Instant) {
        if !self.wanted {
            return;
        }
        match end {
            GateEnd::Done => self.start_at = Some(now + PAUSE),
            // Resumed by `on_opened` when the link is back, not by spinning on the clock.
            GateEnd::LinkLost => self.start_at = None,
        }
    }

    /// A start was due but could not be made: try again after the retry delay.
    pub fn on_start_deferred(&mut self, now: Instant) {
        if self.wanted {
            self.start_at = Some(now + self.retry);
        }
    }

    /// When [`Gate::poll`] must run next, given whether verification is open and whether
    /// a flow can start (none is running). `None`: nothing the clock can move.
    pub fn poll_timeout(&self, open: bool, idle: bool) -> Option<Instant> {
        if !self.wanted || !open {
            return None;
        }
        let check = self.check_at;
        let start = self.start_at.filter(|_| idle);
        match (check, start) {
            (Some(c), Some(s)) => Some(c.min(s)),
            (c, s) => c.or(s),
        }
    }

    /// What is due at `now`, given whether verification is open and no flow runs. At
    /// most one heartbeat and one start per call.
    pub fn poll(&mut self, now: Instant, open: bool, idle: bool) -> Vec<GateAction> {
        let mut out = Vec::new();
        if !self.wanted || !open {
            return out;
        }
        if self.check_at.is_some_and(|t| now >= t) {
            self.check_at = Some(now + HEARTBEAT);
            out.push(GateAction::Heartbeat);
        }
        if idle && self.start_at.is_some_and(|t| now >= t) {
            self.start_at = None;
            out.push(GateAction::StartFlow);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn running(now: Instant) -> Gate {
        let mut g = Gate::new(500 * MS);
        g.start(now);
        g
    }

    #[test]
    fn t1_3_a_gate_starts_when_open_and_idle_and_pauses_after_a_recognition() {
        let now = Instant::now();
        let mut g = running(now);
        assert_eq!(g.poll(now, false, true), vec![], "not before verification opens");
        assert_eq!(g.poll(now, true, true), vec![GateAction::Heartbeat, GateAction::StartFlow]);
        assert_eq!(g.poll(now, true, true), vec![], "one start at a time");
        g.on_flow_ended(GateEnd::Done, now);
        assert_eq!(g.poll_timeout(true, true), Some(now + PAUSE));
        assert_eq!(g.poll(now + PAUSE - MS, true, true), vec![]);
        assert_eq!(g.poll(now + PAUSE, true, true), vec![GateAction::StartFlow]);
    }

    #[test]
    fn t1_1_a_running_gate_sends_a_heartbeat_every_period() {
        let now = Instant::now();
        let mut g = running(now);
        g.poll(now, true, false);
        assert_eq!(g.poll_timeout(true, false), Some(now + HEARTBEAT), "a flow runs: only the heartbeat");
        assert_eq!(g.poll(now + HEARTBEAT - MS, true, false), vec![]);
        assert_eq!(g.poll(now + HEARTBEAT, true, false), vec![GateAction::Heartbeat]);
        assert_eq!(g.poll_timeout(false, true), None, "nothing while verification is closed");
    }

    #[test]
    fn t1_3_after_a_lost_link_the_gate_waits_for_verification_to_open_not_for_the_clock() {
        let now = Instant::now();
        let mut g = running(now);
        g.poll(now, true, true);
        g.on_flow_ended(GateEnd::LinkLost, now);
        let later = now + 60_000 * MS;
        assert!(!g.poll(later, true, true).contains(&GateAction::StartFlow));
        g.on_opened(later);
        assert_eq!(g.poll(later, true, true), vec![GateAction::StartFlow]);
    }

    #[test]
    fn t1_3_a_stopped_gate_does_nothing_and_a_deferred_start_is_retried() {
        let now = Instant::now();
        let mut g = running(now);
        g.poll(now, true, true);
        g.on_start_deferred(now);
        assert_eq!(g.poll_timeout(true, true), Some(now + 500 * MS));
        g.stop();
        g.on_opened(now);
        assert_eq!(g.poll(now + HEARTBEAT * 10, true, true), vec![]);
        assert_eq!(g.poll_timeout(true, true), None);
    }
}
