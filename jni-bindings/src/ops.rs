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

/// An operation that calls one `Terminal` method with its fields as the arguments; `$json` shapes
/// its result. A unit struct when it takes none.
macro_rules! op {
    ($(#[$m:meta])* $name:ident => $method:ident -> (), $json:expr) => {
        $(#[$m])*
        pub(crate) struct $name;

        impl Op for $name {
            type Out = ();
            async fn run(self, t: Terminal, _: impl FnOnce(FlowId) + Send + 'static) -> Result<()> {
                t.$method().await
            }
            fn json(out: &()) -> String {
                $json(out)
            }
        }
    };
    ($(#[$m:meta])* $name:ident($($arg:ident: $ty:ty),+) => $method:ident -> $out:ty, $json:expr) => {
        $(#[$m])*
        pub(crate) struct $name($(pub(crate) $ty),+);

        impl Op for $name {
            type Out = $out;
            async fn run(self, t: Terminal, _: impl FnOnce(FlowId) + Send + 'static) -> Result<$out> {
                let $name($($arg),+) = self;
                t.$method($($arg),+).await
            }
            fn json(out: &$out) -> String {
                $json(out)
            }
        }
    };
}

/// What a `void` operation completes with.
fn null(_: &()) -> String {
    "null".to_string()
}

op!(
    /// T2.1: idempotent; answers once the service is ready (T4.1).
    Init => init -> (), null
);
op!(StartGate => start_gate -> (), null);
op!(StopGate => stop_gate -> (), null);
op!(SurfaceDestroyed => surface_destroyed -> (), null);
op!(
    /// T2.2: the documented last resort.
    Release => release -> (), null
);
op!(
    /// Starts a flow; the result is its id.
    StartFlow(req: PayRequest) => start_flow -> FlowId, |f: &FlowId| f.0.to_string()
);
op!(
    /// The recognition of a flow ([`recognition_json`]).
    WaitRecognition(flow: FlowId) => wait_recognition -> Recognition, recognition_json
);
op!(
    /// T7.6: the auxiliary verification's phone (or its tail), never logged.
    ExtVerify(flow: FlowId, phone: Secret) => ext_verify -> (), null
);
op!(
    /// The recognised user (only the id crosses).
    Finish(flow: FlowId) => finish -> UserInfo, |u: &UserInfo| json!({ "user_id": u.user_id }).to_string()
);
op!(
    /// The payment's idempotency key (the credential itself stays in Rust, T7.8).
    Credential(flow: FlowId) => credential -> String, |k: &String| json!({ "idempotency_key": k }).to_string()
);
op!(Stop(flow: FlowId) => stop -> (), null);
op!(
    /// T6: the preview surface (registered by the Kotlin preview binder) has its size.
    SurfaceChanged(surface: Surface) => surface_changed -> (), null
);

impl StartFlow {
    pub(crate) fn parse(env: &mut Env<'_>, amount_fen: jlong, out_trade_no: &JString<'_>) -> FfiResult<Self> {
        Ok(StartFlow(pay_request(env, amount_fen, out_trade_no)?))
    }
}

impl ExtVerify {
    pub(crate) fn parse(env: &mut Env<'_>, flow_id: jlong, phone: &JString<'_>) -> FfiResult<Self> {
        let f = flow(flow_id)?;
        Ok(ExtVerify(f, Secret::new(req_string(env, phone, "phone")?)))
    }
}

impl SurfaceChanged {
    pub(crate) fn parse(surface_id: jlong, width: jint, height: jint) -> FfiResult<Self> {
        if surface_id <= 0 || width <= 0 || height <= 0 {
            return Err(illegal_arg("surfaceId, width and height must be greater than 0 (T6.1)"));
        }
        Ok(SurfaceChanged(Surface { id: surface_id as u64, width: width as u32, height: height as u32 }))
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
