//! The engine actor's gate handlers (SPEC T1.3, T1.1): the app's start and stop, and what
//! the pure gate policy (`terminal::gate`) decides when its timer expires — a recognition
//! flow in gate mode (the same maps, no credential) or a heartbeat.

use super::Actor;
use crate::error::{Error, Result};
use crate::terminal::gate::GateAction;
use crate::terminal::verify::Input;

impl Actor {
    /// The app starts the gate; refused while a payment flow runs.
    pub(super) fn start_gate(&mut self) -> Result<()> {
        if self.flow.as_ref().is_some_and(|c| !c.flow.is_gate()) {
            return Err(Error::FlowBusy);
        }
        self.gate.start(self.now());
        Ok(())
    }

    /// The app stops the gate: its running flow stops too (T7.7).
    pub(super) fn stop_gate(&mut self) {
        self.gate.stop();
        if let Some(id) = self.flow.as_ref().filter(|c| c.flow.is_gate()).map(|c| c.flow.id) {
            let _ = self.flow_event(Some(id), Input::Stop);
        }
    }

    /// The gate's timer expired: a heartbeat and/or the next flow.
    pub(super) fn on_gate_timer(&mut self) {
        let now = self.now();
        let (open, idle) = (self.is_open(), self.flow.is_none());
        for a in self.gate.poll(now, open, idle) {
            match a {
                // T1.3: a gate waits for faces without any call of its own, so a heartbeat
                // finds a restarted service within seconds (T1.1).
                GateAction::Heartbeat => self.spawn_check(),
                GateAction::StartFlow if self.auth.valid(now).is_some() => self.start_flow(None, None),
                GateAction::StartFlow => self.gate.on_start_deferred(now),
            }
        }
    }
}
