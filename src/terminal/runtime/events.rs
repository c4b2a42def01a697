//! The engine actor, second half: answers of vendor calls (and their conversions), service callbacks, outbox
//! reports, time, and what the pure policies decide in return.

use super::*;
use crate::terminal::face_service::{
    RecognitionEvent, ReturnCode, ERR_INITIALISING, ERR_NOT_INITIALISED, ERR_NO_USER_INFO,
};

impl Actor {
    pub(super) fn outbox_timing(&self) -> crate::terminal::outbox::OutboxTiming {
        crate::terminal::outbox::OutboxTiming::from_timing(&self.t)
    }

    pub(super) fn on_done(&mut self, d: Done) {
        // Whatever became of it, the fetch is over.
        if d.task == Task::AuthInfo {
            self.fetching_auth = false;
        }
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
            Err(Fail::Vendor(e)) if e.err_code == ERR_NOT_INITIALISED && d.task != Task::Init => {
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
                let a = self.life.on_init_answered(r, now);
                self.link(a);
            }
            (Task::Update, r) => {
                self.updating = false;
                let ok = r.is_ok();
                self.emit(EngineEvent::FeaturesUpdated { ok });
                if let Some(alert) = self.features.on_update_answered(ok, wall) {
                    self.on_alert(alert);
                }
                // T4.1: the first recognition waited for this answer.
                if self.features.ready() {
                    self.answer_init(Ok(()));
                    if self.gate_wanted && self.flow.is_none() {
                        self.gate_at.get_or_insert(now);
                    }
                }
            }
            (Task::Check, r) => {
                self.checking = false;
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
                        let saved = serde_json::to_string(&p)
                            .map_err(Error::from)
                            .and_then(|j| self.store.kv_put(auth_info::STORE_KEY, &j));
                        if let Err(e) = saved {
                            tracing::error!(code = ?e.code(), "cannot persist authinfo: {e}");
                        }
                        self.h.authinfo_refreshes += 1;
                        let ttl = self.auth.remaining(now).unwrap_or_default();
                        self.emit(EngineEvent::AuthInfoRefreshed { expires_in: ttl });
                    }
                    Err(Fail::Other(Error::ConfigMismatch(_))) => {
                        // T3.5: a configuration error, not a retry loop.
                        tracing::error!("organization_id does not belong to mch_id: authinfo refresh stopped");
                        self.auth.on_mismatch();
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
            (Task::Preview, Err(_)) => self.preview.on_bind_failed(now),
            (Task::Preload | Task::Preview | Task::Unpreview | Task::Stop | Task::Release, _) => {}
        }
    }

    fn answer_init(&mut self, r: Result<()>) {
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
                // The vendor fires the init callback again on every reconnect: one init
                // callback is kept (API-NOTES §1), the link state is ours.
            }
            ServiceEvent::Recognition { session, event } => {
                if self.flow.as_ref().is_none_or(|c| c.flow.session != session) {
                    return; // a stopped session's late callback
                }
                let input = match event {
                    RecognitionEvent::FirstFrame => Input::FirstFrame,
                    RecognitionEvent::Failed { err_code, .. } => Input::AttemptFailed { err_code },
                    RecognitionEvent::Recognised { need_ext_verify, users, .. } => match users.into_iter().next() {
                        Some(user) => Input::Recognised { need_ext_verify, user },
                        None => Input::AttemptFailed { err_code: ERR_NO_USER_INFO },
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
                    self.call(Task::Stop, Op::StopVerify, false, |s| async move { s.stop_verify().await });
                }
            }
            Action::CallFinish(p) => {
                let id = self.flow.as_ref().map(|c| c.flow.id).expect("a flow asked");
                self.call(Task::Finish(id), Op::Finish, false, move |s| async move { s.finish_verify(p).await });
            }
            Action::CallCredential(p) => {
                let id = self.flow.as_ref().map(|c| c.flow.id).expect("a flow asked");
                self.call(Task::Credential(id), Op::Credential, false, move |s| async move { s.credential(p).await });
            }
            Action::Recognised { user, need_ext_verify } => {
                let Some(c) = self.flow.as_mut() else { return };
                if c.gate {
                    let user_id = user.user_id.clone();
                    self.emit(EngineEvent::GateRecognised { user_id });
                    return;
                }
                let rec = Recognition { user, need_ext_verify };
                for w in c.recog_waiters.drain(..) {
                    let _ = w.send(Ok(rec.clone()));
                }
                c.recognised = Some(rec);
            }
            Action::AttemptFailed { err_code } => {
                if let Some(c) = &self.flow {
                    self.emit(EngineEvent::RecognitionFailed { flow_id: c.flow.id, err_code });
                }
            }
            Action::Finished(user) => {
                if let Some(c) = self.flow.as_mut() {
                    c.user = Some(user.clone());
                    if let Some(r) = c.finish.take() {
                        let _ = r.send(Ok(user));
                    }
                }
            }
            Action::Credentialed(cred) => self.on_credential(cred),
            Action::ServiceSilent => self.lost(LossReason::NoCallback),
            Action::Ended(outcome) => self.on_flow_ended(outcome),
        }
    }

    /// T7.8: the credential is written to the outbox before the app hears of it.
    fn on_credential(&mut self, cred: Credential) {
        let Some(c) = self.flow.as_mut() else { return };
        let id = c.flow.id;
        // The flow ends with this credential: its user is needed no more.
        let user = c.user.take().unwrap_or_else(|| UserInfo {
            user_id: String::new(),
            out_user_id: String::new(),
            user_name: Default::default(),
            status: 0,
            valid: false,
        });
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
        if c.gate && self.gate_wanted {
            // T1.3: keep recognising; after a disconnect, once the link is back.
            if outcome != Outcome::Disconnected {
                self.gate_at = Some(self.now() + GATE_PAUSE);
            }
        }
        self.last_flow = Some(c.flow);
    }

    pub(super) fn on_preview(&mut self, a: PreviewAction) {
        match a {
            PreviewAction::Bind(s) => {
                self.emit(EngineEvent::PreviewBound { width: s.width, height: s.height });
                self.call(Task::Preview, Op::SetPreview, false, move |svc| async move { svc.set_preview(s).await });
            }
            PreviewAction::Unbind => {
                if self.life.is_ready() {
                    self.call(Task::Unpreview, Op::RemovePreview, false, |s| async move { s.remove_preview().await });
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

    /// Everything time-driven.
    pub(super) fn on_time(&mut self) {
        let now = self.now();
        let a = self.life.poll(now);
        self.link(a);
        if self.flow.as_ref().and_then(|c| c.flow.poll_timeout()).is_some_and(|t| now >= t) {
            let _ = self.flow_event(None, Input::Tick);
        }
        if self.life.is_ready() {
            if self.features.check_due(now) {
                self.features.on_check_sent(now);
                if !self.checking {
                    // T4.2: our own periodic check; also the watchdog's heartbeat (T1.1).
                    self.checking = true;
                    self.call(Task::Check, Op::SdkInfo, false, |s| async move { s.sdk_info().await });
                }
            }
            if !self.fetching_auth && self.auth.fetch_due(now) {
                self.spawn_auth_fetch();
            }
            if let Some(a) = self.preview.poll(now) {
                self.on_preview(a);
            }
            if self.gate_at.is_some_and(|t| now >= t) && self.flow.is_none() && self.features.ready() {
                self.gate_at = None;
                if self.gate_wanted && self.auth.valid(now).is_some() {
                    self.start_flow(None, None);
                } else if self.gate_wanted {
                    self.gate_at = Some(now + ms(self.t.backoff_initial_ms));
                }
            }
        }
        match self.restart.poll(self.deps.clock.wall(), self.pay_flow_running()) {
            Some(RestartAdvice::Planned { at }) => self.emit(EngineEvent::RestartPlanned { at_unix_ms: unix_ms(at) }),
            Some(RestartAdvice::RestartNow) => self.emit(EngineEvent::RestartNow),
            None => {}
        }
    }

    /// A payment flow runs (a gate's continuous recognition does not count).
    fn pay_flow_running(&self) -> bool {
        self.flow.as_ref().is_some_and(|c| !c.gate)
    }

    /// Publishes the health snapshot.
    pub(super) fn publish(&mut self) {
        let now = self.now();
        let flow_running = self.pay_flow_running();
        let h = &mut self.h;
        h.flow_running = flow_running;
        h.state = self.life.state();
        h.features_ready = self.features.ready();
        h.features_stale = self.features.is_stale();
        h.last_feature_update_unix_ms = self.features.last_update_ms();
        let authinfo_valid_for = self.auth.remaining(now);
        h.config_mismatch = self.auth.is_mismatch();
        h.disconnects = self.life.disconnects;
        h.reconnects = self.life.reconnects;
        h.init_calls = self.life.init_calls;
        h.preview_bound = self.preview.bound().is_some();
        h.gate_running = self.gate_wanted;
        h.next_restart_unix_ms = self.restart.planned().map(unix_ms);
        // The authinfo's remaining time travels beside the snapshot, which is copied and
        // replaced only when something else changed.
        let changed = *self.published != self.h;
        if changed {
            self.published = Arc::new(self.h.clone());
        }
        Published::write(&self.shared, changed.then_some(&self.published), authinfo_valid_for);
    }
}

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
        other => Error::Internal(other.to_string()),
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
