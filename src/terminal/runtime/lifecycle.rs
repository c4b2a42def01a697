//! The engine actor's link handlers (SPEC T1, T2, T6): what the pure link policy
//! (`terminal::lifecycle`) decides — init, the link up (the start-up sequence runs again
//! after every reconnect, T3.6/T9), the link lost (flows end, calls of the old generation
//! are abandoned, T1.2) — the init callers' answers, feature alerts (T4.3) and the preview
//! binds the preview policy asks for (T6).

use super::{Actor, Task};
use crate::error::{Error, Result};
use crate::terminal::face_service::{InitParams, Op};
use crate::terminal::features::FeatureAlert;
use crate::terminal::health::EngineEvent;
use crate::terminal::lifecycle::{LinkAction, LossReason};
use crate::terminal::preview::PreviewAction;
use crate::terminal::verify::Input;

impl Actor {
    pub(super) fn link(&mut self, a: Option<LinkAction>) {
        let now = self.now();
        match a {
            None => {}
            Some(LinkAction::CallInit) => {
                // T2.4: the 2-argument init unless a proxy section is configured; merchant
                // ids never go into the init map.
                let p = InitParams { proxy: self.cfg.proxy.as_ref().map(|m| m.clone().into_iter().collect()) };
                self.call(Task::Init, Op::Init, true, move |s| async move { s.init(p).await });
            }
            Some(LinkAction::Up { reconnected_after }) => {
                self.emit(EngineEvent::StateChanged { state: self.life.state() });
                if let Some(after) = reconnected_after {
                    self.emit(EngineEvent::Reconnected { after });
                }
                // T3.6 (T9: also after every reconnect): rawdata → authinfo → preload (T5)
                // → update (T4.1) → sdk info → verification opens; T6 binds again then.
                self.features.on_init(now);
                self.preview.on_service_reset();
                let a = self.seq.on_link_up();
                self.on_seq(a);
            }
            Some(LinkAction::Lost(reason)) => {
                tracing::warn!(?reason, "face service lost; reconnecting");
                self.emit(EngineEvent::Disconnected { reason });
                self.emit(EngineEvent::StateChanged { state: self.life.state() });
                self.features.pause();
                self.preview.on_service_reset();
                self.seq.on_link_down();
                // In-flight work of the old connection is dropped with its generation; the
                // call that may sit in the library's pending slot is abandoned, and only
                // init (which never takes the slot) goes out until the link is up (T9).
                self.abandon_calls();
                self.updating = false;
                self.checking = false;
                self.refreshing_raw = false;
                let _ = self.flow_event(None, Input::Disconnected);
            }
        }
    }

    pub(super) fn lost(&mut self, reason: LossReason) {
        let a = self.life.on_lost(reason, self.now());
        self.link(a);
    }

    pub(super) fn answer_init(&mut self, r: Result<()>) {
        for w in self.init_waiters.drain(..) {
            let _ = w.send(match &r {
                Ok(()) => Ok(()),
                Err(e) => Err(clone_err(e)),
            });
        }
    }

    pub(super) fn on_alert(&mut self, a: FeatureAlert) {
        match a {
            FeatureAlert::Stale { age } => {
                tracing::warn!(?age, "face features are stale: check the device network");
                self.emit(EngineEvent::FeaturesStale { age });
            }
            FeatureAlert::Fresh => self.emit(EngineEvent::FeaturesFresh),
        }
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
}

/// Errors are not `Clone` (they wrap rusqlite's); every init waiter gets an equal copy.
pub(super) fn clone_err(e: &Error) -> Error {
    match e {
        Error::Vendor { op, return_code, err_code } => {
            Error::Vendor { op, return_code: return_code.clone(), err_code: *err_code }
        }
        Error::CallTimeout { op, after } => Error::CallTimeout { op, after: *after },
        Error::ConfigMismatch(m) => Error::ConfigMismatch(m.clone()),
        Error::AuthInfoUnavailable(m) => Error::AuthInfoUnavailable(m.clone()),
        Error::BadAnswer { op, key } => Error::BadAnswer { op, key },
        Error::InvalidConfig { field, reason } => Error::InvalidConfig { field, reason: reason.clone() },
        other => Error::Internal(other.to_string()),
    }
}
