//! `Native.Engine_*`: the terminal engine (one per app, T2) behind an `Arc` handle, with its
//! callback thread ([`crate::callbacks`]: completions, events, health pushes). These natives
//! block the calling Java thread on the engine's answer (the `…Blocking` API, benchmarks);
//! the `suspend` and `CompletableFuture` API uses [`crate::async_natives`]. Results cross as
//! JSON ([`crate::schema`]), never positional arrays; every answer comes within the
//! engine's deadlines (T1.1).

use std::sync::Arc;

use jni::objects::{JClass, JObject, JString};
use jni::sys::{jboolean, jint, jlong};
use jni::{Env, EnvUnowned};

use facepay::terminal::backend_http::HttpBackend;
use facepay::terminal::blocking::block_on;
use facepay::terminal::config::TerminalConfig;
use facepay::terminal::engine::{Deps, PayRequest, Recognition, Terminal};
use facepay::terminal::face_service::{FaceService, Surface};
use facepay::terminal::verify::FlowId;
use facepay::Secret;

use serde_json::json;

use crate::callbacks::{Callbacks, Counted};
use crate::driver::service_from_handle;
use crate::ffi::{illegal_arg, run_ffi_safe, FfiResult};
use crate::handles;

pub struct Engine {
    pub term: Terminal,
    pub callbacks: Callbacks,
}

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

pub(crate) fn engine(h: jlong) -> FfiResult<Arc<Engine>> {
    // SAFETY: Kotlin passes the handle from Engine_create under its close lock.
    unsafe { handles::borrow::<Engine>(h, "FacePay (closed: call FacePay.init again)") }
}

pub(crate) fn flow(id: jlong) -> FfiResult<FlowId> {
    if id <= 0 {
        return Err(illegal_arg("flowId must be a flow id returned by startFlow"));
    }
    Ok(FlowId(id as u64))
}

pub(crate) fn amount(a: jlong) -> FfiResult<u64> {
    if a <= 0 {
        return Err(illegal_arg("amountFen must be greater than 0"));
    }
    Ok(a as u64)
}

pub(crate) fn surface(surface_id: jlong, width: jint, height: jint) -> FfiResult<Surface> {
    if surface_id <= 0 || width <= 0 || height <= 0 {
        return Err(illegal_arg("surfaceId, width and height must be greater than 0 (T6.1)"));
    }
    Ok(Surface { id: surface_id as u64, width: width as u32, height: height as u32 })
}

/// `{"user_id", "out_user_id", "need_ext_verify"}`: the name stays in Rust (personal data).
pub(crate) fn recognition_json(r: &Recognition) -> String {
    json!({
        "user_id": r.user.user_id,
        "out_user_id": r.user.out_user_id,
        "need_ext_verify": r.need_ext_verify,
    })
    .to_string()
}

/// `Engine_create(configJson, simulatedBackend, sim, driver, sink): Long`. Exactly one of
/// `sim` (a `Sim_create` handle) and `driver` (a `Driver_create` handle) is non-zero; `sink`
/// (an `io.facepay.EventSink`) receives the events and health pushes.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1create<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    config: JString<'l>,
    simulated_backend: jboolean,
    sim: jlong,
    driver: jlong,
    sink: JObject<'l>,
) -> jlong {
    run_ffi_safe(env, |env| {
        if sink.is_null() {
            return Err(illegal_arg("sink must not be null"));
        }
        let json = req_string(env, &config, "config")?;
        let cfg = TerminalConfig::from_json(&json)?;
        let service: Arc<dyn FaceService> = match (sim, driver) {
            // SAFETY: a live Sim_create handle (only a `simulator` build creates one).
            (s, 0) if s != 0 => unsafe { crate::sim_natives::service_from_handle(s)? },
            // SAFETY: a live Driver_create handle.
            (0, d) if d != 0 => unsafe { service_from_handle(d)? },
            _ => return Err(illegal_arg("exactly one of a simulator and a driver is needed")),
        };
        let deps = if simulated_backend {
            crate::sim_natives::simulated_backend(&cfg, service)?
        } else {
            // S1, S3: signed with the device credential, HTTPS pinned to the configured CA.
            let http = Arc::new(HttpBackend::from_config(&cfg, Arc::new(facepay::clock::SystemClock))?);
            Deps::new(service, http.clone(), http)
        };
        let (term, events) = Terminal::start_subscribed(cfg, deps)?;
        let sink = Counted::new(env, &sink)?;
        let callbacks = match Callbacks::start(term.clone(), events, sink) {
            Ok(c) => c,
            Err(e) => {
                let _ = block_on(term.shutdown());
                return Err(e);
            }
        };
        Ok(handles::into_handle(Arc::new(Engine { term, callbacks })))
    })
}

/// `Config_validate(configJson)`: the core's checks, throwing `FacePayException(101)` that
/// names the bad field (the Kotlin builders call it).
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Config_1validate<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    config: JString<'l>,
) {
    run_ffi_safe(env, |env| {
        let json = req_string(env, &config, "config")?;
        TerminalConfig::from_json(&json)?;
        Ok(())
    })
}

/// `Engine_init(h)`: T2.1, idempotent; answers once the service is ready (T4.1).
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1init<'l>(env: EnvUnowned<'l>, _c: JClass<'l>, h: jlong) {
    run_ffi_safe(env, |_env| Ok(block_on(engine(h)?.term.init())?))
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1startFlow<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    amount_fen: jlong,
    out_trade_no: JString<'l>,
) -> jlong {
    run_ffi_safe(env, |env| {
        let req = PayRequest { amount_fen: amount(amount_fen)?, out_trade_no: opt_string(env, &out_trade_no)? };
        let e = engine(h)?;
        Ok(block_on(e.term.start_flow(req))?.0 as jlong)
    })
}

/// The recognition as JSON ([`recognition_json`]).
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1waitRecognition<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    flow_id: jlong,
) -> JString<'l> {
    run_ffi_safe(env, |env| {
        let r = block_on(engine(h)?.term.wait_recognition(flow(flow_id)?))?;
        Ok(env.new_string(recognition_json(&r))?)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1extVerify<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    flow_id: jlong,
    phone: JString<'l>,
) {
    run_ffi_safe(env, |env| {
        let phone = Secret::new(req_string(env, &phone, "phone")?);
        Ok(block_on(engine(h)?.term.ext_verify(flow(flow_id)?, phone))?)
    })
}

/// Returns the user id.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1finish<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    flow_id: jlong,
) -> JString<'l> {
    run_ffi_safe(env, |env| {
        let u = block_on(engine(h)?.term.finish(flow(flow_id)?))?;
        Ok(env.new_string(u.user_id)?)
    })
}

/// Returns the payment's idempotency key (the credential itself stays in Rust, T7.8).
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1credential<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    flow_id: jlong,
) -> JString<'l> {
    run_ffi_safe(env, |env| {
        let key = block_on(engine(h)?.term.credential(flow(flow_id)?))?;
        Ok(env.new_string(key)?)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1stop<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    flow_id: jlong,
) {
    run_ffi_safe(env, |_env| Ok(block_on(engine(h)?.term.stop(flow(flow_id)?))?))
}

/// A whole payment: `{"flow_id", "idempotency_key", "user_id"}`. `phone` answers an auxiliary
/// verification (T7.6); null cancels the flow when one is needed.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1pay<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    amount_fen: jlong,
    out_trade_no: JString<'l>,
    phone: JString<'l>,
) -> JString<'l> {
    run_ffi_safe(env, |env| {
        let req = PayRequest { amount_fen: amount(amount_fen)?, out_trade_no: opt_string(env, &out_trade_no)? };
        let phone = opt_string(env, &phone)?.map(Secret::new);
        let ext = move |_: &facepay::terminal::face_service::UserInfo| phone.clone();
        let paid = block_on(engine(h)?.term.pay(req, &ext))?;
        let j = json!({ "flow_id": paid.flow_id.0, "idempotency_key": paid.idempotency_key, "user_id": paid.user_id });
        Ok(env.new_string(j.to_string())?)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1startGate<'l>(env: EnvUnowned<'l>, _c: JClass<'l>, h: jlong) {
    run_ffi_safe(env, |_env| Ok(block_on(engine(h)?.term.start_gate())?))
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1stopGate<'l>(env: EnvUnowned<'l>, _c: JClass<'l>, h: jlong) {
    run_ffi_safe(env, |_env| Ok(block_on(engine(h)?.term.stop_gate())?))
}

/// T6: the preview surface `surfaceId` (registered by the Kotlin preview binder) has its size.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1surfaceChanged<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    surface_id: jlong,
    width: jint,
    height: jint,
) {
    run_ffi_safe(env, |_env| {
        let s = surface(surface_id, width, height)?;
        Ok(block_on(engine(h)?.term.surface_changed(s))?)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1surfaceDestroyed<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
) {
    run_ffi_safe(env, |_env| Ok(block_on(engine(h)?.term.surface_destroyed())?))
}

/// T2.2: the documented last resort.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1release<'l>(env: EnvUnowned<'l>, _c: JClass<'l>, h: jlong) {
    run_ffi_safe(env, |_env| Ok(block_on(engine(h)?.term.release())?))
}

/// The health snapshot as JSON ([`crate::schema::health_json`]: every field).
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1health<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
) -> JString<'l> {
    run_ffi_safe(env, |env| {
        let hl = engine(h)?.term.health();
        Ok(env.new_string(crate::schema::health_json(&hl))?)
    })
}

/// Stops the engine and drops the handle's reference (the Kotlin side calls it once).
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1close<'l>(env: EnvUnowned<'l>, _c: JClass<'l>, h: jlong) {
    run_ffi_safe(env, |_env| {
        let e = engine(h)?;
        let r = block_on(e.term.shutdown());
        // Every pending call has its answer now; the callback thread delivers them and ends.
        e.callbacks.stop();
        drop(e);
        // SAFETY: called once per handle, after every live call returned (Kotlin's lock).
        unsafe { handles::release::<Engine>(h) };
        match r {
            Ok(()) | Err(facepay::Error::Closed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    })
}
