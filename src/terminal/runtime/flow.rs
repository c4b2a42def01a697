//! The engine actor's flow handlers (SPEC T7, T7.8, T7.10, T1.3): starting a flow, feeding
//! the pure verify flow (`terminal::verify`, which holds the flow's whole truth) with app
//! calls, service answers and recognition callbacks, and carrying out what it decides —
//! the vendor calls with the authed map, the answers to waiting callers, the credential
//! into the outbox before the app hears of it (T7.8), and the flow's report.

use std::hash::BuildHasher;
use std::time::Instant;

use super::lifecycle::clone_err;
use super::{ms, Actor, Committed, FlowCtx, Task, Timer};
use crate::clock::unix_ms;
use crate::error::{Error, Result};
use crate::terminal::backend::PaymentRequest;
use crate::terminal::command::{PayRequest, Recognition, Reply};
use crate::terminal::face_service::{
    Credential, CredentialParams, FinishParams, Op, RecognitionEvent, ReturnCode, ServiceEvent, UserInfo, VendorError,
    VerifyParams, ERR_NO_USER_INFO,
};
use crate::terminal::gate::GateEnd;
use crate::terminal::health::{EngineEvent, FlowReport, StageTimings};
use crate::terminal::lifecycle::LossReason;
use crate::terminal::verify::{Action, Flow, FlowId, FlowMode, Input, Outcome};

impl Actor {
    /// Why a flow may not start now.
    pub(super) fn can_start(&self) -> Result<()> {
        if let Some(e) = &self.store_error {
            // T7.8: the credential must go into the outbox; without a store, no flow
            // starts (a credential fetched and then refused would count a lost user).
            return Err(clone_err(e));
        }
        if self.flow.is_some() {
            return Err(Error::FlowBusy);
        }
        if self.gate.is_running() {
            return Err(Error::FlowBusy);
        }
        match self.life.state() {
            crate::terminal::lifecycle::LinkState::Ready => {}
            crate::terminal::lifecycle::LinkState::Disconnected => return Err(Error::ServiceDisconnected),
            _ => return Err(Error::NotInitialised),
        }
        if self.auth.is_mismatch() {
            return Err(Error::ConfigMismatch("organization_id does not belong to mch_id".into()));
        }
        if self.auth.valid(self.now()).is_none() {
            return Err(Error::AuthInfoUnavailable("no valid authinfo yet; fetching".into()));
        }
        // T4.1/T3.6: verification opens when the whole sequence has answered.
        if !self.features.ready() || !self.seq.is_open() {
            return Err(Error::FeaturesNotReady);
        }
        Ok(())
    }

    pub(super) fn start_flow(&mut self, req: Option<PayRequest>, reply: Option<Reply<FlowId>>) {
        let now = self.now();
        let id = FlowId(self.next_id);
        self.next_id += 1;
        let gate = req.is_none();
        let mode = if gate { FlowMode::Gate } else { FlowMode::Pay };
        // `out_trade_no` is the backend's business: startVerify takes the authed map only
        // (T7.10, no invented keys).
        let fee = req.map(|r| r.amount_fen);
        let timeout = (!gate).then(|| ms(self.t.flow_timeout_ms));
        let flow = Flow::new(id, id.0, mode, fee, now, timeout, ms(self.t.first_callback_timeout_ms));
        self.flow = Some(FlowCtx {
            flow,
            start: reply,
            recog_waiters: Vec::new(),
            finish: None,
            cred: None,
            committing: false,
            ended: None,
        });
        let Some(authed) = self.authed.clone() else {
            // can_start checked the authinfo; a gate start checks it too.
            let _ = self.flow_event(Some(id), Input::StartAnswered(Err(VendorError::new(ReturnCode::Error, 0))));
            return;
        };
        let p = VerifyParams { session: id.0, authed };
        self.call(Task::Start(id), Op::StartVerify, false, move |s| async move { s.start_verify(p).await });
    }

    /// The error for waiting on a flow that is not running: how it ended, if it was the
    /// last one.
    pub(super) fn ended_error(&self, id: FlowId) -> Error {
        match &self.last_flow {
            Some(f) if f.id == id => f
                .outcome()
                .and_then(|o| o.error(ms(self.t.flow_timeout_ms)))
                .unwrap_or(Error::OutOfOrder { expected: "Ended", got: "Recognition" }),
            _ => Error::NoSuchFlow(id.0),
        }
    }

    /// Feeds the running flow (or, with `id`, only that flow); carries out the actions.
    pub(super) fn flow_event(&mut self, id: Option<FlowId>, input: Input) -> Result<()> {
        let now = self.now();
        let other = match (&self.flow, id) {
            (None, None) => return Ok(()),
            (None, Some(id)) => Some(id),
            (Some(c), id) => id.filter(|id| *id != c.flow.id),
        };
        if let Some(id) = other {
            // Not the running flow: the last one answers how it ended (or no such flow).
            return match &self.last_flow {
                Some(f) if f.id == id => f.clone().handle(input, now).map(|_| ()).map_err(|(_, e)| e),
                _ => Err(Error::NoSuchFlow(id.0)),
            };
        }
        let Some(mut ctx) = self.flow.take() else { return Ok(()) };
        match ctx.flow.handle(input, now) {
            Ok((f, actions)) => {
                ctx.flow = f;
                self.flow = Some(ctx);
                for a in actions {
                    self.on_flow_action(a);
                }
                Ok(())
            }
            Err((f, e)) => {
                ctx.flow = f;
                self.flow = Some(ctx);
                Err(e)
            }
        }
    }

    pub(super) fn on_service_event(&mut self, ev: ServiceEvent) {
        match ev {
            ServiceEvent::InitCallback { .. } => {
                // T9: the library never re-fires the app's init callback after a reconnect;
                // one that comes anyway changes nothing: the link state is ours.
            }
            ServiceEvent::LateAnswer { op } => {
                // T9: the library answered FAIL on its 10 s timeout and kept the call; its
                // real answer followed. The FAIL counted; this one does not.
                tracing::debug!(?op, "late answer after FAIL dropped");
                self.h.late_answers_dropped += 1;
            }
            ServiceEvent::Recognition { session, event } => {
                if self.flow.as_ref().is_none_or(|c| c.flow.session != session) {
                    return; // a stopped session's late callback
                }
                let input = match event {
                    RecognitionEvent::FirstFrame => Input::FirstFrame,
                    RecognitionEvent::Failed { err_code, need_restart_verify } => {
                        Input::AttemptFailed { err_code, need_restart_verify }
                    }
                    RecognitionEvent::Recognised { need_ext_verify, users, .. } => match users.into_iter().next() {
                        Some(user) => Input::Recognised { need_ext_verify, user },
                        None => Input::AttemptFailed { err_code: ERR_NO_USER_INFO, need_restart_verify: None },
                    },
                };
                let _ = self.flow_event(None, input);
            }
        }
    }

    pub(super) fn on_flow_action(&mut self, a: Action) {
        match a {
            Action::StopVerify => {
                if self.life.is_ready() {
                    self.authed_call(Task::Stop, Op::StopVerify, false, |s, m| async move { s.stop_verify(m).await });
                }
            }
            Action::CallFinish(req) => {
                let id = self.flow.as_ref().map(|c| c.flow.id).expect("a flow asked");
                // T7.10: the authed map (newest authinfo) and the phone if one was entered.
                let sent = self.authed_call(Task::Finish(id), Op::Finish, false, move |s, authed| async move {
                    s.finish_verify(FinishParams { authed, user_phone: req.user_phone }).await
                });
                if !sent {
                    let no_auth = VendorError::new(ReturnCode::Error, 0);
                    let _ = self.flow_event(Some(id), Input::FinishAnswered(Err(no_auth)));
                }
            }
            Action::CallCredential(req) => {
                let id = self.flow.as_ref().map(|c| c.flow.id).expect("a flow asked");
                // T7.10: authed map + user_id (String) + recog_mode (Integer) + total_fee (String).
                let sent = self.authed_call(Task::Credential(id), Op::Credential, false, move |s, authed| async move {
                    let p = CredentialParams {
                        authed,
                        user_id: req.user_id,
                        recog_mode: req.recog_mode,
                        total_fee: req.total_fee,
                    };
                    s.credential(p).await
                });
                if !sent {
                    let no_auth = VendorError::new(ReturnCode::Error, 0);
                    let _ = self.flow_event(Some(id), Input::CredentialAnswered(Err(no_auth)));
                }
            }
            Action::Recognised { user, need_ext_verify } => {
                let Some(c) = self.flow.as_mut() else { return };
                if c.flow.is_gate() {
                    self.emit(EngineEvent::GateRecognised { user_id: user.user_id });
                    return;
                }
                // The flow keeps the user (`Flow::recognised`); the waiters get copies.
                let rec = Recognition { user, need_ext_verify };
                for w in c.recog_waiters.drain(..) {
                    let _ = w.send(Ok(rec.clone()));
                }
            }
            Action::AttemptFailed { err_code } => {
                if let Some(c) = &self.flow {
                    self.emit(EngineEvent::RecognitionFailed { flow_id: c.flow.id, err_code });
                }
            }
            Action::Finished(user) => {
                if let Some(r) = self.flow.as_mut().and_then(|c| c.finish.take()) {
                    let _ = r.send(Ok(user));
                }
            }
            Action::Credentialed { credential, user } => self.on_credential(credential, user),
            Action::ServiceSilent => self.lost(LossReason::NoCallback),
            Action::Ended(outcome) => self.on_flow_ended(outcome),
        }
    }

    /// T7.8: the credential is written to the outbox before the app hears of it.
    pub(super) fn on_credential(&mut self, cred: Credential, user: UserInfo) {
        let Some(c) = self.flow.as_mut() else { return };
        let id = c.flow.id;
        let key = format!(
            "{}-{}-{}-{:08x}",
            self.cfg.device_id,
            unix_ms(self.deps.clock.wall()),
            id.0,
            self.rng.hash_one(id.0) as u32
        );
        let req = PaymentRequest {
            idempotency_key: key.clone(),
            face_token: cred.face_token,
            user_id: user.user_id,
            out_user_id: user.out_user_id,
            amount_fen: c.flow.total_fee.unwrap_or(0),
            organization_id: self.cfg.organization_id.clone(),
            device_id: self.cfg.device_id.clone(),
        };
        let reply = c.cred.take();
        let commit = match &self.outbox {
            Some(o) => o.submit(req),
            None => Err(Error::Internal("outbox unavailable".into())),
        };
        let done = Committed { flow_id: id, key, reply, res: Ok(()) };
        match commit {
            Err(e) => self.on_committed(Committed { res: Err(e), ..done }),
            // A memory store commits inline: answered in this turn.
            Ok(p) if p.is_ready() => {
                let res = p.wait();
                self.on_committed(Committed { res, ..done })
            }
            Ok(p) => {
                // A file store commits in a store job on the blocking pool (an fsync may
                // take up to a second): the actor goes on; the flow's end waits for it.
                c.committing = true;
                self.commits.push(Box::pin(async move { Committed { res: p.await, ..done } }));
            }
        }
    }

    /// The credential is durable in the outbox (or could not be committed): the app hears
    /// of it now, then the flow's end if it was held back for it.
    pub(super) fn on_committed(&mut self, done: Committed) {
        let Committed { flow_id, key, reply, res } = done;
        let res = res.map(|()| key.clone());
        if res.is_ok() {
            self.h.payments_queued += 1;
            self.emit(EngineEvent::PaymentQueued { flow_id, idempotency_key: key });
        }
        if let Some(r) = reply {
            let _ = r.send(res);
        }
        let Some(c) = self.flow.as_mut().filter(|c| c.flow.id == flow_id) else { return };
        c.committing = false;
        if let Some(outcome) = c.ended.take() {
            self.on_flow_ended(outcome);
        }
    }

    pub(super) fn on_flow_ended(&mut self, outcome: Outcome) {
        if let Some(c) = self.flow.as_mut().filter(|c| c.committing) {
            // T7.8: a flow ends once its credential is durable (`on_committed`).
            c.ended = Some(outcome);
            return;
        }
        let Some(mut c) = self.flow.take() else { return };
        let err = || outcome.error(ms(self.t.flow_timeout_ms)).unwrap_or(Error::FlowCancelled);
        if let Some(r) = c.start.take() {
            let _ = r.send(Err(err()));
        }
        for w in c.recog_waiters.drain(..) {
            let _ = w.send(Err(err()));
        }
        if let Some(r) = c.finish.take() {
            let _ = r.send(Err(err()));
        }
        if let Some(r) = c.cred.take() {
            if outcome != Outcome::Credential {
                let _ = r.send(Err(err()));
            }
        }
        let s = c.flow.stamps;
        let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(c.flow.started_at));
        let report = FlowReport {
            flow_id: c.flow.id,
            outcome: outcome.clone(),
            recognition_failures: c.flow.recognition_failures(),
            timings: StageTimings {
                first_frame: since(s.first_frame),
                recognised: since(s.recognised),
                finished: since(s.finished),
                credential: since(s.credential),
                total: since(s.ended).unwrap_or_default(),
            },
        };
        *self.h.flows.entry(outcome.label()).or_default() += 1;
        self.h.last_outcome = Some(outcome.label());
        self.emit(EngineEvent::FlowEnded(report));
        if c.flow.is_gate() {
            // T1.3: keep recognising; after a disconnect, once the link is back.
            let end = if outcome == Outcome::Disconnected { GateEnd::LinkLost } else { GateEnd::Done };
            self.gate.on_flow_ended(end, self.now());
        } else {
            // T8: a restart the planner held back for this payment may be due now.
            self.timers.set(Timer::Restart, Some(self.now()));
        }
        self.last_flow = Some(c.flow);
    }

    /// A payment flow runs (a gate's continuous recognition does not count).
    pub(super) fn pay_flow_running(&self) -> bool {
        self.flow.as_ref().is_some_and(|c| !c.flow.is_gate())
    }
}
