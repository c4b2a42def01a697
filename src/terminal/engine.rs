//! The public handle of the terminal engine: [`Terminal`]. Every method is a message to
//! the engine actor (`runtime`) answered through a oneshot; the actor owns every deadline
//! (T1.1), so every call answers within its deadline with a typed result or a typed error,
//! never a hang, and the futures need no particular async runtime. One engine serves the
//! whole app (T2): it starts initialising in the background the moment it is created
//! (T2.3), keeps the service connection for the life of the app (T2.2) and reconnects by
//! itself (T1.2).

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::{Error, Result, Secret};
use crate::terminal::blocking;
use crate::terminal::command::{Cmd, Reply};
pub use crate::terminal::command::{Deps, Paid, PayRequest, Recognition};
use crate::terminal::config::TerminalConfig;
use crate::terminal::face_service::{Surface, UserInfo};
use crate::terminal::health::{EngineEvent, Health, Published};
use crate::terminal::runtime::Actor;
use crate::terminal::verify::FlowId;

/// The terminal engine. Cheap to clone; all clones drive the same engine.
#[derive(Clone)]
pub struct Terminal {
    tx: mpsc::UnboundedSender<Cmd>,
    events: broadcast::Sender<EngineEvent>,
    health: Arc<Mutex<Published>>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Terminal {
    /// Starts the engine on its own single-threaded runtime (one thread), as on a device.
    ///
    /// The app calls a flow's steps back to back, and waking a sleeping thread costs tens
    /// of microseconds on a virtual CPU, so before its thread sleeps the engine spins for a
    /// short, bounded while ([`blocking::SPIN`]) and stops as soon as it is woken.
    pub fn start(config: TerminalConfig, deps: Deps) -> Result<Terminal> {
        Self::start_subscribed(config, deps).map(|(t, _)| t)
    }

    /// [`Terminal::start`], with a receiver subscribed before the engine runs, so it sees
    /// every event from the first (the JNI layer's pump: `FacePay.events`).
    pub fn start_subscribed(
        config: TerminalConfig,
        deps: Deps,
    ) -> Result<(Terminal, broadcast::Receiver<EngineEvent>)> {
        let spin = blocking::EngineSpin::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(spin.park_hook())
            .build()
            .map_err(|e| Error::Internal(format!("runtime: {e}")))?;
        let store = config.store();
        let (term, actor) = {
            let _guard = rt.enter();
            Self::prepare(config, deps)?
        };
        let events = term.subscribe();
        let thread = std::thread::Builder::new()
            .name("facepay-engine".into())
            .spawn(move || {
                // The store opens here, on the engine's thread before its actor runs: not
                // on the app's thread (`Application#onCreate` is the main thread).
                let opened = crate::terminal::runtime::store_io::open_blocking(&store);
                rt.block_on(spin.watch(actor.run(Some(opened))))
            })
            .map_err(|e| Error::Internal(format!("engine thread: {e}")))?;
        *term.thread.lock() = Some(thread);
        Ok((term, events))
    }

    /// Starts the engine as a task on the current tokio runtime (tests with paused time,
    /// the demo's many simulated terminals).
    pub fn spawn(config: TerminalConfig, deps: Deps) -> Result<Terminal> {
        let (term, actor) = Self::prepare(config, deps)?;
        tokio::spawn(actor.run(None));
        Ok(term)
    }

    fn prepare(config: TerminalConfig, deps: Deps) -> Result<(Terminal, Actor)> {
        config.validate()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(1024);
        let health = Arc::new(Mutex::new(Published::default()));
        let actor = Actor::new(config, deps, rx, events.clone(), health.clone())?;
        Ok((Terminal { tx, events, health, thread: Arc::new(Mutex::new(None)) }, actor))
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// T2.1: idempotent. Resolves when the service is initialised and the first feature
    /// update answered (T4.1), or with the error of the current init attempt (the engine
    /// keeps retrying in the background).
    pub async fn init(&self) -> Result<()> {
        self.ask(Cmd::Init).await
    }

    /// Starts a payment flow (`startVerify`). Refused before the first feature update
    /// (T4.4), while another flow runs, or without a valid authinfo.
    pub async fn start_flow(&self, req: PayRequest) -> Result<FlowId> {
        if req.amount_fen == 0 {
            return Err(Error::invalid_arg("amount_fen", "must be positive"));
        }
        if let Some(n) = &req.out_trade_no {
            if !crate::config::is_out_trade_no(n) {
                return Err(Error::invalid_arg("out_trade_no", "1-32 characters of [A-Za-z0-9_-|*]"));
            }
        }
        self.ask(|r| Cmd::StartFlow(req, r)).await
    }

    /// Waits for the recognition callback of the flow (bounded by the flow timeout).
    pub async fn wait_recognition(&self, flow: FlowId) -> Result<Recognition> {
        self.ask(|r| Cmd::WaitRecognition(flow, r)).await
    }

    /// T7.6: the auxiliary verification the user entered (phone or its tail).
    pub async fn ext_verify(&self, flow: FlowId, phone: Secret) -> Result<()> {
        self.ask(|r| Cmd::ExtVerify(flow, phone, r)).await
    }

    /// `finishFaceVerify`: only after the recognition callback (T7.3) and, if asked, the
    /// auxiliary verification (T7.6).
    pub async fn finish(&self, flow: FlowId) -> Result<UserInfo> {
        self.ask(|r| Cmd::Finish(flow, r)).await
    }

    /// `getFacePayCredential`: only after `finish` (T7.4), never after a cancel or failure
    /// (T7.5). The credential goes straight into the durable outbox; the answer is the
    /// payment's idempotency key.
    pub async fn credential(&self, flow: FlowId) -> Result<String> {
        self.ask(|r| Cmd::Credential(flow, r)).await
    }

    /// `stopVerify`: at any time; the flow ends and takes no further call (T7.7).
    pub async fn stop(&self, flow: FlowId) -> Result<()> {
        self.ask(|r| Cmd::Stop(flow, r)).await
    }

    /// A whole payment in the only legal order. `ext` answers the auxiliary verification
    /// when the service asks for it (T7.6); `None` cancels the flow.
    pub async fn pay(&self, req: PayRequest, ext: &(dyn Fn(&UserInfo) -> Option<Secret> + Sync)) -> Result<Paid> {
        self.pay_reporting(req, ext, |_| {}).await
    }

    /// [`Self::pay`], handing `started` the flow's id as soon as the flow has one, so that
    /// the caller can stop it meanwhile (T7.7: a cancelled coroutine behind JNI).
    pub async fn pay_reporting(
        &self,
        req: PayRequest,
        ext: &(dyn Fn(&UserInfo) -> Option<Secret> + Sync),
        started: impl FnOnce(FlowId),
    ) -> Result<Paid> {
        let flow = self.start_flow(req).await?;
        started(flow);
        let rec = self.wait_recognition(flow).await?;
        if rec.need_ext_verify {
            match ext(&rec.user) {
                Some(phone) => self.ext_verify(flow, phone).await?,
                None => {
                    self.stop(flow).await?;
                    return Err(Error::FlowCancelled);
                }
            }
        }
        let user = self.finish(flow).await?;
        let idempotency_key = self.credential(flow).await?;
        Ok(Paid { flow_id: flow, idempotency_key, user_id: user.user_id })
    }

    /// Continuous recognition for access control (T1.3): keeps running across service
    /// restarts with no app action, until `stop_gate`.
    pub async fn start_gate(&self) -> Result<()> {
        self.ask(Cmd::StartGate).await
    }

    pub async fn stop_gate(&self) -> Result<()> {
        self.ask(Cmd::StopGate).await
    }

    /// The preview surface was created or resized (T6).
    pub async fn surface_changed(&self, surface: Surface) -> Result<()> {
        self.ask(|r| Cmd::Surface(Some(surface), r)).await
    }

    /// The preview surface was destroyed (T6.1: bound again when recreated).
    pub async fn surface_destroyed(&self) -> Result<()> {
        self.ask(|r| Cmd::Surface(None, r)).await
    }

    /// `releaseWxpayface`: a documented last resort (T2.2). The engine never calls it by
    /// itself; after it nothing reconnects until `init`.
    pub async fn release(&self) -> Result<()> {
        self.ask(Cmd::Release).await
    }

    /// The current health snapshot.
    pub fn health(&self) -> Health {
        Published::read(&self.health)
    }

    /// Notified whenever the health snapshot changes (one waiter: the JNI layer's push of
    /// `FacePay.health`); the remaining authinfo time alone does not count as a change.
    pub fn health_notify(&self) -> Arc<tokio::sync::Notify> {
        Published::changed(&self.health)
    }

    /// The event stream (T1.4). A slow reader loses the oldest events; counters in
    /// [`Terminal::health`] never miss one.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// Stops the engine (tests, process exit). The service connection is not released.
    pub async fn shutdown(&self) -> Result<()> {
        let r = self.ask(Cmd::Shutdown).await;
        let handle = self.thread.lock().take();
        if let Some(h) = handle {
            h.join().map_err(|_| Error::Internal("engine thread panicked".into()))?;
        }
        r
    }
}
