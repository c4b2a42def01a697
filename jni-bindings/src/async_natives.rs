//! `Native.Engine_*Async`: every engine operation without a blocked thread. Arguments are
//! checked on the calling thread (a bad one throws at once, like the blocking natives); the
//! engine's future then runs on the thread that answers each step ([`crate::inline`]: the
//! engine's own, attached as a daemon) and completes the Kotlin `NativeCompletion` with the
//! result's JSON or the error's code. A pay
//! flow tells Kotlin its flow id as soon as it has one (`flowStarted`), so cancelling the
//! coroutine stops the flow (SPEC T7.7) and the flow's outcome is `Cancelled`; a completion
//! never answered (the engine closed first) completes with `CLOSED` when it is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use jni::objects::{JClass, JObject, JString};
use jni::sys::{jint, jlong};
use jni::{jni_str, Env, EnvUnowned};
use serde_json::json;

use facepay::terminal::engine::PayRequest;
use facepay::Secret;

use crate::callbacks::{Completed, Counted};
use crate::engine_natives::{amount, engine, flow, opt_string, req_string, Engine};
use crate::ffi::{illegal_arg, run_ffi_safe, FfiResult};

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
        Ok(Completion { obj: Counted::new(env, obj)?, done: AtomicBool::new(false) })
    }

    fn finish(&self, r: Completed) {
        if !self.done.swap(true, Ordering::AcqRel) {
            crate::callbacks::deliver(&self.obj, r);
        }
    }

    /// T7.7: the flow's id, so a cancelled coroutine can stop it.
    fn flow_started(&self, id: u64) {
        crate::callbacks::call_long(&self.obj, jni_str!("flowStarted"), id as jlong);
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.finish(Err(facepay::Error::Closed));
    }
}

fn unit<E>(r: Result<(), E>) -> Result<String, E> {
    r.map(|()| "null".to_string())
}

/// Runs `make(engine)` on the thread that answers each of its steps ([`crate::inline`]): first
/// this one, then the engine's, which completes `completion` itself (one wake-up: the app's).
fn spawn<'l, F, Fut>(env: &mut Env<'l>, h: jlong, completion: &JObject<'l>, make: F) -> FfiResult<()>
where
    F: FnOnce(Arc<Engine>, Arc<Completion>) -> Fut,
    Fut: std::future::Future<Output = Completed> + Send + 'static,
{
    let e = engine(h)?;
    let c = Arc::new(Completion::new(env, completion)?);
    let mut fut = Box::pin(make(e, c.clone()));
    crate::inline::spawn(async move {
        // A panic in a step completes the call with INTERNAL (900) instead of CLOSED.
        let r = std::future::poll_fn(|cx| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))).unwrap_or_else(|_| {
                std::task::Poll::Ready(Err(facepay::Error::Internal("a panic in facepay native code".into())))
            })
        })
        .await;
        c.finish(r);
    });
    Ok(())
}

macro_rules! simple_async {
    ($name:ident, |$t:ident| $body:expr) => {
        #[unsafe(no_mangle)]
        pub extern "system" fn $name<'l>(env: EnvUnowned<'l>, _c: JClass<'l>, h: jlong, completion: JObject<'l>) {
            run_ffi_safe(env, |env| {
                spawn(env, h, &completion, |e, _c| async move {
                    let $t = &e.term;
                    $body
                })
            })
        }
    };
}

simple_async!(Java_io_facepay_Native_Engine_1initAsync, |t| unit(t.init().await));
simple_async!(Java_io_facepay_Native_Engine_1startGateAsync, |t| unit(t.start_gate().await));
simple_async!(Java_io_facepay_Native_Engine_1stopGateAsync, |t| unit(t.stop_gate().await));
simple_async!(Java_io_facepay_Native_Engine_1surfaceDestroyedAsync, |t| unit(t.surface_destroyed().await));
simple_async!(Java_io_facepay_Native_Engine_1releaseAsync, |t| unit(t.release().await));

macro_rules! flow_async {
    ($name:ident, |$t:ident, $f:ident| $body:expr) => {
        #[unsafe(no_mangle)]
        pub extern "system" fn $name<'l>(
            env: EnvUnowned<'l>,
            _c: JClass<'l>,
            h: jlong,
            flow_id: jlong,
            completion: JObject<'l>,
        ) {
            run_ffi_safe(env, |env| {
                let $f = flow(flow_id)?;
                spawn(env, h, &completion, move |e, _c| async move {
                    let $t = &e.term;
                    $body
                })
            })
        }
    };
}

flow_async!(Java_io_facepay_Native_Engine_1waitRecognitionAsync, |t, f| t
    .wait_recognition(f)
    .await
    .map(|r| crate::engine_natives::recognition_json(&r)));
flow_async!(Java_io_facepay_Native_Engine_1finishAsync, |t, f| t
    .finish(f)
    .await
    .map(|u| json!({ "user_id": u.user_id }).to_string()));
flow_async!(Java_io_facepay_Native_Engine_1credentialAsync, |t, f| t
    .credential(f)
    .await
    .map(|k| json!({ "idempotency_key": k }).to_string()));
flow_async!(Java_io_facepay_Native_Engine_1stopAsync, |t, f| unit(t.stop(f).await));

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
        let req = PayRequest { amount_fen: amount(amount_fen)?, out_trade_no: opt_string(env, &out_trade_no)? };
        spawn(env, h, &completion, move |e, _c| async move { e.term.start_flow(req).await.map(|f| f.0.to_string()) })
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
        let f = flow(flow_id)?;
        let phone = Secret::new(req_string(env, &phone, "phone")?);
        spawn(env, h, &completion, move |e, _c| async move { unit(e.term.ext_verify(f, phone).await) })
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
    run_ffi_safe(env, |env| {
        let s = crate::engine_natives::surface(surface_id, width, height)?;
        spawn(env, h, &completion, move |e, _c| async move { unit(e.term.surface_changed(s).await) })
    })
}

/// A whole payment in the only legal order (the steps of `Terminal::pay`), telling Kotlin
/// the flow id first. `phone` answers an auxiliary verification (T7.6); null cancels the
/// flow when one is needed. The result is the `Paid` JSON.
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
        let req = PayRequest { amount_fen: amount(amount_fen)?, out_trade_no: opt_string(env, &out_trade_no)? };
        let phone = opt_string(env, &phone)?.map(Secret::new);
        spawn(env, h, &completion, move |e, c| async move {
            let t = &e.term;
            let f = t.start_flow(req).await?;
            c.flow_started(f.0);
            let rec = t.wait_recognition(f).await?;
            if rec.need_ext_verify {
                match phone {
                    Some(p) => t.ext_verify(f, p).await?,
                    None => {
                        t.stop(f).await?;
                        return Err(facepay::Error::FlowCancelled);
                    }
                }
            }
            let user = t.finish(f).await?;
            let key = t.credential(f).await?;
            Ok(json!({ "flow_id": f.0, "idempotency_key": key, "user_id": user.user_id }).to_string())
        })
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
