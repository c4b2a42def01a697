//! The engine operations behind the natives, each parsed and checked once for both of its
//! natives: the blocking `Engine_op` ([`crate::engine_natives`]) and the asynchronous
//! `Engine_opAsync` ([`crate::async_natives`]). A bad argument becomes an
//! `IllegalArgumentException` at the call, before the engine sees it; each operation's future
//! needs no runtime (it runs on a blocked caller or on the answering thread) and its result
//! crosses as JSON ([`Op::json`], the shapes `FacePay.kt` parses). The pay flow's steps follow
//! the only legal order (SPEC T7.3 recognition before finish, T7.4 finish before credential,
//! T7.6 the auxiliary verification when asked, else a stop) and tell their caller the flow id
//! as soon as it exists, so a cancelled coroutine can stop it (T7.7).

use std::future::Future;

use jni::objects::JString;
use jni::sys::{jint, jlong};
use jni::Env;
use serde_json::json;

use facepay::terminal::engine::{Paid, PayRequest, Recognition, Terminal};
use facepay::terminal::face_service::{Surface, UserInfo};
use facepay::terminal::verify::FlowId;
use facepay::{Result, Secret};

use crate::ffi::{illegal_arg, FfiResult};

pub(crate) fn opt_string(env: &mut Env<'_>, s: &JString<'_>) -> FfiResult<Option<String>> {
    if s.is_null() {
        return Ok(None);
    }
    Ok(Some(s.try_to_string(env)?))
}

pub(crate) fn req_string(env: &mut Env<'_>, s: &JString<'_>, what: &str) -> FfiResult<String> {
    match opt_string(env, s)? {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(illegal_arg(format!("{what} must not be null or empty"))),
    }
}

pub(crate) fn flow(id: jlong) -> FfiResult<FlowId> {
    if id <= 0 {
        return Err(illegal_arg("flowId must be a flow id returned by startFlow"));
    }
    Ok(FlowId(id as u64))
}

fn pay_request(env: &mut Env<'_>, amount_fen: jlong, out_trade_no: &JString<'_>) -> FfiResult<PayRequest> {
    if amount_fen <= 0 {
        return Err(illegal_arg("amountFen must be greater than 0"));
    }
    Ok(PayRequest { amount_fen: amount_fen as u64, out_trade_no: opt_string(env, out_trade_no)? })
}

/// `{"user_id", "out_user_id", "need_ext_verify"}`: the name stays in Rust (personal data).
fn recognition_json(r: &Recognition) -> String {
    json!({
        "user_id": r.user.user_id,
        "out_user_id": r.user.out_user_id,
        "need_ext_verify": r.need_ext_verify,
    })
    .to_string()
}

/// One engine operation with its checked arguments.
pub(crate) trait Op: Send + 'static {
    type Out: Send + 'static;

    /// Runs it; `started` gets the flow id of a flow the operation starts itself (pay).
    fn run(
        self,
        t: Terminal,
        started: impl FnOnce(FlowId) + Send + 'static,
    ) -> impl Future<Output = Result<Self::Out>> + Send + 'static;

    /// The result as the asynchronous natives complete with it.
    fn json(out: &Self::Out) -> String;
}

macro_rules! unit_op {
    ($(#[$m:meta])* $name:ident, $method:ident) => {
        $(#[$m])*
        pub(crate) struct $name;

        impl Op for $name {
            type Out = ();
            async fn run(self, t: Terminal, _started: impl FnOnce(FlowId) + Send + 'static) -> Result<()> {
        t.$method().await
    }
            fn json(_: &()) -> String {
                "null".to_string()
            }
        }
    };
}

unit_op!(
    /// T2.1: idempotent; answers once the service is ready (T4.1).
    Init, init
);
unit_op!(StartGate, start_gate);
unit_op!(StopGate, stop_gate);
unit_op!(SurfaceDestroyed, surface_destroyed);
unit_op!(
    /// T2.2: the documented last resort.
    Release, release
);

/// Starts a flow; the result is its id.
pub(crate) struct StartFlow(PayRequest);

impl StartFlow {
    pub(crate) fn parse(env: &mut Env<'_>, amount_fen: jlong, out_trade_no: &JString<'_>) -> FfiResult<Self> {
        Ok(StartFlow(pay_request(env, amount_fen, out_trade_no)?))
    }
}

impl Op for StartFlow {
    type Out = FlowId;
    async fn run(self, t: Terminal, _: impl FnOnce(FlowId) + Send + 'static) -> Result<FlowId> {
        t.start_flow(self.0).await
    }
    fn json(f: &FlowId) -> String {
        f.0.to_string()
    }
}

/// The recognition of a flow ([`recognition_json`]).
pub(crate) struct WaitRecognition(pub(crate) FlowId);

impl Op for WaitRecognition {
    type Out = Recognition;
    async fn run(self, t: Terminal, _: impl FnOnce(FlowId) + Send + 'static) -> Result<Recognition> {
        t.wait_recognition(self.0).await
    }
    fn json(r: &Recognition) -> String {
        recognition_json(r)
    }
}

/// T7.6: the auxiliary verification's phone (or its tail), never logged.
pub(crate) struct ExtVerify(FlowId, Secret);

impl ExtVerify {
    pub(crate) fn parse(env: &mut Env<'_>, flow_id: jlong, phone: &JString<'_>) -> FfiResult<Self> {
        let f = flow(flow_id)?;
        Ok(ExtVerify(f, Secret::new(req_string(env, phone, "phone")?)))
    }
}

impl Op for ExtVerify {
    type Out = ();
    async fn run(self, t: Terminal, _: impl FnOnce(FlowId) + Send + 'static) -> Result<()> {
        t.ext_verify(self.0, self.1).await
    }
    fn json(_: &()) -> String {
        "null".to_string()
    }
}

/// The recognised user (only the id crosses).
pub(crate) struct Finish(pub(crate) FlowId);

impl Op for Finish {
    type Out = UserInfo;
    async fn run(self, t: Terminal, _: impl FnOnce(FlowId) + Send + 'static) -> Result<UserInfo> {
        t.finish(self.0).await
    }
    fn json(u: &UserInfo) -> String {
        json!({ "user_id": u.user_id }).to_string()
    }
}

/// The payment's idempotency key (the credential itself stays in Rust, T7.8).
pub(crate) struct Credential(pub(crate) FlowId);

impl Op for Credential {
    type Out = String;
    async fn run(self, t: Terminal, _: impl FnOnce(FlowId) + Send + 'static) -> Result<String> {
        t.credential(self.0).await
    }
    fn json(k: &String) -> String {
        json!({ "idempotency_key": k }).to_string()
    }
}

pub(crate) struct Stop(pub(crate) FlowId);

impl Op for Stop {
    type Out = ();
    async fn run(self, t: Terminal, _: impl FnOnce(FlowId) + Send + 'static) -> Result<()> {
        t.stop(self.0).await
    }
    fn json(_: &()) -> String {
        "null".to_string()
    }
}

/// T6: the preview surface (registered by the Kotlin preview binder) has its size.
pub(crate) struct SurfaceChanged(Surface);

impl SurfaceChanged {
    pub(crate) fn parse(surface_id: jlong, width: jint, height: jint) -> FfiResult<Self> {
        if surface_id <= 0 || width <= 0 || height <= 0 {
            return Err(illegal_arg("surfaceId, width and height must be greater than 0 (T6.1)"));
        }
        Ok(SurfaceChanged(Surface { id: surface_id as u64, width: width as u32, height: height as u32 }))
    }
}

impl Op for SurfaceChanged {
    type Out = ();
    async fn run(self, t: Terminal, _: impl FnOnce(FlowId) + Send + 'static) -> Result<()> {
        t.surface_changed(self.0).await
    }
    fn json(_: &()) -> String {
        "null".to_string()
    }
}

/// A whole payment in the only legal order (the steps of `Terminal::pay`, telling the caller
/// the flow id first). `phone` answers an auxiliary verification (T7.6); none stops the flow
/// when one is needed (`FLOW_CANCELLED`).
pub(crate) struct Pay(PayRequest, Option<Secret>);

impl Pay {
    pub(crate) fn parse(
        env: &mut Env<'_>,
        amount_fen: jlong,
        out_trade_no: &JString<'_>,
        phone: &JString<'_>,
    ) -> FfiResult<Self> {
        let req = pay_request(env, amount_fen, out_trade_no)?;
        Ok(Pay(req, opt_string(env, phone)?.map(Secret::new)))
    }
}

impl Op for Pay {
    type Out = Paid;
    async fn run(self, t: Terminal, started: impl FnOnce(FlowId) + Send + 'static) -> Result<Paid> {
        let Pay(req, phone) = self;
        // The phone the app gave, if the service asks for auxiliary verification (T7.6).
        let ext = move |_: &UserInfo| phone.clone();
        t.pay_reporting(req, &ext, started).await
    }
    fn json(p: &Paid) -> String {
        json!({ "flow_id": p.flow_id.0, "idempotency_key": p.idempotency_key, "user_id": p.user_id }).to_string()
    }
}
