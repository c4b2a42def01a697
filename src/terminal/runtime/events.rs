//! The engine actor, second half: answers of vendor calls (and their conversions), service
//! callbacks, outbox reports, time, and what the pure policies decide in return (SPEC T1,
//! T3, T4, T7, T9: a FAIL 620/621 from a service we had set up means it restarted under
//! us; a late answer after such a FAIL is dropped, so a call counts once).

use std::hash::BuildHasher;
use std::time::Instant;

use super::{authed_map, ms, Actor, Answer, Done, Fail, Task, Timer, TIMER_PASSES};
use crate::clock::unix_ms;
use crate::error::{Error, Result};
use crate::terminal::auth_info;
use crate::terminal::backend::PaymentRequest;
use crate::terminal::command::Recognition;
use crate::terminal::face_service::{
    Credential, Op, RecognitionEvent, ReturnCode, SdkInfo, ServiceEvent, UserInfo, VendorError, ERR_INITIALISING,
    ERR_NOT_INITIALISED, ERR_NO_USER_INFO,
};
use crate::terminal::features::FeatureAlert;
use crate::terminal::gate::{GateAction, GateEnd};
use crate::terminal::health::{EngineEvent, FlowReport, Published, StageTimings};
use crate::terminal::lifecycle::LossReason;
use crate::terminal::outbox::OutboxEvent;
use crate::terminal::preview::PreviewAction;
use crate::terminal::restart::RestartAdvice;
use crate::terminal::sequence::SeqStep;
use crate::terminal::verify::{Action, Input, Outcome};

impl Actor {
    pub(super) fn outbox_timing(&self) -> crate::terminal::outbox::OutboxTiming {
        crate::terminal::outbox::OutboxTiming::from_timing(&self.t)
    }

    pub(super) fn on_done(&mut self, d: Done) {
        // Whatever became of it, the fetch is over, and the next vendor call may go out.
        if d.task == Task::AuthInfo {
            self.fetching_auth = false;
        }
        self.call_done(d.id);
        if d.gen != self.life.generation() {
            // An answer of a lost connection (T1.2): dropped, except that a flow call's
            // waiter was already answered when the flow ended.
            return;
        }
        let now = self.now();
        let wall = self.deps.clock.wall();
        // T1.1: any call past its deadline marks the service lost; a "not initialised"
        // answer from a service we had initialised means it restarted under us.
        match &d.res {
            Err(Fail::Timeout(op, after)) if d.task != Task::Init => {
                tracing::warn!(?op, ?after, "face service call timed out");
                self.lost(LossReason::CallTimeout);
                return;
            }
            // T9: the library's own 10 s timeout answers FAIL 620/621 while it is not
            // connected (and keeps the call: a late answer may follow, dropped as stale).
            Err(Fail::Vendor(e))
                if (e.err_code == ERR_NOT_INITIALISED || e.err_code == ERR_INITIALISING) && d.task != Task::Init =>
            {
                self.lost(LossReason::NotInitialised);
                return;
            }
            _ => {}
        }
        match (d.task, d.res) {
            (Task::Init, r) => {
                let r = match r {
                    Ok(_) => Ok(()),
                    Err(Fail::Vendor(e)) => Err(Some(e)),
                    Err(_) => Err(None),
                };
                // "Initialising, retry after ~500 ms" is not a failure: waiters keep waiting
                // for the retry. A real failure answers them (the engine retries anyway).
                match &r {
                    Err(Some(v)) if v.err_code != ERR_INITIALISING => {
                        self.answer_init(Err(v.clone().into_error(Op::Init)))
                    }
                    Err(None) => self.answer_init(Err(Error::CallTimeout {
                        op: Op::Init.name(),
                        after: ms(self.t.slow_call_timeout_ms),
                    })),
                    _ => {}
                }
                let a = match r {
                    Err(None) => self.life.on_init_timed_out(now),
                    r => self.life.on_init_answered(r, now),
                };
                self.link(a);
            }
            (Task::Update, r) => {
                self.updating = false;
                let ok = r.is_ok();
                self.emit(EngineEvent::FeaturesUpdated { ok });
                if let Some(alert) = self.features.on_update_answered(ok, wall) {
                    self.on_alert(alert);
                }
                // T4.1: the first recognition waits for this answer (then sdk info, T3.6).
                if let Some(a) = self.seq.on_update() {
                    self.on_seq(a);
                } else if self.is_open() {
                    self.gate.on_opened(now);
                }
            }
            (Task::RawData, r) => match r {
                Ok(Answer::Raw(raw)) => self.on_raw_data(raw),
                _ => {
                    self.refreshing_raw = false;
                    if self.seq.step() == SeqStep::RawData {
                        // The sequence cannot go on without raw data: start over from init,
                        // with the link's bounded backoff (T1.2).
                        self.lost(LossReason::NotInitialised);
                    } else {
                        self.auth.on_failed(now, ms(self.t.backoff_initial_ms), ms(self.t.backoff_max_ms));
                    }
                }
            },
            (Task::Preload, _) => {
                if let Some(a) = self.seq.on_preload() {
                    self.on_seq(a);
                }
            }
            (Task::Check, r) => {
                self.checking = false;
                if let Some(a) = self.seq.on_sdk_info() {
                    self.on_seq(a);
                }
                if let Ok(Answer::Info(info)) = r {
                    if let Some(alert) = self.features.on_sdk_info(&info, wall) {
                        self.on_alert(alert);
                    }
                    // Stale features: ask for an update too (the network may be back).
                    if self.features.is_stale() {
                        self.spawn_update();
                    }
                }
            }
            (Task::AuthInfo, r) => {
                match r {
                    Ok(Answer::Auth(g)) => {
                        let p = self.auth.on_fetched(g, &self.cfg.organization_id, now, wall);
                        // T3.6: every later call carries the newest authinfo.
                        self.authed = self.auth.valid(now).map(|a| authed_map(&self.cfg, a.clone()));
                        let saved = serde_json::to_string(&p)
                            .map_err(Error::from)
                            .and_then(|j| self.store.kv_put(auth_info::STORE_KEY, &j));
                        if let Err(e) = saved {
                            tracing::error!(code = ?e.code(), "cannot persist authinfo: {e}");
                        }
                        self.h.authinfo_refreshes += 1;
                        let ttl = self.auth.remaining(now).unwrap_or_default();
                        self.emit(EngineEvent::AuthInfoRefreshed { expires_in: ttl });
                        if let Some(a) = self.seq.on_auth_info() {
                            self.on_seq(a);
                        }
                    }
                    Err(Fail::Other(Error::ConfigMismatch(_))) => {
                        // T3.5: a configuration error, not a retry loop.
                        tracing::error!("organization_id does not belong to mch_id: authinfo refresh stopped");
                        self.auth.on_mismatch();
                        self.authed = None;
                        self.answer_init(Err(Error::ConfigMismatch(
                            "organization_id does not belong to mch_id".into(),
                        )));
                        let _ = self.store.kv_delete(auth_info::STORE_KEY);
                        self.emit(EngineEvent::ConfigMismatch);
                    }
                    Err(f) => {
                        let code = match f {
                            Fail::Other(e) => e.code(),
                            Fail::Vendor(_) => crate::ErrorCode::Vendor,
                            Fail::Timeout(..) => crate::ErrorCode::CallTimeout,
                        };
                        self.auth.on_failed(now, ms(self.t.backoff_initial_ms), ms(self.t.backoff_max_ms));
                        self.emit(EngineEvent::AuthInfoFailed { code });
                        if self.seq.step() == SeqStep::AuthInfo {
                            // T3.6: nothing after rawdata runs without an authinfo; init's
                            // callers hear why now (the fetch is retried with backoff).
                            self.answer_init(Err(Error::AuthInfoUnavailable(format!(
                                "authinfo fetch failed: {code:?}"
                            ))));
                        }
                    }
                    Ok(_) => {}
                }
            }
            (Task::Start(id), r) => {
                let r = r.map(|_| ()).map_err(vendor_or_fail);
                let _ = self.flow_event(Some(id), Input::StartAnswered(r));
                if let Some(c) = self.flow.as_mut().filter(|c| c.flow.id == id) {
                    if let Some(reply) = c.start.take() {
                        let _ = reply.send(Ok(id));
                    }
                }
            }
            (Task::Finish(id), r) => {
                let r = r.and_then(|a| match a {
                    Answer::User(u) => Ok(u),
                    _ => Err(Fail::Other(Error::Internal("finish answered without user".into()))),
                });
                let _ = self.flow_event(Some(id), Input::FinishAnswered(r.map_err(vendor_or_fail)));
            }
            (Task::Credential(id), r) => {
                let r = r.and_then(|a| match a {
                    Answer::Cred(c) => Ok(c),
                    _ => Err(Fail::Other(Error::Internal("credential answered without token".into()))),
                });
                let _ = self.flow_event(Some(id), Input::CredentialAnswered(r.map_err(vendor_or_fail)));
            }
            // T6: a refused bind is retried with back-off; an answer starts it over.
            (Task::Preview, Err(_)) => self.preview.on_bind_failed(now),
            (Task::Preview, Ok(_)) => self.preview.on_bind_answered(),
            (Task::Unpreview | Task::Stop | Task::Release, _) => {}
        }
    }

    pub(super) fn answer_init(&mut self, r: Result<()>) {
        for w in self.init_waiters.drain(..) {
            let _ = w.send(match &r {
                Ok(()) => Ok(()),
                Err(e) => Err(clone_err(e)),
            });
        }
    }

    fn on_alert(&mut self, a: FeatureAlert) {
        match a {
            FeatureAlert::Stale { age } => {
                tracing::warn!(?age, "face features are stale: check the device network");
                self.emit(EngineEvent::FeaturesStale { age });
            }
            FeatureAlert::Fresh => self.emit(EngineEvent::FeaturesFresh),
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
    fn on_credential(&mut self, cred: Credential, user: UserInfo) {
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
        let res = match &self.outbox {
            Some(o) => o.enqueue(req).map(|_| key.clone()),
            None => Err(Error::Internal("outbox unavailable".into())),
        };
        if res.is_ok() {
            self.h.payments_queued += 1;
            self.emit(EngineEvent::PaymentQueued { flow_id: id, idempotency_key: key });
        }
        if let Some(r) = reply {
            let _ = r.send(res);
        }
    }

    fn on_flow_ended(&mut self, outcome: Outcome) {
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

    pub(super) fn on_preview(&mut self, a: PreviewAction) {
        match a {
            PreviewAction::Bind(s) => {
                self.emit(EngineEvent::PreviewBound { width: s.width, height: s.height });
                self.authed_call(Task::Preview, Op::SetPreview, false, move |svc, m| async move {
                    svc.set_preview(s, m).await
                });
            }
            PreviewAction::Unbind => {
                if self.life.is_ready() {
                    self.authed_call(Task::Unpreview, Op::RemovePreview, false, |s, m| async move {
                        s.remove_preview(m).await
                    });
                }
            }
            PreviewAction::AspectWarning { width, height } => {
                self.emit(EngineEvent::PreviewAspect { width, height });
            }
        }
    }

    pub(super) fn on_outbox(&mut self, ev: OutboxEvent) {
        if let OutboxEvent::Final { key, state, .. } = ev {
            *self.h.payments_final.entry(state).or_default() += 1;
            self.emit(EngineEvent::PaymentFinal { idempotency_key: key, state });
        }
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

    fn on_timer(&mut self, t: Timer) {
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
            Timer::Gate => {
                let (open, idle) = (self.is_open(), self.flow.is_none());
                for a in self.gate.poll(now, open, idle) {
                    match a {
                        // T1.3: a gate waits for faces without any call of its own, so a
                        // heartbeat finds a restarted service within seconds (T1.1).
                        GateAction::Heartbeat => self.spawn_check(),
                        GateAction::StartFlow if self.auth.valid(now).is_some() => self.start_flow(None, None),
                        GateAction::StartFlow => self.gate.on_start_deferred(now),
                    }
                }
            }
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

    /// A payment flow runs (a gate's continuous recognition does not count).
    fn pay_flow_running(&self) -> bool {
        self.flow.as_ref().is_some_and(|c| !c.flow.is_gate())
    }

    /// Publishes the health snapshot.
    pub(super) fn publish(&mut self) {
        let now = self.now();
        let flow_running = self.pay_flow_running();
        let open = self.is_open();
        let h = &mut self.h;
        h.flow_running = flow_running;
        h.state = self.life.state();
        // Verification opens when the whole start-up sequence answered (T3.6, T4.1).
        h.features_ready = open;
        h.features_stale = self.features.is_stale();
        h.last_feature_update_unix_ms = self.features.last_update_ms();
        let authinfo_valid_for = self.auth.remaining(now);
        h.config_mismatch = self.auth.is_mismatch();
        h.disconnects = self.life.disconnects;
        h.reconnects = self.life.reconnects;
        h.init_calls = self.life.init_calls;
        h.sequences = self.seq.runs;
        h.preview_bound = self.preview.bound().is_some();
        h.gate_running = self.gate.is_running();
        h.next_restart_unix_ms = self.restart.planned().map(unix_ms);
        Published::write(&self.shared, &self.h, authinfo_valid_for);
    }
}

use crate::terminal::face_service::{CredentialParams, FinishParams};

fn vendor_or_fail(f: Fail) -> VendorError {
    match f {
        Fail::Vendor(v) => v,
        Fail::Timeout(..) | Fail::Other(_) => VendorError::new(ReturnCode::Error, 0),
    }
}

/// Errors are not `Clone` (they wrap rusqlite's); every init waiter gets an equal copy.
fn clone_err(e: &Error) -> Error {
    match e {
        Error::Vendor { op, return_code, err_code } => {
            Error::Vendor { op, return_code: return_code.clone(), err_code: *err_code }
        }
        Error::CallTimeout { op, after } => Error::CallTimeout { op, after: *after },
        Error::ConfigMismatch(m) => Error::ConfigMismatch(m.clone()),
        Error::AuthInfoUnavailable(m) => Error::AuthInfoUnavailable(m.clone()),
        Error::BadAnswer { op, key } => Error::BadAnswer { op, key },
        other => Error::Internal(other.to_string()),
    }
}

impl From<String> for Answer {
    fn from(v: String) -> Self {
        Answer::Raw(v)
    }
}
impl From<()> for Answer {
    fn from(_: ()) -> Self {
        Answer::Unit
    }
}
impl From<SdkInfo> for Answer {
    fn from(v: SdkInfo) -> Self {
        Answer::Info(v)
    }
}
impl From<UserInfo> for Answer {
    fn from(v: UserInfo) -> Self {
        Answer::User(v)
    }
}
impl From<Credential> for Answer {
    fn from(v: Credential) -> Self {
        Answer::Cred(v)
    }
}
