//! The engine's messages: what [`crate::terminal::engine::Terminal`] sends the actor
//! (`runtime`) and the types they carry. Apart from both so that neither imports the
//! other's internals: the handle and the actor share only this vocabulary.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::clock::{Clock, SystemClock};
use crate::error::{Result, Secret};
use crate::terminal::backend::{AuthInfoSource, PaymentBackend};
use crate::terminal::face_service::{FaceService, Surface, UserInfo};
use crate::terminal::verify::FlowId;

/// What the engine drives and talks to.
#[derive(Clone)]
pub struct Deps {
    pub service: Arc<dyn FaceService>,
    pub auth: Arc<dyn AuthInfoSource>,
    pub payments: Arc<dyn PaymentBackend>,
    pub clock: Arc<dyn Clock>,
}

impl Deps {
    pub fn new(
        service: Arc<dyn FaceService>,
        auth: Arc<dyn AuthInfoSource>,
        payments: Arc<dyn PaymentBackend>,
    ) -> Self {
        Deps { service, auth, payments, clock: Arc::new(SystemClock) }
    }
}

/// A payment flow request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayRequest {
    /// Amount in fen (分); must be positive.
    pub amount_fen: u64,
    pub out_trade_no: Option<String>,
}

/// The recognition callback's result (T7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognition {
    pub user: UserInfo,
    /// T7.6: auxiliary verification (`ext_verify`) is required before `finish`.
    pub need_ext_verify: bool,
}

/// A payment whose credential is safely in the outbox (T7.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    pub flow_id: FlowId,
    pub idempotency_key: String,
    pub user_id: String,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

pub(crate) enum Cmd {
    Init(Reply<()>),
    StartFlow(PayRequest, Reply<FlowId>),
    WaitRecognition(FlowId, Reply<Recognition>),
    ExtVerify(FlowId, Secret, Reply<()>),
    Finish(FlowId, Reply<UserInfo>),
    Credential(FlowId, Reply<String>),
    Stop(FlowId, Reply<()>),
    StartGate(Reply<()>),
    StopGate(Reply<()>),
    Surface(Option<Surface>, Reply<()>),
    Release(Reply<()>),
    Shutdown(Reply<()>),
}
