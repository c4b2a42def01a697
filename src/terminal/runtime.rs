//! The engine actor: the only place that owns timers, the store, the outbox and the face
//! service (DESIGN "Pure policy, thin runtime"). It feeds app commands, service answers,
//! service callbacks and time into the pure policies (`lifecycle`, `auth_info`,
//! `features`, `verify`, `preview`, `restart`) and carries out what they decide. Every
//! vendor call is a future with a deadline (T1.1), polled by the actor itself, whose answer
//! is tagged with the link generation, so answers of a lost connection are dropped (T1.2).

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc};

use crate::clock::unix_ms;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::terminal::auth_info::{self, AuthCache};
use crate::terminal::backend::{AuthInfoGrant, AuthInfoRequest, PaymentRequest};
use crate::terminal::command::{Cmd, Deps, PayRequest, Recognition, Reply};
use crate::terminal::config::{TerminalConfig, Timing};
use crate::terminal::face_service::{
    Credential, FaceService, InitParams, Op, RecogMode, SdkInfo, ServiceEvent, UserInfo, VResult, VendorError,
    VerifyParams,
};
use crate::terminal::features::{FeatureAlert, FeatureMonitor};
use crate::terminal::health::{EngineEvent, FlowReport, Health, Published, StageTimings};
use crate::terminal::lifecycle::{Lifecycle, LinkAction, LossReason};
use crate::terminal::outbox::{Outbox, OutboxEvent, OutboxHandle};
use crate::terminal::preview::{PreviewAction, PreviewBinder};
use crate::terminal::restart::{RestartAdvice, RestartPlanner};
use crate::terminal::verify::{Action, Flow, FlowId, Input, Outcome};

/// T6.3: the view's size must be stable this long before binding.
const PREVIEW_SETTLE: Duration = Duration::from_millis(300);
/// Gate mode: pause between a recognition and the next `startVerify`.
const GATE_PAUSE: Duration = Duration::from_millis(200);

/// A vendor call's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Init,
    Update,
    Preload,
    Check,
    Preview,
    Unpreview,
    Start(FlowId),
    Stop,
    Finish(FlowId),
    Credential(FlowId),
    AuthInfo,
    Release,
}

enum Answer {
    Unit,
    Info(SdkInfo),
    User(UserInfo),
    Cred(Credential),
    Auth(AuthInfoGrant),
}

enum Fail {
    Timeout(Op, Duration),
    Vendor(VendorError),
    Other(Error),
}

struct Done {
    gen: u64,
    task: Task,
    res: std::result::Result<Answer, Fail>,
}

/// The running flow with its waiting callers.
struct FlowCtx {
    flow: Flow,
    start: Option<Reply<FlowId>>,
    recog_waiters: Vec<Reply<Recognition>>,
    recognised: Option<Recognition>,
    finish: Option<Reply<UserInfo>>,
    user: Option<UserInfo>,
    cred: Option<Reply<String>>,
    gate: bool,
}

pub(crate) struct Actor {
    cfg: TerminalConfig,
    t: Timing,
    deps: Deps,
    rx: mpsc::UnboundedReceiver<Cmd>,
    events: broadcast::Sender<EngineEvent>,
    shared: Arc<Mutex<Published>>,
    /// The working copy, and the copy last published.
    h: Health,
    published: Arc<Health>,
    store: Store,
    outbox: Option<OutboxHandle>,
    outbox_rx: Option<mpsc::UnboundedReceiver<OutboxEvent>>,
    /// Vendor calls in flight, each with its deadline, polled by the actor itself.
    calls: FuturesUnordered<Pin<Box<dyn Future<Output = Done> + Send>>>,
    svc_rx: mpsc::UnboundedReceiver<ServiceEvent>,
    life: Lifecycle,
    auth: AuthCache,
    features: FeatureMonitor,
    preview: PreviewBinder,
    restart: RestartPlanner,
    flow: Option<FlowCtx>,
    last_flow: Option<Flow>,
    gate_wanted: bool,
    gate_at: Option<Instant>,
    init_waiters: Vec<Reply<()>>,
    fetching_auth: bool,
    updating: bool,
    checking: bool,
    next_id: u64,
    rng: RandomState,
}

fn ms(v: u64) -> Duration {
    Timing::ms(v)
}

impl Actor {
    pub(crate) fn new(
        cfg: TerminalConfig,
        deps: Deps,
        rx: mpsc::UnboundedReceiver<Cmd>,
        events: broadcast::Sender<EngineEvent>,
        shared: Arc<Mutex<Published>>,
    ) -> Result<Actor> {
        let t = cfg.timing;
        let store = Store::open(&cfg.store())?;
        let (svc_tx, svc_rx) = mpsc::unbounded_channel();
        deps.service.set_listener(svc_tx);
        let mut auth = AuthCache::new(t.authinfo_refresh_at_percent, ms(t.authinfo_default_ttl_ms));
        let (now, wall) = (deps.clock.now(), deps.clock.wall());
        // T3.3: a restart within validity needs no network.
        if let Some(json) = store.kv_get(auth_info::STORE_KEY)? {
            if let Ok(p) = serde_json::from_str(&json) {
                auth.restore(p, &cfg.organization_id, now, wall);
            }
        }
        let restart = RestartPlanner::new(cfg.restart_window, cfg.utc_offset_minutes);
        Ok(Actor {
            life: Lifecycle::new(ms(t.backoff_initial_ms), ms(t.backoff_max_ms)),
            features: FeatureMonitor::new(ms(t.feature_check_every_ms), ms(t.feature_stale_after_ms)),
            preview: PreviewBinder::new(PREVIEW_SETTLE),
            cfg,
            t,
            deps,
            rx,
            events,
            shared,
            h: Health::default(),
            published: Arc::default(),
            store,
            outbox: None,
            outbox_rx: None,
            calls: FuturesUnordered::new(),
            svc_rx,
            auth,
            restart,
            flow: None,
            last_flow: None,
            gate_wanted: false,
            gate_at: None,
            init_waiters: Vec::new(),
            fetching_auth: false,
            updating: false,
            checking: false,
            next_id: 1,
            rng: RandomState::new(),
        })
    }

    fn now(&self) -> Instant {
        self.deps.clock.now()
    }

    fn emit(&self, ev: EngineEvent) {
        let _ = self.events.send(ev);
    }

    pub(crate) async fn run(mut self) {
        let (otx, orx) = mpsc::unbounded_channel();
        match Outbox::spawn(
            self.cfg.store(),
            self.deps.payments.clone(),
            self.outbox_timing(),
            self.deps.clock.clone(),
            otx,
        ) {
            Ok(h) => {
                self.outbox = Some(h);
                self.outbox_rx = Some(orx);
            }
            Err(e) => tracing::error!(code = ?e.code(), "outbox unavailable: {e}"),
        }
        // T2.3: initialise in the background at start, so the first payment is not slow.
        let a = self.life.start();
        self.link(a);
        self.publish();
        // One timer for the whole loop, moved only when the next deadline changes.
        let mut wake = self.next_wake();
        let timer = tokio::time::sleep_until(wake.into());
        tokio::pin!(timer);
        loop {
            let next = self.next_wake();
            if next != wake {
                wake = next;
                timer.as_mut().reset(wake.into());
            }
            let outbox_rx = self.outbox_rx.as_mut();
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(Cmd::Shutdown(r)) => {
                        if let Some(o) = &self.outbox { o.shutdown().await; }
                        let _ = r.send(Ok(()));
                        return;
                    }
                    Some(cmd) => self.on_cmd(cmd),
                    None => return,
                },
                Some(done) = self.calls.next(), if !self.calls.is_empty() => self.on_done(done),
                Some(ev) = self.svc_rx.recv() => self.on_service_event(ev),
                Some(ev) = async { match outbox_rx { Some(r) => r.recv().await, None => None } } => self.on_outbox(ev),
                _ = &mut timer => {}
            }
            self.drain_ready();
            self.on_time();
            self.publish();
        }
    }

    /// Handles whatever else is ready (call answers, service and outbox events), so that
    /// deadlines and the snapshot run once per batch; bounded, so they are never starved.
    fn drain_ready(&mut self) {
        for _ in 0..32 {
            // An empty set answers `Some(None)`. Polling with a no-op waker is harmless:
            // the loop's `select!` polls the set again with the real one before it sleeps.
            if let Some(Some(done)) = self.calls.next().now_or_never() {
                self.on_done(done);
            } else if let Ok(ev) = self.svc_rx.try_recv() {
                self.on_service_event(ev);
            } else if let Some(ev) = self.outbox_rx.as_mut().and_then(|r| r.try_recv().ok()) {
                self.on_outbox(ev);
            } else {
                return;
            }
        }
    }

    fn next_wake(&self) -> Instant {
        let now = self.now();
        let far = now + Duration::from_secs(3600);
        let ready = self.life.is_ready();
        [
            self.life.poll_timeout(),
            self.flow.as_ref().and_then(|c| c.flow.poll_timeout()),
            ready.then(|| self.features.poll_timeout()).flatten(),
            (ready && !self.fetching_auth).then(|| self.auth.refresh_at()).flatten(),
            ready.then(|| self.preview.poll_timeout()).flatten(),
            // Only when it can act: a gate start that waits for the link or the first
            // feature update is resumed by those answers, not by spinning on the clock.
            (ready && self.features.ready() && self.flow.is_none()).then_some(self.gate_at).flatten(),
            Some(now + self.restart.poll_timeout(self.deps.clock.wall())),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(far)
        .max(now)
    }

    // ---- starting calls -------------------------------------------------------------

    fn start_call<F>(&self, task: Task, op: Op, deadline: Duration, fut: F)
    where
        F: std::future::Future<Output = std::result::Result<Answer, Fail>> + Send + 'static,
    {
        let gen = self.life.generation();
        self.calls.push(Box::pin(async move {
            let res = match tokio::time::timeout(deadline, fut).await {
                Ok(r) => r,
                Err(_) => Err(Fail::Timeout(op, deadline)),
            };
            Done { gen, task, res }
        }));
    }

    /// Runs one vendor call with its deadline (T1.1); `f` gets the service handle.
    fn call<T, G, Fut>(&self, task: Task, op: Op, slow: bool, f: G)
    where
        G: FnOnce(Arc<dyn FaceService>) -> Fut,
        Fut: std::future::Future<Output = VResult<T>> + Send + 'static,
        Answer: From<T>,
    {
        let fut = f(self.deps.service.clone());
        let d = ms(if slow { self.t.slow_call_timeout_ms } else { self.t.call_timeout_ms });
        self.start_call(task, op, d, async move { fut.await.map(Answer::from).map_err(Fail::Vendor) });
    }

    fn spawn_auth_fetch(&mut self) {
        self.fetching_auth = true;
        let svc = self.deps.service.clone();
        let src = self.deps.auth.clone();
        let (device_id, organization_id) = (self.cfg.device_id.clone(), self.cfg.organization_id.clone());
        let d = ms(self.t.call_timeout_ms);
        self.start_call(Task::AuthInfo, Op::RawData, 2 * d, async move {
            let raw_data = match tokio::time::timeout(d, svc.raw_data()).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(Fail::Vendor(e)),
                Err(_) => return Err(Fail::Timeout(Op::RawData, d)),
            };
            src.fetch(AuthInfoRequest { device_id, raw_data, organization_id })
                .await
                .map(Answer::Auth)
                .map_err(Fail::Other)
        });
    }

    fn spawn_update(&mut self) {
        if !self.updating {
            self.updating = true;
            self.call(Task::Update, Op::UpdateFeatures, true, |s| async move { s.update_features().await });
        }
    }

    // ---- the link -------------------------------------------------------------------

    fn link(&mut self, a: Option<LinkAction>) {
        let now = self.now();
        match a {
            None => {}
            Some(LinkAction::CallInit) => {
                let p = InitParams {
                    appid: self.cfg.appid.clone(),
                    mch_id: self.cfg.mch_id.clone(),
                    sub_appid: self.cfg.sub_appid.clone(),
                    sub_mch_id: self.cfg.sub_mch_id.clone(),
                    organization_id: self.cfg.organization_id.clone(),
                };
                self.call(Task::Init, Op::Init, true, move |s| async move { s.init(p).await });
            }
            Some(LinkAction::Up { reconnected_after }) => {
                self.emit(EngineEvent::StateChanged { state: self.life.state() });
                if let Some(after) = reconnected_after {
                    self.emit(EngineEvent::Reconnected { after });
                }
                // T4.1 feature update right after init; T5 preload; T6 bind again.
                self.features.on_init(now);
                self.spawn_update();
                self.call(Task::Preload, Op::Preload, true, |s| async move { s.preload().await });
                self.preview.on_service_reset();
                if self.auth.fetch_due(now) && !self.fetching_auth {
                    self.spawn_auth_fetch();
                }
            }
            Some(LinkAction::Lost(reason)) => {
                tracing::warn!(?reason, "face service lost; reconnecting");
                self.emit(EngineEvent::Disconnected { reason });
                self.emit(EngineEvent::StateChanged { state: self.life.state() });
                self.features.pause();
                self.preview.on_service_reset();
                // In-flight work of the old connection is dropped with its generation.
                self.updating = false;
                self.checking = false;
                let _ = self.flow_event(None, Input::Disconnected);
            }
        }
    }

    fn lost(&mut self, reason: LossReason) {
        let a = self.life.on_lost(reason, self.now());
        self.link(a);
    }

    // ---- commands ---------------------------------------------------------------------

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Init(r) => {
                let a = self.life.start();
                if self.life.is_ready() && self.features.ready() {
                    let _ = r.send(Ok(()));
                } else {
                    self.init_waiters.push(r);
                }
                self.link(a);
            }
            Cmd::StartFlow(req, r) => match self.can_start() {
                Err(e) => {
                    let _ = r.send(Err(e));
                }
                Ok(()) => self.start_flow(Some(req), Some(r)),
            },
            Cmd::WaitRecognition(id, r) => match &mut self.flow {
                Some(c) if c.flow.id == id && !c.flow.is_ended() => match &c.recognised {
                    Some(rec) => {
                        let _ = r.send(Ok(rec.clone()));
                    }
                    None => c.recog_waiters.push(r),
                },
                _ => {
                    let _ = r.send(Err(self.ended_error(id)));
                }
            },
            Cmd::ExtVerify(id, phone, r) => {
                let res = self.flow_event(Some(id), Input::ExtVerify(phone));
                let _ = r.send(res);
            }
            Cmd::Finish(id, r) => {
                if let Err(e) = self.flow_event(Some(id), Input::Finish) {
                    let _ = r.send(Err(e));
                } else if let Some(c) = &mut self.flow {
                    c.finish = Some(r);
                }
            }
            Cmd::Credential(id, r) => {
                if let Err(e) = self.flow_event(Some(id), Input::Credential) {
                    let _ = r.send(Err(e));
                } else if let Some(c) = &mut self.flow {
                    c.cred = Some(r);
                }
            }
            Cmd::Stop(id, r) => {
                let res = self.flow_event(Some(id), Input::Stop);
                let _ = r.send(res);
            }
            Cmd::StartGate(r) => {
                let res = if self.flow.as_ref().is_some_and(|c| !c.gate) {
                    Err(Error::FlowBusy)
                } else {
                    self.gate_wanted = true;
                    self.gate_at = Some(self.now());
                    Ok(())
                };
                let _ = r.send(res);
            }
            Cmd::StopGate(r) => {
                self.gate_wanted = false;
                self.gate_at = None;
                if let Some(id) = self.flow.as_ref().filter(|c| c.gate).map(|c| c.flow.id) {
                    let _ = self.flow_event(Some(id), Input::Stop);
                }
                let _ = r.send(Ok(()));
            }
            Cmd::Surface(s, r) => {
                let now = self.now();
                let res = match s {
                    Some(s) => self.preview.on_surface(s, now),
                    None => Ok(self.preview.on_destroyed()),
                };
                let res = res.map(|acts| acts.into_iter().for_each(|a| self.on_preview(a)));
                let _ = r.send(res);
            }
            Cmd::Release(r) => {
                // T2.2: a documented last resort, only on the app's explicit call.
                self.flow_event(None, Input::Disconnected).ok();
                self.gate_wanted = false;
                self.life.on_released();
                self.features.pause();
                self.preview.on_service_reset();
                self.call(Task::Release, Op::Release, false, |s| async move { s.release().await });
                self.emit(EngineEvent::StateChanged { state: self.life.state() });
                let _ = r.send(Ok(()));
            }
            // `run` handles shutdown before dispatching here.
            Cmd::Shutdown(r) => {
                let _ = r.send(Ok(()));
            }
        }
    }

    /// Why a flow may not start now.
    fn can_start(&self) -> Result<()> {
        if self.flow.is_some() {
            return Err(Error::FlowBusy);
        }
        if self.gate_wanted {
            return Err(Error::FlowBusy);
        }
        match self.life.state() {
            crate::terminal::lifecycle::LinkState::Ready => {}
            crate::terminal::lifecycle::LinkState::Disconnected => return Err(Error::ServiceDisconnected),
            _ => return Err(Error::NotInitialised),
        }
        if !self.features.ready() {
            return Err(Error::FeaturesNotReady);
        }
        if self.auth.is_mismatch() {
            return Err(Error::ConfigMismatch("organization_id does not belong to mch_id".into()));
        }
        if self.auth.valid(self.now()).is_none() {
            return Err(Error::AuthInfoUnavailable("no valid authinfo yet; fetching".into()));
        }
        Ok(())
    }

    fn start_flow(&mut self, req: Option<PayRequest>, reply: Option<Reply<FlowId>>) {
        let now = self.now();
        let id = FlowId(self.next_id);
        self.next_id += 1;
        let gate = req.is_none();
        let mode = if gate { RecogMode::Gate } else { RecogMode::Pay };
        let (fee, out_trade_no) = req.map_or((None, None), |r| (Some(r.amount_fen), r.out_trade_no));
        let timeout = (!gate).then(|| ms(self.t.flow_timeout_ms));
        let flow = Flow::new(id, id.0, mode, fee, now, timeout, ms(self.t.first_callback_timeout_ms));
        let p = VerifyParams {
            session: id.0,
            authinfo: self.auth.valid(now).cloned().unwrap_or_default(),
            appid: self.cfg.appid.clone(),
            mch_id: self.cfg.mch_id.clone(),
            sub_appid: self.cfg.sub_appid.clone(),
            sub_mch_id: self.cfg.sub_mch_id.clone(),
            organization_id: self.cfg.organization_id.clone(),
            recog_mode: mode,
            total_fee: fee,
            out_trade_no,
        };
        self.flow = Some(FlowCtx {
            flow,
            start: reply,
            recog_waiters: Vec::new(),
            recognised: None,
            finish: None,
            user: None,
            cred: None,
            gate,
        });
        self.call(Task::Start(id), Op::StartVerify, false, move |s| async move { s.start_verify(p).await });
    }

    /// The error for waiting on a flow that is not running: how it ended, if it was the
    /// last one.
    fn ended_error(&self, id: FlowId) -> Error {
        match &self.last_flow {
            Some(f) if f.id == id => f
                .outcome()
                .and_then(|o| o.error(ms(self.t.flow_timeout_ms)))
                .unwrap_or(Error::OutOfOrder { expected: "Ended", got: "Recognition" }),
            _ => Error::NoSuchFlow(id.0),
        }
    }

    /// Feeds the running flow (or, with `id`, only that flow); carries out the actions.
    fn flow_event(&mut self, id: Option<FlowId>, input: Input) -> Result<()> {
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
}

mod events;
