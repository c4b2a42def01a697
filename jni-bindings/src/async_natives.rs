//! `Native.Engine_*Async`: every engine operation without a blocked thread. Arguments are
//! checked on the calling thread (a bad one throws at once, like the blocking natives); the
//! engine's future then runs on the thread that answers each step ([`crate::inline`]: the
//! engine's own, attached as a daemon) and completes the Kotlin `NativeCompletion` with the
//! result's JSON or the error's code. A pay
//! flow tells Kotlin its flow id as soon as it has one (`flowStarted`), so cancelling the
//! coroutine stops the flow (SPEC T7.7) and the flow's outcome is `Cancelled`; a completion
//! never answered (the engine closed first) completes with `CLOSED` when it is dropped.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use jni::objects::{JClass, JObject, JString};
use jni::sys::{jint, jlong};
use jni::{Env, EnvUnowned};

use crate::callbacks::{Completed, Counted};
use crate::engine_natives::engine;
use crate::ffi::{illegal_arg, run_ffi_safe, FfiResult};
use crate::ops::{self, flow, Op};

/// The Kotlin completion of one call: completed exactly once, `CLOSED` if never answered.
pub struct Completion {
    obj: Counted,
    done: AtomicBool,
}

impl Completion {
    fn new(env: &mut Env<'_>, obj: &JObject<'_>) -> FfiResult<Completion> {
        if obj.is_null() {
            return Err(illegal_arg("completion must not be null"));
        }
        // A NativeCompletion (the natives declare it so; the JVM checks a caller's argument types),
        // as the callbacks through its cached method ids need.
        Ok(Completion { obj: Counted::new(env, obj)?, done: AtomicBool::new(false) })
    }

    fn finish(&self, r: Completed) {
        if !self.done.swap(true, Ordering::AcqRel) {
            crate::callbacks::deliver(&self.obj, r);
        }
    }

    /// T7.7: the flow's id, so a cancelled coroutine can stop it.
    fn flow_started(&self, id: u64) {
        crate::callbacks::flow_started(&self.obj, id as jlong);
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.finish(Err(facepay::Error::Closed));
    }
}

/// Runs `op` on the thread that answers each of its steps ([`crate::inline`]): first this one,
/// then the engine's, which completes `completion` itself (one wake-up: the app's).
fn spawn<'l, O: Op>(env: &mut Env<'l>, h: jlong, completion: &JObject<'l>, op: O) -> FfiResult<()> {
    let e = engine(h)?;
    let c = Arc::new(Completion::new(env, completion)?);
    let started = {
        let c = c.clone();
        move |f: facepay::terminal::verify::FlowId| c.flow_started(f.0)
    };
    let mut fut = Box::pin(op.run(e.term.clone(), started));
    crate::inline::spawn(async move {
        // A panic in a step completes the call with INTERNAL (900) instead of CLOSED.
        let r = std::future::poll_fn(|cx| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))).unwrap_or_else(|_| {
                std::task::Poll::Ready(Err(facepay::Error::Internal("a panic in facepay native code".into())))
            })
        })
        .await;
        c.finish(r.map(|out| O::json(&out)));
    });
    Ok(())
}

macro_rules! simple_async {
    ($name:ident, $op:expr) => {
        #[unsafe(no_mangle)]
        pub extern "system" fn $name<'l>(env: EnvUnowned<'l>, _c: JClass<'l>, h: jlong, completion: JObject<'l>) {
            run_ffi_safe(env, |env| spawn(env, h, &completion, $op))
        }
    };
}

simple_async!(Java_io_facepay_Native_Engine_1initAsync, ops::Init);
simple_async!(Java_io_facepay_Native_Engine_1startGateAsync, ops::StartGate);
simple_async!(Java_io_facepay_Native_Engine_1stopGateAsync, ops::StopGate);
simple_async!(Java_io_facepay_Native_Engine_1surfaceDestroyedAsync, ops::SurfaceDestroyed);
simple_async!(Java_io_facepay_Native_Engine_1releaseAsync, ops::Release);

macro_rules! flow_async {
    ($name:ident, $op:path) => {
        #[unsafe(no_mangle)]
        pub extern "system" fn $name<'l>(
            env: EnvUnowned<'l>,
            _c: JClass<'l>,
            h: jlong,
            flow_id: jlong,
            completion: JObject<'l>,
        ) {
            run_ffi_safe(env, |env| {
                let f = flow(flow_id)?;
                spawn(env, h, &completion, $op(f))
            })
        }
    };
}

flow_async!(Java_io_facepay_Native_Engine_1waitRecognitionAsync, ops::WaitRecognition);
flow_async!(Java_io_facepay_Native_Engine_1finishAsync, ops::Finish);
flow_async!(Java_io_facepay_Native_Engine_1credentialAsync, ops::Credential);
flow_async!(Java_io_facepay_Native_Engine_1stopAsync, ops::Stop);

#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1startFlowAsync<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    amount_fen: jlong,
    out_trade_no: JString<'l>,
    completion: JObject<'l>,
) {
    run_ffi_safe(env, |env| {
        let op = ops::StartFlow::parse(env, amount_fen, &out_trade_no)?;
        spawn(env, h, &completion, op)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1extVerifyAsync<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    flow_id: jlong,
    phone: JString<'l>,
    completion: JObject<'l>,
) {
    run_ffi_safe(env, |env| {
        let op = ops::ExtVerify::parse(env, flow_id, &phone)?;
        spawn(env, h, &completion, op)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1surfaceChangedAsync<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    surface_id: jlong,
    width: jint,
    height: jint,
    completion: JObject<'l>,
) {
    run_ffi_safe(env, |env| spawn(env, h, &completion, ops::SurfaceChanged::parse(surface_id, width, height)?))
}

/// A whole payment ([`ops::Pay`]), telling Kotlin the flow id first (T7.7). The result is the
/// `Paid` JSON.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1payAsync<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    amount_fen: jlong,
    out_trade_no: JString<'l>,
    phone: JString<'l>,
    completion: JObject<'l>,
) {
    run_ffi_safe(env, |env| {
        let op = ops::Pay::parse(env, amount_fen, &out_trade_no, &phone)?;
        spawn(env, h, &completion, op)
    })
}

/// Fire and forget (a cancelled coroutine's stop, T7.7): no completion, errors dropped
/// (the flow may have ended already).
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Engine_1cancelFlow<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    flow_id: jlong,
) {
    run_ffi_safe(env, |_env| {
        let f = flow(flow_id)?;
        let t = engine(h)?.term.clone();
        crate::inline::spawn(async move {
            let _ = t.stop(f).await;
        });
        Ok(())
    })
}
