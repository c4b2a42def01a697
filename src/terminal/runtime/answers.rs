//! The engine actor's answers of vendor calls and of the backend's authinfo fetch (and
//! their conversions), handed to the pure policies they belong to (SPEC T1, T3, T4, T7,
//! T9: a call past its deadline or a FAIL 620/621 from a service we had set up means it
//! restarted under us; a late answer after such a FAIL is dropped, so a call counts once).

use super::{authed_map, ms, Actor, Answer, Done, Fail, Task};
use crate::error::Error;
use crate::terminal::face_service::{
    Credential, Op, ReturnCode, SdkInfo, UserInfo, VendorError, ERR_INITIALISING, ERR_NOT_INITIALISED,
};
use crate::terminal::health::EngineEvent;
use crate::terminal::lifecycle::LossReason;
use crate::terminal::sequence::SeqStep;
use crate::terminal::verify::Input;

impl Actor {
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
                        // T3.3, written on the blocking pool (`store_io`).
                        match (serde_json::to_string(&p), &mut self.store) {
                            (Ok(j), Some(s)) => s.put_authinfo(Some(j)),
                            (Err(e), _) => tracing::error!("cannot persist authinfo: {e}"),
                            (Ok(_), None) => {}
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
                        if let Some(s) = &mut self.store {
                            s.put_authinfo(None);
                        }
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
}

pub(super) fn vendor_or_fail(f: Fail) -> VendorError {
    match f {
        Fail::Vendor(v) => v,
        Fail::Timeout(..) | Fail::Other(_) => VendorError::new(ReturnCode::Error, 0),
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
