//! The engine actor: the only place that owns timers, the store, the outbox and the face
//! service (DESIGN "Pure policy, thin runtime"). It feeds app commands, service answers,
//! service callbacks and time into the pure policies (`lifecycle`, `auth_info`,
//! `features`, `verify`, `preview`, `restart`) and carries out what they decide. Every
//! vendor call is a future with a deadline (T1.1), polled by the actor itself, whose answer
//! is tagged with the link generation, so answers of a lost connection are dropped (T1.2).
//! Vendor calls go out one at a time from one queue (`calls`, T9: the library keeps one
//! pending call while disconnected and a second overwrites the first), every call after
//! rawdata carries the authed map with the newest authinfo (T3.6), and after every
//! (re)connection the start-up sequence runs again (`sequence`, T3.6/T4.1/T5).

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::terminal::auth_info::{self, AuthCache};
use crate::terminal::backend::AuthInfoGrant;
use crate::terminal::command::{Cmd, Deps, PayRequest, Recognition, Reply};
use crate::terminal::config::{TerminalConfig, Timing};
use crate::terminal::face_service::{
    Authed, AuthedMap, Credential, FaceService, InitParams, Op, ReturnCode, SdkInfo, ServiceEvent, UserInfo,
    VendorError, VerifyParams,
};
use crate::terminal::features::FeatureMonitor;
use crate::terminal::gate::Gate;
use crate::terminal::health::{EngineEvent, Health, Published};
use crate::terminal::lifecycle::{Lifecycle, LinkAction, LossReason};
use crate::terminal::outbox::{Outbox, OutboxEvent, OutboxHandle};
use crate::terminal::preview::PreviewBinder;
use crate::terminal::restart::RestartPlanner;
use crate::terminal::sequence::Sequence;
use crate::terminal::verify::{Flow, FlowId, FlowMode, Input};

/// T6.3: the view's size must be stable this long before binding.
const PREVIEW_SETTLE: Duration = Duration::from_millis(300);
/// How many times one turn of the loop handles timers that its own handlers made due at
/// once (a gate start when verification opens), before it lets the clock wake it.
const TIMER_PASSES: usize = 4;

/// A vendor call's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Init,
    /// `getWxpayfaceRawdata`, for the sequence or a refresh of the authinfo.
    RawData,
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
    Raw(String),
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
    /// The vendor call's number (0: not a vendor call, e.g. the backend fetch).
    id: u64,
    task: Task,
    res: std::result::Result<Answer, Fail>,
}

/// The running flow with its waiting callers. The flow itself (`verify`) holds its whole
/// truth (the recognised user, its mode); this holds only who waits for what.
struct FlowCtx {
    flow: Flow,
    start: Option<Reply<FlowId>>,
    recog_waiters: Vec<Reply<Recognition>>,
    finish: Option<Reply<UserInfo>>,
    cred: Option<Reply<String>>,
}

/// A vendor call waiting for its turn: made only when it goes out (the JNI driver
/// dispatches as soon as a call is made).
/// It is handed the service and the call's number, and returns the whole call: the vendor
/// future under its deadline, tagged for `on_done` (one allocation for the lot).
type MakeCall = Box<dyn FnOnce(Arc<dyn FaceService>, u64) -> DoneFut + Send>;
type DoneFut = Pin<Box<dyn Future<Output = Done> + Send>>;

struct Queued {
    gen: u64,
    make: MakeCall,
}

pub(crate) struct Actor {
    cfg: TerminalConfig,
    t: Timing,
    deps: Deps,
    rx: mpsc::UnboundedReceiver<Cmd>,
    events: broadcast::Sender<EngineEvent>,
    shared: Arc<Mutex<Published>>,
    /// The working copy (published in place, see `Published::write`).
    h: Health,
    store: Store,
    outbox: Option<OutboxHandle>,
    outbox_rx: Option<mpsc::UnboundedReceiver<OutboxEvent>>,
    /// Vendor calls in flight, each with its deadline, polled by the actor itself.
    calls: FuturesUnordered<DoneFut>,
    /// Vendor calls not yet sent, and the number of the one outstanding (T9).
    queue: VecDeque<Queued>,
    outstanding: Option<u64>,
    call_seq: u64,
    /// The authed map of the newest authinfo (T3.6); `None` before the first authinfo.
    authed: Option<Authed>,
    seq: Sequence,
    svc_rx: mpsc::UnboundedReceiver<ServiceEvent>,
    life: Lifecycle,
    auth: AuthCache,
    features: FeatureMonitor,
    preview: PreviewBinder,
    restart: RestartPlanner,
    flow: Option<FlowCtx>,
    last_flow: Option<Flow>,
    gate: Gate,
    /// Every deadline of the policies above, from which the loop takes its next wake-up.
    timers: TimerTable,
    /// The clock, read once when a turn of the loop begins: every handler of that turn
    /// sees the same `now` (as a pure policy would be handed it).
    now: Instant,
    init_waiters: Vec<Reply<()>>,
    fetching_auth: bool,
    /// Raw data for a refresh is being asked for (not a sequence step).
    refreshing_raw: bool,
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
        let authed = auth.valid(now).map(|a| authed_map(&cfg, a.clone()));
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
            store,
            outbox: None,
            outbox_rx: None,
            calls: FuturesUnordered::new(),
            queue: VecDeque::new(),
            outstanding: None,
            call_seq: 0,
            authed,
            seq: Sequence::default(),
            svc_rx,
            auth,
            restart,
            flow: None,
            last_flow: None,
            gate: Gate::new(ms(t.backoff_initial_ms)),
            timers: TimerTable::default(),
            now,
            init_waiters: Vec::new(),
            fetching_auth: false,
            refreshing_raw: false,
            updating: false,
            checking: false,
            next_id: 1,
            rng: RandomState::new(),
        })
    }

    fn now(&self) -> Instant {
        self.now
    }

    /// Reads the clock for the turn of the loop that begins.
    fn read_clock(&mut self) {
        self.now = self.deps.clock.now();
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
        self.read_clock();
        let a = self.life.start();
        self.link(a);
        // T8: the restart planner is asked at start, then whenever it asked to be.
        self.timers.set(Timer::Restart, Some(self.now));
        self.on_timers();
        self.publish();
        // One timer for the whole loop, moved only when the table's earliest deadline moves.
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
                cmd = self.rx.recv() => {
                    self.read_clock();
                    match cmd {
                        Some(Cmd::Shutdown(r)) => {
                            if let Some(o) = &self.outbox { o.shutdown().await; }
                            let _ = r.send(Ok(()));
                            return;
                        }
                        Some(cmd) => self.on_cmd(cmd),
                        None => return,
                    }
                },
                Some(done) = self.calls.next(), if !self.calls.is_empty() => { self.read_clock(); self.on_done(done) },
                Some(ev) = self.svc_rx.recv() => { self.read_clock(); self.on_service_event(ev) },
                Some(ev) = async { match outbox_rx { Some(r) => r.recv().await, None => None } } => {
                    self.read_clock();
                    self.on_outbox(ev)
                },
                _ = &mut timer => self.read_clock(),
            }
            self.drain_ready();
            self.on_timers();
            self.pump();
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

    /// The loop's next wake-up: the timer table's earliest deadline (an hour away if no
    /// timer is set, so the loop still turns now and then).
    fn next_wake(&self) -> Instant {
        let now = self.now();
        self.timers.next_timeout().unwrap_or(now + Duration::from_secs(3600)).max(now)
    }

    /// Copies every policy's next deadline into the timer table (the restart planner's
    /// slot is kept: it is set when the planner is asked, see `on_timer`).
    fn sync_timers(&mut self) {
        let ready = self.life.is_ready();
        // Verification is open: the link is up and the whole start-up sequence answered.
        let open = self.is_open();
        let now = self.now();
        let refresh =
            ready && !self.fetching_auth && !self.refreshing_raw && self.past_rawdata() && !self.auth.is_mismatch();
        let tt = &mut self.timers;
        tt.set(Timer::Link, self.life.poll_timeout());
        tt.set(Timer::Flow, self.flow.as_ref().and_then(|c| c.flow.poll_timeout()));
        tt.set(Timer::Features, open.then(|| self.features.poll_timeout()).flatten());
        // The refresh asks for raw data, which the sequence does itself until it has; with
        // nothing cached and no retry planned, it is due at once (never after T3.5's
        // mismatch: that is a configuration error, not a retry loop).
        tt.set(Timer::AuthRefresh, refresh.then(|| self.auth.refresh_at().unwrap_or(now)));
        tt.set(Timer::Preview, open.then(|| self.preview.poll_timeout()).flatten());
        // Only when it can act: a gate start that waits for the link or the first feature
        // update is resumed by those answers, not by spinning on the clock.
        tt.set(Timer::Gate, self.gate.poll_timeout(open, self.flow.is_none()));
    }

    // ---- starting calls: see `calls` ----------------------------------------------

    // ---- the link -------------------------------------------------------------------

    fn link(&mut self, a: Option<LinkAction>) {
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

    fn lost(&mut self, reason: LossReason) {
        let a = self.life.on_lost(reason, self.now());
        self.link(a);
    }

    // ---- commands ---------------------------------------------------------------------

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Init(r) => {
                let a = self.life.start();
                if self.is_open() {
                    let _ = r.send(Ok(()));
                } else if self.auth.is_mismatch() {
                    // T3.5: a configuration error; T3.6: nothing runs without an authinfo.
                    let _ = r.send(Err(Error::ConfigMismatch("organization_id does not belong to mch_id".into())));
                } else if self.seq.step() == crate::terminal::sequence::SeqStep::AuthInfo && !self.fetching_auth {
                    // The sequence waits for an authinfo whose fetch failed (retried with backoff).
                    let _ = r.send(Err(Error::AuthInfoUnavailable("authinfo fetch failed; retrying".into())));
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
                Some(c) if c.flow.id == id && !c.flow.is_ended() => match c.flow.recognised() {
                    Some((user, need_ext_verify)) => {
                        let _ = r.send(Ok(Recognition { user: user.clone(), need_ext_verify }));
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
                let res = if self.flow.as_ref().is_some_and(|c| !c.flow.is_gate()) {
                    Err(Error::FlowBusy)
                } else {
                    self.gate.start(self.now());
                    Ok(())
                };
                let _ = r.send(res);
            }
            Cmd::StopGate(r) => {
                self.gate.stop();
                if let Some(id) = self.flow.as_ref().filter(|c| c.flow.is_gate()).map(|c| c.flow.id) {
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
                self.gate.stop();
                self.life.on_released();
                self.seq.on_link_down();
                self.abandon_calls();
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

    fn start_flow(&mut self, req: Option<PayRequest>, reply: Option<Reply<FlowId>>) {
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
        self.flow = Some(FlowCtx { flow, start: reply, recog_waiters: Vec::new(), finish: None, cred: None });
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

/// The authed map of `authinfo` (T3.6).
fn authed_map(cfg: &TerminalConfig, authinfo: crate::error::Secret) -> Authed {
    Arc::new(AuthedMap {
        appid: cfg.appid.clone(),
        mch_id: cfg.mch_id.clone(),
        mch_name: cfg.mch_name.clone(),
        sub_appid: cfg.sub_appid.clone(),
        sub_mch_id: cfg.sub_mch_id.clone(),
        organization_id: cfg.organization_id.clone(),
        authinfo,
    })
}

mod calls;
mod events;
mod timers;

use timers::{Timer, TimerTable};
