//! `Native.Engine_*`: the terminal engine (one per app, T2) behind an `Arc` handle, with its
//! callback thread ([`crate::callbacks`]: events, health pushes). These natives
//! block the calling Java thread on the engine's answer (the `…Blocking` API, benchmarks);
//! the `suspend` and `CompletableFuture` API uses [`crate::async_natives`]; both run the same
//! operations, parsed once ([`crate::ops`]). Results cross as
//! JSON ([`crate::schema`]), never positional arrays; every answer comes within the
//! engine's deadlines (T1.1).

use std::sync::Arc;

use jni::objects::{JClass, JObject, JString};
use jni::sys::{jboolean, jint, jlong};
use jni::EnvUnowned;

use facepay::terminal::backend_http::HttpBackend;
use facepay::terminal::blocking::block_on;
use facepay::terminal::config::TerminalConfig;
use facepay::terminal::engine::{Deps, Terminal};
use facepay::terminal::face_service::FaceService;

use crate::callbacks::{Callbacks, Counted};
use crate::driver::service_from_handle;
use crate::ffi::{illegal_arg, run_ffi_safe, FfiResult};
use crate::handles;
use crate::ops::{self, flow, req_string, Op};

pub struct Engine {
    pub term: Terminal,
    pub callbacks: Callbacks,
}

pub(crate) fn engine(h: jlong) -> FfiResult<Arc<Engine>> {
    // SAFETY: Kotlin passes the handle from Engine_create under its close lock.
    unsafe { handles::borrow::<Engine>(h, "FacePay (closed: call FacePay.init again)") }
}

/// Runs `op` on this (blocked) thread ([`facepay::terminal::blocking::block_on`]).
fn blocking<O: Op>(h: jlong, op: O) -> FfiResult<O::Out> {
    let term = engine(h)?.term.clone();
    Ok(block_on(op.run(term, |_| {}))?)
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
        // An EventSink (`Native.Engine_create` declares it so), as its cached method ids need.
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

macro_rules! simple_blocking {
    ($(#[$m:meta])* $name:ident, $op:expr) => {
        $(#[$m])*
        #[unsafe(no_mangle)]
        pub extern "system" fn $name<'l>(env: EnvUnowned<'l>, _c: JClass<'l>, h: jlong) {
            run_ffi_safe(env, |_env| blocking(h, $op))
        }
    };
}

simple_blocking!(
    /// `Engine_init(h)`: T2.1, idempotent; answers once the service is ready (T4.1).
    Java_io_facepay_Native_Engine_1init, ops::Init
);
simple_blocking!(Java_io_facepay_Native_Engine_1startGate, ops::StartGate);
simple_blocking!(Java_io_facepay_Native_Engine_1stopGate, ops::StopGate);
simple_blocking!(Java_io_facepay_Native_Engine_1surfaceDestroyed, ops::SurfaceDestroyed);
simple_blocking!(
    /// T2.2: the documented last resort.
    Java_io_facepay_Native_Engine_1release, ops::Release
);

#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1startFlow<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    amount_fen: jlong,
    out_trade_no: JString<'l>,
) -> jlong {
    run_ffi_safe(env, |env| {
        let op = ops::StartFlow::parse(env, amount_fen, &out_trade_no)?;
        Ok(blocking(h, op)?.0 as jlong)
    })
}

/// The recognition as JSON (the shape of the async native's result).
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1waitRecognition<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    flow_id: jlong,
) -> JString<'l> {
    run_ffi_safe(env, |env| {
        let r = blocking(h, ops::WaitRecognition(flow(flow_id)?))?;
        Ok(env.new_string(ops::WaitRecognition::json(&r))?)
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
        let op = ops::ExtVerify::parse(env, flow_id, &phone)?;
        blocking(h, op)
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
        let u = blocking(h, ops::Finish(flow(flow_id)?))?;
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
        let key = blocking(h, ops::Credential(flow(flow_id)?))?;
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
    run_ffi_safe(env, |_env| blocking(h, ops::Stop(flow(flow_id)?)))
}

/// A whole payment ([`ops::Pay`]): `{"flow_id", "idempotency_key", "user_id"}`. `phone` answers
/// an auxiliary verification (T7.6); null cancels the flow when one is needed.
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
        let op = ops::Pay::parse(env, amount_fen, &out_trade_no, &phone)?;
        let paid = blocking(h, op)?;
        Ok(env.new_string(ops::Pay::json(&paid))?)
    })
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
    run_ffi_safe(env, |_env| blocking(h, ops::SurfaceChanged::parse(surface_id, width, height)?))
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
        // Every pending call has its answer now (the engine's thread delivered the async ones
        // before it ended); the callback thread pushes the last events and ends.
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
