//! The engine actor: the only place that owns timers, the store, the outbox and the face
//! service (DESIGN "Pure policy, thin runtime"). It feeds app commands, service answers,
//! service callbacks and time into the pure policies (`lifecycle`, `auth_info`,
//! `features`, `verify`, `preview`, `restart`) and carries out what they decide. Every
//! vendor call is a future with a deadline (T1.1), polled by the actor itself, whose answer
//! is tagged with the link generation, so answers of a lost connection are dropped (T1.2).
//! Vendor calls go out one at a time from one queue (`calls`, T9: the library keeps one
//! pending call while disconnected and a second overwrites the first), every call after
//! rawdata carries the authed map with the newest authinfo (T3.6), and after every
//! (re)connection the start-up sequence runs again (`sequence`, T3.6/T4.1/T5). This file
//! holds the actor's state and its loop; the handlers live beside it, one concern each:
//! `calls` (the vendor call queue and the start-up sequence), `answers` (what the calls
//! answered), `flow` (the verify flow, T7), `gate` (T1.3), `lifecycle` (the link, T1/T2,
//! and the preview, T6) and `timers` (the one timer table the loop sleeps on).

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

use crate::clock::unix_ms;
use crate::error::{Error, Result};
use crate::terminal::auth_info::AuthCache;
use crate::terminal::backend::AuthInfoGrant;
use crate::terminal::command::{Cmd, Deps, Recognition, Reply};
use crate::terminal::config::{TerminalConfig, Timing};
use crate::terminal::face_service::{
    Authed, AuthedMap, Credential, FaceService, Op, SdkInfo, ServiceEvent, UserInfo, VendorError,
};
use crate::terminal::features::FeatureMonitor;
use crate::terminal::gate::Gate;
use crate::terminal::health::{EngineEvent, Health, Published};
use crate::terminal::lifecycle::Lifecycle;
use crate::terminal::outbox::{Outbox, OutboxEvent, OutboxHandle};
use crate::terminal::preview::PreviewBinder;
use crate::terminal::restart::RestartPlanner;
use crate::terminal::sequence::Sequence;
use crate::terminal::verify::{Flow, FlowId, Input};

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
    /// The credential's commit is still running as an outbox store job (T7.8).
    committing: bool,
    /// The flow's end, held back until that commit is done.
    ended: Option<crate::terminal::verify::Outcome>,
}

/// A credential's commit to the outbox, answered (T7.8).
struct Committed {
    flow_id: FlowId,
    key: String,
    reply: Option<Reply<String>>,
    res: Result<()>,
}

type CommitFut = Pin<Box<dyn Future<Output = Committed> + Send>>;

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
    /// The engine's store connection (`None` until opened, or if it cannot be), and why
    /// it could not be opened: every init is answered with that.
    store: Option<StoreIo>,
    store_error: Option<Error>,
    outbox: Option<OutboxHandle>,
    outbox_rx: Option<mpsc::UnboundedReceiver<OutboxEvent>>,
    /// Credentials being committed by the outbox's store jobs (a file store).
    commits: FuturesUnordered<CommitFut>,
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
        let (svc_tx, svc_rx) = mpsc::unbounded_channel();
        deps.service.set_listener(svc_tx);
        let auth = AuthCache::new(t.authinfo_refresh_at_percent, ms(t.authinfo_default_ttl_ms));
        let now = deps.clock.now();
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
            store: None,
            store_error: None,
            outbox: None,
            outbox_rx: None,
            commits: FuturesUnordered::new(),
            calls: FuturesUnordered::new(),
            queue: VecDeque::new(),
            outstanding: None,
            call_seq: 0,
            authed: None,
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

    /// Runs the actor. `opened`: the store, if the engine's own thread opened it before
    /// (otherwise it opens on the blocking pool; never on the app's thread).
    pub(crate) async fn run(mut self, opened: Option<Result<store_io::Opened>>) {
        let opened = match opened {
            Some(o) => o,
            None => store_io::open(self.cfg.store()).await,
        };
        match opened {
            Ok(o) => self.on_store_opened(o),
            Err(e) => {
                tracing::error!(code = ?e.code(), "store unavailable: {e}");
                self.store_error = Some(e);
            }
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
                            while let Some(c) = self.commits.next().await { self.on_committed(c); }
                            if let Some(o) = &self.outbox { o.shutdown().await; }
                            if let Some(s) = &mut self.store { s.flush().await; }
                            let _ = r.send(Ok(()));
                            return;
                        }
                        Some(cmd) => self.on_cmd(cmd),
                        None => return,
                    }
                },
                Some(done) = self.calls.next(), if !self.calls.is_empty() => { self.read_clock(); self.on_done(done) },
                Some(c) = self.commits.next(), if !self.commits.is_empty() => { self.read_clock(); self.on_committed(c) },
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

    pub(super) fn outbox_timing(&self) -> crate::terminal::outbox::OutboxTiming {
        crate::terminal::outbox::OutboxTiming::from_timing(&self.t)
    }

    pub(super) fn on_outbox(&mut self, ev: OutboxEvent) {
        if let OutboxEvent::Final { key, state, .. } = ev {
            *self.h.payments_final.entry(state).or_default() += 1;
            self.emit(EngineEvent::PaymentFinal { idempotency_key: key, state });
        }
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

    /// The store is open: the persisted authinfo (T3.3: a restart within validity needs
    /// no network) and the outbox, which resumes what an earlier process left open.
    fn on_store_opened(&mut self, o: store_io::Opened) {
        let (now, wall) = (self.deps.clock.now(), self.deps.clock.wall());
        if let Some(p) = o.authinfo_json.and_then(|j| serde_json::from_str(&j).ok()) {
            self.auth.restore(p, &self.cfg.organization_id, now, wall);
            self.authed = self.auth.valid(now).map(|a| authed_map(&self.cfg, a.clone()));
        }
        self.store = Some(o.io);
        let (otx, orx) = mpsc::unbounded_channel();
        let (payments, timing, clock) = (self.deps.payments.clone(), self.outbox_timing(), self.deps.clock.clone());
        match Outbox::start(o.outbox_db, payments, timing, clock, otx) {
            Ok(h) => {
                self.outbox = Some(h);
                self.outbox_rx = Some(orx);
            }
            Err(e) => tracing::error!(code = ?e.code(), "outbox unavailable: {e}"),
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
            } else if let Some(Some(c)) = self.commits.next().now_or_never() {
                self.on_committed(c);
            } else if let Ok(ev) = self.svc_rx.try_recv() {
                self.on_service_event(ev);
            } else if let Some(ev) = self.outbox_rx.as_mut().and_then(|r| r.try_recv().ok()) {
                self.on_outbox(ev);
            } else {
                return;
            }
        }
    }

    // ---- starting calls: see `calls` ----------------------------------------------

    // ---- the link -------------------------------------------------------------------

    // ---- commands ---------------------------------------------------------------------

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Init(r) => {
                let a = self.life.start();
                if let Some(e) = &self.store_error {
                    // Nothing may be lost (T7.8): no payment without a store.
                    let _ = r.send(Err(lifecycle::clone_err(e)));
                } else if self.is_open() {
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
                let _ = r.send(self.start_gate());
            }
            Cmd::StopGate(r) => {
                self.stop_gate();
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

mod answers;
mod calls;
mod flow;
mod gate;
mod lifecycle;
pub(crate) mod store_io;
mod timers;

use store_io::StoreIo;

use timers::{Timer, TimerTable};
