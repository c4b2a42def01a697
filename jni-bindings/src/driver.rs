//! The JNI [`FaceService`]: the core drives a Kotlin `FaceServiceDriver` (API-NOTES §1)
//! through the Kotlin `DriverBridge`. Calls go out on ONE dedicated, permanently attached
//! dispatch thread fed by a channel (ordered, never blocking the engine); the driver answers
//! through `Native.Driver_answer`, which resolves the pending call or, for `startVerify`
//! and a re-fired init callback, becomes a [`ServiceEvent`]. A driver that never answers
//! leaves its future pending and the engine's deadline declares the service lost (T1.1); a
//! driver that throws answers `ERROR` with [`ERR_DRIVER_THREW`]. Global refs are deleted on
//! the dispatch thread (attached).
//!
//! Requests carry exactly the library's keys (SPEC T2.4, T3.6, T7.10): the init holds only
//! the proxy section, every call after rawdata the authed map with the newest authinfo,
//! `getFacePayCredential` an Integer `recog_mode` and a String `total_fee`. Answers come
//! back typed (each value tagged `s:` String, `i:` Integer, `b:` Boolean, `f:` Float, `l:`
//! a list's length, `n:` null, `o:` anything else), so a missing or ill-typed key is a
//! typed error naming the operation and the key ([`VendorError::bad_answer`]), never a
//! panic, a hang or a credential. A second answer for a call already answered (the
//! library's timeout FAIL, then the real one: T9) becomes a `LateAnswer` event and counts
//! nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use jni::objects::{JClass, JObject, JObjectArray, JString, JValue};
use jni::refs::Global;
use jni::sys::{jint, jlong};
use jni::{jni_sig, jni_str, Env, EnvUnowned};
use parking_lot::Mutex;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use facepay::terminal::face_service::{
    Authed, BoxFut, Credential, CredentialParams, FaceService, FinishParams, InitParams, Op, RecognitionEvent,
    ReturnCode, SdkInfo, ServiceEvent, Surface, UserInfo, VResult, VendorError, VerifyParams, ERR_BAD_ANSWER,
};
use facepay::Secret;

use crate::answer::{opt_str, recognition, str_key, typed, user_at, vendor_result, Val};
use crate::ffi::{illegal_arg, run_ffi_safe, FfiResult};
use crate::handles;

/// `err_code` when the Kotlin driver threw instead of answering (not a vendor code).
pub const ERR_DRIVER_THREW: i64 = 990_100_001;

/// Live global references this library holds (driver bridges). Tests prove no growth.
pub static LIVE_GLOBALS: AtomicI64 = AtomicI64::new(0);

use crate::answer::Answer;

fn op_code(op: Op) -> jint {
    op.index() as jint
}

enum Job {
    Call { shared: Arc<Shared>, op: Op, id: u64, kv: Vec<String> },
    DeleteGlobal(Global<JObject<'static>>),
}

struct Shared {
    /// The Kotlin `DriverBridge`; `None` once handed to the dispatch thread for deletion.
    bridge: Mutex<Option<Global<JObject<'static>>>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<VResult<Answer>>>>,
    /// The current `startVerify` request id and its engine session.
    verify: Mutex<Option<(u64, u64)>>,
    init_id: Mutex<Option<u64>>,
    listener: Mutex<Option<UnboundedSender<ServiceEvent>>>,
    next_id: AtomicU64,
    /// Calls already answered once, by id (bounded): a second answer is a late one (T9).
    answered: Mutex<std::collections::VecDeque<(u64, Op)>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(g) = self.bridge.get_mut().take() {
            match dispatcher() {
                Some(tx) => {
                    let _ = tx.send(Job::DeleteGlobal(g));
                }
                None => {
                    drop(g);
                    LIVE_GLOBALS.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        driver_gone();
    }
}

/// The face service of the engine, over JNI.
pub struct JniFaceService {
    shared: Arc<Shared>,
}

/// The dispatch thread's channel and the number of live drivers. The thread runs while a
/// driver lives: when the last one is dropped the channel closes and the thread drains it,
/// detaches and ends (jni-rs attaches non-daemon threads; a lingering one would keep a host
/// JVM from exiting). The next driver starts a new one.
struct Dispatch {
    tx: Option<mpsc::Sender<Job>>,
    live: usize,
}

static DISPATCH: Mutex<Dispatch> = Mutex::new(Dispatch { tx: None, live: 0 });

fn dispatcher() -> Option<mpsc::Sender<Job>> {
    DISPATCH.lock().tx.clone()
}

/// One driver less; the last one closes the channel (after its own global was queued).
fn driver_gone() {
    let mut d = DISPATCH.lock();
    d.live = d.live.saturating_sub(1);
    if d.live == 0 {
        d.tx = None;
    }
}

/// Registers a live driver and starts the dispatch thread if none runs (attached to the
/// VM cached at load).
fn ensure_dispatcher() -> FfiResult<()> {
    let mut d = DISPATCH.lock();
    if d.tx.is_none() {
        let vm = crate::cache::get()?.vm.clone();
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("facepay-dispatch".into())
            .spawn(move || {
                let r = vm.attach_current_thread(|env| -> jni::errors::Result<()> {
                    while let Ok(job) = rx.recv() {
                        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_job(env, job)));
                        if outcome.is_err() {
                            tracing::error!("panic in the JNI dispatch thread (a bug in facepay)");
                        }
                    }
                    Ok(())
                });
                if let Err(e) = r {
                    tracing::error!(error = %e, "JNI dispatch thread could not attach");
                }
            })
            .map_err(|e| facepay::Error::Internal(format!("dispatch thread: {e}")))?;
        d.tx = Some(tx);
    }
    d.live += 1;
    Ok(())
}

fn run_job(env: &mut Env<'_>, job: Job) {
    match job {
        Job::DeleteGlobal(g) => {
            drop(g);
            LIVE_GLOBALS.fetch_sub(1, Ordering::Relaxed);
        }
        Job::Call { shared, op, id, kv } => {
            let bridge = shared.bridge.lock().as_ref().map(|g| g.as_obj().as_raw());
            let Some(_) = bridge else { return };
            let r = env.with_local_frame(8 + kv.len(), |env| -> jni::errors::Result<()> {
                let arr = string_array(env, &kv)?;
                let guard = shared.bridge.lock();
                let Some(b) = guard.as_ref() else { return Ok(()) };
                env.call_method(
                    b,
                    jni_str!("dispatch"),
                    jni_sig!("(IJ[Ljava/lang/String;)V"),
                    &[JValue::Int(op_code(op)), JValue::Long(id as jlong), JValue::Object(&arr)],
                )?;
                Ok(())
            });
            let threw = env.exception_check();
            if threw {
                // The driver threw: clear it (no message is logged: it may echo user data).
                env.exception_clear();
            }
            if threw || r.is_err() {
                tracing::warn!(?op, "the face service driver threw instead of answering");
                if let Some(tx) = shared.pending.lock().remove(&id) {
                    let _ = tx.send(Err(VendorError::new(ReturnCode::Error, ERR_DRIVER_THREW)));
                }
            } else if op == Op::StartVerify {
                // startVerify is accepted once the driver took it; its callbacks are events.
                if let Some(tx) = shared.pending.lock().remove(&id) {
                    let _ = tx.send(Ok(Answer::new()));
                }
            }
        }
    }
}

/// A `String[]` from Rust strings.
pub fn string_array<'l>(env: &mut Env<'l>, items: &[String]) -> jni::errors::Result<JObjectArray<'l>> {
    let c = crate::cache::get()?;
    let arr = env.new_object_array(items.len() as i32, &c.string, JObject::null())?;
    for (i, s) in items.iter().enumerate() {
        let js = env.new_string(s)?;
        arr.set_element(env, i, &js)?;
        env.delete_local_ref(js);
    }
    Ok(arr)
}

/// Reads a `String[]` of key/value pairs (`[k0, v0, k1, v1, …]`).
pub fn read_kv(env: &mut Env<'_>, arr: &JObjectArray<'_>) -> FfiResult<Answer> {
    if arr.is_null() {
        return Err(illegal_arg("answer must not be null"));
    }
    let n = arr.len(env)?;
    if n % 2 != 0 {
        return Err(illegal_arg("answer must hold key/value pairs"));
    }
    let mut m = HashMap::with_capacity(n / 2);
    let mut key = String::new();
    for i in 0..n {
        let o = arr.get_element(env, i)?;
        let s = if o.is_null() {
            String::new()
        } else {
            let js = env.cast_local::<JString>(o)?;
            let s = js.try_to_string(env)?;
            env.delete_local_ref(js);
            s
        };
        if i % 2 == 0 {
            key = s;
        } else {
            m.insert(std::mem::take(&mut key), s);
        }
    }
    Ok(m)
}

fn push(kv: &mut Vec<String>, k: &str, v: impl Into<String>) {
    kv.push(k.to_owned());
    kv.push(v.into());
}

fn push_opt(kv: &mut Vec<String>, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        push(kv, k, v.clone());
    }
}

/// T3.6: the authed map, as the library's String values.
fn authed_kv(m: &Authed) -> Vec<String> {
    let mut kv = Vec::with_capacity(14);
    push(&mut kv, "appid", m.appid.clone());
    push(&mut kv, "mch_id", m.mch_id.clone());
    push(&mut kv, "mch_name", m.mch_name.clone());
    push_opt(&mut kv, "sub_appid", &m.sub_appid);
    push_opt(&mut kv, "sub_mch_id", &m.sub_mch_id);
    push(&mut kv, "organization_id", m.organization_id.clone());
    push(&mut kv, "authinfo", m.authinfo.expose());
    kv
}

/// Removes a pending call whose future was dropped (the engine's deadline fired).
struct PendingGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.shared.pending.lock().remove(&self.id);
    }
}

impl JniFaceService {
    fn call(&self, op: Op, kv: Vec<String>) -> BoxFut<'_, VResult<Answer>> {
        self.call_session(op, kv, None)
    }

    fn call_session(&self, op: Op, kv: Vec<String>, session: Option<u64>) -> BoxFut<'_, VResult<Answer>> {
        let shared = self.shared.clone();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        shared.pending.lock().insert(id, tx);
        if op == Op::Init {
            *shared.init_id.lock() = Some(id);
        }
        if let Some(session) = session {
            *shared.verify.lock() = Some((id, session));
        }
        let sent = match dispatcher() {
            Some(d) => d.send(Job::Call { shared: shared.clone(), op, id, kv }).is_ok(),
            None => false,
        };
        Box::pin(async move {
            let _guard = PendingGuard { shared, id };
            if !sent {
                return Err(VendorError::new(ReturnCode::Error, ERR_DRIVER_THREW));
            }
            match rx.await {
                Ok(r) => r,
                // Never answered and dropped: behave like a dead service.
                Err(_) => std::future::pending().await,
            }
        })
    }

    fn call_unit(&self, op: Op, kv: Vec<String>) -> BoxFut<'_, VResult<()>> {
        let f = self.call(op, kv);
        Box::pin(async move { vendor_result(&typed(&f.await?)) })
    }
}

impl FaceService for JniFaceService {
    fn set_listener(&self, tx: UnboundedSender<ServiceEvent>) {
        *self.shared.listener.lock() = Some(tx);
    }
    /// T2.4: the request holds only the proxy section; empty = the 2-argument init.
    fn init(&self, p: InitParams) -> BoxFut<'_, VResult<()>> {
        let mut kv = Vec::new();
        for (k, v) in p.proxy.unwrap_or_default() {
            push(&mut kv, &k, v);
        }
        self.call_unit(Op::Init, kv)
    }
    fn raw_data(&self) -> BoxFut<'_, VResult<String>> {
        let f = self.call(Op::RawData, Vec::new());
        Box::pin(async move {
            let a = typed(&f.await?);
            vendor_result(&a)?;
            str_key(&a, "rawdata")
        })
    }
    fn preload(&self, m: Authed) -> BoxFut<'_, VResult<()>> {
        self.call_unit(Op::Preload, authed_kv(&m))
    }
    fn update_features(&self, m: Authed) -> BoxFut<'_, VResult<()>> {
        self.call_unit(Op::UpdateFeatures, authed_kv(&m))
    }
    fn sdk_info(&self, m: Authed) -> BoxFut<'_, VResult<SdkInfo>> {
        let f = self.call(Op::SdkInfo, authed_kv(&m));
        Box::pin(async move {
            let a = typed(&f.await?);
            vendor_result(&a)?;
            // The counts' types are not known (VENDOR-API §11): any scalar is read by value.
            let num = |k: &str| match a.get(k) {
                Some(Val::Int(v)) => u64::try_from(*v).unwrap_or(0),
                Some(Val::Str(s) | Val::Other(s)) => s.parse().unwrap_or(0),
                _ => 0,
            };
            let time = match a.get("last_update_data_time") {
                Some(Val::Int(v)) => Some(*v),
                Some(Val::Str(s) | Val::Other(s)) => s.parse().ok(),
                _ => None,
            };
            Ok(SdkInfo {
                sdk_version: opt_str(&a, "sdk_version")?.unwrap_or_default(),
                face_feature_version: opt_str(&a, "face_feature_version")?.unwrap_or_default(),
                user_info_dbcount: num("user_info_dbcount"),
                user_info_total_count: num("user_info_total_count"),
                last_update_data_time_ms: time,
            })
        })
    }
    fn set_preview(&self, s: Surface, m: Authed) -> BoxFut<'_, VResult<()>> {
        // `surface_id` names the SurfaceView for the adapter; it is not passed to the library
        // (which adds its own `callback_surface*` keys, VENDOR-API §7).
        let mut kv = authed_kv(&m);
        push(&mut kv, "surface_id", s.id.to_string());
        push(&mut kv, "width", s.width.to_string());
        push(&mut kv, "height", s.height.to_string());
        self.call_unit(Op::SetPreview, kv)
    }
    fn remove_preview(&self, m: Authed) -> BoxFut<'_, VResult<()>> {
        self.call_unit(Op::RemovePreview, authed_kv(&m))
    }
    /// T7.10: the authed map only.
    fn start_verify(&self, p: VerifyParams) -> BoxFut<'_, VResult<()>> {
        let f = self.call_session(Op::StartVerify, authed_kv(&p.authed), Some(p.session));
        Box::pin(async move { f.await.map(|_| ()) })
    }
    fn stop_verify(&self, m: Authed) -> BoxFut<'_, VResult<()>> {
        self.call_unit(Op::StopVerify, authed_kv(&m))
    }
    /// T7.10: the authed map and `user_phone` when one was entered.
    fn finish_verify(&self, p: FinishParams) -> BoxFut<'_, VResult<UserInfo>> {
        let mut kv = authed_kv(&p.authed);
        if let Some(ph) = &p.user_phone {
            push(&mut kv, "user_phone", ph.expose());
        }
        let f = self.call(Op::Finish, kv);
        Box::pin(async move {
            let a = typed(&f.await?);
            vendor_result(&a)?;
            user_at(&a, "user.")
        })
    }
    /// T7.10: `user_id` String, `recog_mode` Integer (the adapter puts an `Integer`),
    /// `total_fee` String of fen.
    fn credential(&self, p: CredentialParams) -> BoxFut<'_, VResult<Credential>> {
        let mut kv = authed_kv(&p.authed);
        push(&mut kv, "user_id", p.user_id);
        push(&mut kv, "recog_mode", p.recog_mode.as_int().to_string());
        push(&mut kv, "total_fee", p.total_fee);
        let f = self.call(Op::Credential, kv);
        Box::pin(async move {
            let a = typed(&f.await?);
            vendor_result(&a)?;
            // `face_token`'s type is not known (VENDOR-API §11): read through its String form.
            match a.get("face_token") {
                Some(Val::Str(t) | Val::Other(t)) if !t.is_empty() => {
                    Ok(Credential { face_token: Secret::new(t.clone()) })
                }
                _ => Err(VendorError::bad_answer("face_token")),
            }
        })
    }
    fn release(&self) -> BoxFut<'_, VResult<()>> {
        self.call_unit(Op::Release, Vec::new())
    }
}

impl JniFaceService {
    fn answer(&self, id: u64, op: jint, a: Answer) {
        let s = &self.shared;
        if op == op_code(Op::StartVerify) {
            let current = *s.verify.lock();
            if let Some((vid, session)) = current {
                if vid == id {
                    if let Some(l) = s.listener.lock().as_ref() {
                        let event = recognition(&typed(&a)).unwrap_or_else(|e| {
                            // A malformed answer is a failed attempt naming no user data.
                            tracing::warn!(key = e.bad_key, "startVerify answered a malformed map");
                            RecognitionEvent::Failed { err_code: ERR_BAD_ANSWER, need_restart_verify: Some(false) }
                        });
                        let _ = l.send(ServiceEvent::Recognition { session, event });
                    }
                }
            }
            return; // callbacks of a stopped verification are dropped
        }
        if let Some(tx) = s.pending.lock().remove(&id) {
            let mut answered = s.answered.lock();
            if answered.len() >= 64 {
                answered.pop_front();
            }
            answered.push_back((id, Op::ALL.get(op as usize).copied().unwrap_or(Op::Init)));
            drop(answered);
            let _ = tx.send(Ok(a));
            return;
        }
        let late = s.answered.lock().iter().find(|(i, _)| *i == id).map(|(_, op)| *op);
        if let Some(op) = late {
            // T9: the library's timeout FAIL counted; its real answer that followed does not.
            if let Some(l) = s.listener.lock().as_ref() {
                let _ = l.send(ServiceEvent::LateAnswer { op });
            }
            return;
        }
        if op == op_code(Op::Init) && *s.init_id.lock() == Some(id) {
            // T9: the library never re-fires the init callback; one that comes is reported.
            if let Some(l) = s.listener.lock().as_ref() {
                let _ = l.send(ServiceEvent::InitCallback { ok: vendor_result(&typed(&a)).is_ok() });
            }
        }
    }
}

/// `Native.Driver_create(bridge: Any): Long` — a JNI face service over a Kotlin `DriverBridge`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Driver_1create<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    bridge: JObject<'l>,
) -> jlong {
    run_ffi_safe(env, |env| {
        if bridge.is_null() {
            return Err(illegal_arg("driver must not be null"));
        }
        ensure_dispatcher()?;
        let g = match env.new_global_ref(&bridge) {
            Ok(g) => g,
            Err(e) => {
                driver_gone();
                return Err(e.into());
            }
        };
        LIVE_GLOBALS.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            bridge: Mutex::new(Some(g)),
            pending: Mutex::new(HashMap::new()),
            verify: Mutex::new(None),
            init_id: Mutex::new(None),
            listener: Mutex::new(None),
            next_id: AtomicU64::new(1),
            answered: Mutex::new(std::collections::VecDeque::new()),
        });
        Ok(handles::into_handle(Arc::new(JniFaceService { shared })))
    })
}

/// `Native.Driver_answer(driver: Long, id: Long, op: Int, kv: Array<String>)` — a driver callback.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Driver_1answer<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    id: jlong,
    op: jint,
    kv: JObjectArray<'l>,
) {
    run_ffi_safe(env, |env| {
        // SAFETY: the Kotlin bridge passes the handle it got from Driver_create, until close.
        let svc = unsafe { handles::borrow::<JniFaceService>(handle, "driver")? };
        let a = read_kv(env, &kv)?;
        svc.answer(id as u64, op, a);
        Ok(())
    })
}

/// `Native.Driver_close(driver: Long)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Driver_1close<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    run_ffi_safe(env, |_env| {
        // SAFETY: Kotlin closes each handle once (idempotent close on its side).
        unsafe { handles::release::<JniFaceService>(handle) };
        Ok(())
    })
}

/// Wraps a driver handle as the engine's face service.
///
/// # Safety
/// `h` is a live driver handle.
pub unsafe fn service_from_handle(h: jlong) -> FfiResult<Arc<JniFaceService>> {
    unsafe { handles::borrow::<JniFaceService>(h, "driver") }
}
