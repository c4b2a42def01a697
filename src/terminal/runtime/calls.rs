//! The engine actor's vendor calls (SPEC T1.1, T3.6, T9): one queue from which calls go
//! out one at a time, each with its deadline (T1.1), so at most one is outstanding when
//! the service silently disconnects (the library's single pending slot: a second call
//! would overwrite the first, whose callback never answers); the authed map with the
//! newest authinfo on every call after rawdata (T3.6); and the start-up sequence's steps
//! (`sequence`: rawdata → authinfo → preload → update → sdk info).

use std::sync::Arc;
use std::time::Duration;

use super::{ms, Actor, Answer, Done, Fail, MakeCall, Queued, Task};
use crate::terminal::backend::AuthInfoRequest;
use crate::terminal::face_service::{Authed, FaceService, Op, VResult};
use crate::terminal::sequence::{SeqAction, SeqStep};

impl Actor {
    /// Starts a future that is not a vendor call (the backend fetch): not queued.
    pub(super) fn start_call<F>(&self, task: Task, op: Op, deadline: Duration, fut: F)
    where
        F: std::future::Future<Output = std::result::Result<Answer, Fail>> + Send + 'static,
    {
        let gen = self.life.generation();
        self.calls.push(Box::pin(async move {
            let res = match tokio::time::timeout(deadline, fut).await {
                Ok(r) => r,
                Err(_) => Err(Fail::Timeout(op, deadline)),
            };
            Done { gen, id: 0, task, res }
        }));
    }

    /// Queues one vendor call with its deadline (T1.1); `f` gets the service handle when
    /// the call's turn comes.
    pub(super) fn call<T, G, Fut>(&mut self, task: Task, op: Op, slow: bool, f: G)
    where
        G: FnOnce(Arc<dyn FaceService>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = VResult<T>> + Send + 'static,
        Answer: From<T>,
    {
        let deadline = ms(if slow { self.t.slow_call_timeout_ms } else { self.t.call_timeout_ms });
        let gen = self.life.generation();
        let make: MakeCall = Box::new(move |svc, id| {
            Box::pin(async move {
                let res = match tokio::time::timeout(deadline, f(svc)).await {
                    Ok(r) => r.map(Answer::from).map_err(Fail::Vendor),
                    Err(_) => Err(Fail::Timeout(op, deadline)),
                };
                Done { gen, id, task, res }
            })
        });
        self.queue.push_back(Queued { gen, make });
        self.pump();
    }

    /// A call that needs the authed map (every call after rawdata, T3.6). Without an
    /// authinfo yet, the call is not made at all: the service would refuse it.
    pub(super) fn authed_call<T, G, Fut>(&mut self, task: Task, op: Op, slow: bool, f: G) -> bool
    where
        G: FnOnce(Arc<dyn FaceService>, Authed) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = VResult<T>> + Send + 'static,
        Answer: From<T>,
    {
        let Some(m) = self.authed.clone() else {
            tracing::warn!(?op, "no authinfo yet: call not made");
            return false;
        };
        self.call(task, op, slow, move |s| f(s, m));
        true
    }

    /// Sends the next queued call if none is outstanding (T9). Calls of a lost link are
    /// dropped unsent.
    pub(super) fn pump(&mut self) {
        while self.outstanding.is_none() {
            let Some(q) = self.queue.pop_front() else { return };
            if q.gen != self.life.generation() {
                continue;
            }
            self.call_seq += 1;
            let id = self.call_seq;
            self.outstanding = Some(id);
            self.calls.push((q.make)(self.deps.service.clone(), id));
        }
    }

    /// A vendor call answered (or passed its deadline): the next may go out.
    pub(super) fn call_done(&mut self, id: u64) {
        if id != 0 && self.outstanding == Some(id) {
            self.outstanding = None;
        }
    }

    /// The link was lost or released: queued calls are dropped, and the outstanding one
    /// no longer holds the queue (only init goes out next, and init never takes the
    /// library's pending slot).
    pub(super) fn abandon_calls(&mut self) {
        self.queue.clear();
        self.outstanding = None;
    }

    /// The sequence got its raw data (an authinfo refresh may ask for more).
    pub(super) fn past_rawdata(&self) -> bool {
        !matches!(self.seq.step(), SeqStep::Idle | SeqStep::RawData)
    }

    /// Verification is open: link up and the whole start-up sequence answered.
    pub(super) fn is_open(&self) -> bool {
        self.life.is_ready() && self.seq.is_open() && self.features.ready()
    }

    /// Carries out a step of the start-up sequence.
    pub(super) fn on_seq(&mut self, a: SeqAction) {
        match a {
            SeqAction::CallRawData => {
                self.call(Task::RawData, Op::RawData, false, |s| async move { s.raw_data().await });
            }
            SeqAction::FetchAuthInfo => {
                // Waits for the raw data the sequence just got: `on_raw_data` passes it.
            }
            SeqAction::CallPreload => {
                // T5: preload with the authed map as soon as authinfo is at hand.
                self.authed_call(Task::Preload, Op::Preload, true, |s, m| async move { s.preload(m).await });
            }
            SeqAction::CallUpdate => self.spawn_update(),
            SeqAction::CallSdkInfo => self.spawn_check(),
            SeqAction::Opened => {
                tracing::debug!(runs = self.seq.runs, "face service sequence complete: verification open");
                self.answer_init(Ok(()));
                let now = self.now();
                self.gate.on_opened(now);
            }
        }
    }

    /// Rawdata answered: the sequence's step, or a refresh's.
    pub(super) fn on_raw_data(&mut self, raw: String) {
        let now = self.now();
        let cached = self.auth.valid(now).is_some() && self.authed.is_some();
        match self.seq.on_raw_data(cached) {
            Some(SeqAction::FetchAuthInfo) => self.spawn_auth_fetch(raw),
            Some(a) => self.on_seq(a),
            None if self.refreshing_raw => self.spawn_auth_fetch(raw),
            None => {}
        }
        self.refreshing_raw = false;
    }

    /// T3.2: a refresh ahead of expiry asks the service for fresh raw data first.
    pub(super) fn start_refresh(&mut self) {
        if self.fetching_auth || self.refreshing_raw {
            return;
        }
        self.refreshing_raw = true;
        self.call(Task::RawData, Op::RawData, false, |s| async move { s.raw_data().await });
    }

    /// B3/T3: exchange raw data for an authinfo at the backend (not a vendor call).
    pub(super) fn spawn_auth_fetch(&mut self, raw_data: String) {
        if self.fetching_auth {
            return;
        }
        self.fetching_auth = true;
        let src = self.deps.auth.clone();
        let (device_id, organization_id) = (self.cfg.device_id.clone(), self.cfg.organization_id.clone());
        let d = ms(self.t.call_timeout_ms);
        self.start_call(Task::AuthInfo, Op::RawData, d, async move {
            src.fetch(AuthInfoRequest { device_id, raw_data, organization_id })
                .await
                .map(Answer::Auth)
                .map_err(Fail::Other)
        });
    }

    pub(super) fn spawn_update(&mut self) {
        if !self.updating {
            self.updating = self
                .authed_call(Task::Update, Op::UpdateFeatures, true, |s, m| async move { s.update_features(m).await });
        }
    }

    /// T4.2: `getSdkInfo`, the sequence's last step and the periodic check (also the
    /// watchdog's heartbeat, T1.1).
    pub(super) fn spawn_check(&mut self) {
        if !self.checking {
            self.checking =
                self.authed_call(Task::Check, Op::SdkInfo, false, |s, m| async move { s.sdk_info(m).await });
        }
    }
}
