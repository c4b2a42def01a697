//! The JNI [`FaceService`]: the core drives a Kotlin `FaceServiceDriver` (API-NOTES §1)
//! through the Kotlin `DriverBridge`. Calls go out on ONE dedicated, permanently attached
//! dispatch thread fed by a channel (ordered, never blocking the engine); the driver answers
//! through `Native.Driver_answer`, which resolves the pending call or, for `startVerify`
//! and a re-fired init callback, becomes a [`ServiceEvent`]. A driver that never answers
//! leaves its future pending and the engine's deadline declares the service lost (T1.1); a
//! driver that throws answers `ERROR` with [`ERR_DRIVER_THREW`]. Global refs are deleted on
//! the dispatch thread (attached).

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
    BoxFut, Credential, CredentialParams, FaceService, FinishParams, InitParams, Op, RecogMode, RecognitionEvent,
    ReturnCode, SdkInfo, ServiceEvent, Surface, UserInfo, VResult, VendorError, VerifyParams, ERR_NO_USER_INFO,
};
use facepay::Secret;

use crate::ffi::{illegal_arg, run_ffi_safe, FfiResult};
use crate::handles;

/// `err_code` when the Kotlin driver threw instead of answering (not a vendor code).
pub const ERR_DRIVER_THREW: i64 = 990_100_001;
/// `err_code` when the driver's answer lacks a field the operation needs.
pub const ERR_BAD_ANSWER: i64 = 990_100_002;

/// Live global references this library holds (driver bridges). Tests prove no growth.
pub static LIVE_GLOBALS: AtomicI64 = AtomicI64::new(0);

type Answer = HashMap<String, String>;

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

fn recog_mode(m: RecogMode) -> &'static str {
    match m {
        RecogMode::Pay => "pay",
        RecogMode::Gate => "gate",
    }
}

fn vendor_result(a: &Answer) -> VResult<()> {
    let code = a.get("return_code").map(String::as_str).unwrap_or("");
    let err = a.get("err_code").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    match code {
        "SUCCESS" => Ok(()),
        "FAIL" => Err(VendorError::new(ReturnCode::Fail, err)),
        "ERROR" => Err(VendorError::new(ReturnCode::Error, err)),
        _ => Err(VendorError::new(ReturnCode::Error, if err == 0 { ERR_BAD_ANSWER } else { err })),
    }
}

fn field(a: &Answer, k: &str) -> VResult<String> {
    a.get(k).cloned().ok_or(VendorError::new(ReturnCode::Error, ERR_BAD_ANSWER))
}

fn user_at(a: &Answer, prefix: &str) -> VResult<UserInfo> {
    Ok(UserInfo {
        user_id: field(a, &format!("{prefix}user_id"))?,
        out_user_id: a.get(&format!("{prefix}out_user_id")).cloned().unwrap_or_default(),
        user_name: Secret::new(a.get(&format!("{prefix}user_name")).cloned().unwrap_or_default()),
        status: a.get(&format!("{prefix}status")).and_then(|s| s.parse().ok()).unwrap_or(0),
        valid: a.get(&format!("{prefix}valid")).map(|s| s == "true").unwrap_or(true),
    })
}

fn recognition(a: &Answer) -> RecognitionEvent {
    let code = a.get("return_code").map(String::as_str).unwrap_or("");
    let err = a.get("err_code").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    match code {
        "FIRST_FRAME_CALLBACK" => RecognitionEvent::FirstFrame,
        "SUCCESS" => {
            let n: usize = a.get("user_info_count").and_then(|s| s.parse().ok()).unwrap_or(0);
            let users: Vec<UserInfo> = (0..n).filter_map(|i| user_at(a, &format!("user.{i}.")).ok()).collect();
            if users.is_empty() {
                return RecognitionEvent::Failed { err_code: ERR_NO_USER_INFO, need_restart_verify: false };
            }
            RecognitionEvent::Recognised {
                need_ext_verify: a.get("need_ext_verify").map(|s| s == "true").unwrap_or(false),
                face_verify_id: a.get("face_verify_id").cloned().unwrap_or_default(),
                users,
            }
        }
        _ => RecognitionEvent::Failed {
            err_code: err,
            need_restart_verify: a.get("need_restart_verify").map(|s| s == "true").unwrap_or(false),
        },
    }
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
        Box::pin(async move { vendor_result(&f.await?) })
    }
}

impl FaceService for JniFaceService {
    fn set_listener(&self, tx: UnboundedSender<ServiceEvent>) {
        *self.shared.listener.lock() = Some(tx);
    }
    fn init(&self, p: InitParams) -> BoxFut<'_, VResult<()>> {
        let mut kv = Vec::new();
        push(&mut kv, "appid", p.appid);
        push(&mut kv, "mch_id", p.mch_id);
        push_opt(&mut kv, "sub_appid", &p.sub_appid);
        push_opt(&mut kv, "sub_mch_id", &p.sub_mch_id);
        push(&mut kv, "organization_id", p.organization_id);
        self.call_unit(Op::Init, kv)
    }
    fn raw_data(&self) -> BoxFut<'_, VResult<String>> {
        let f = self.call(Op::RawData, Vec::new());
        Box::pin(async move {
            let a = f.await?;
            vendor_result(&a)?;
            field(&a, "rawdata")
        })
    }
    fn preload(&self) -> BoxFut<'_, VResult<()>> {
        self.call_unit(Op::Preload, Vec::new())
    }
    fn update_features(&self) -> BoxFut<'_, VResult<()>> {
        self.call_unit(Op::UpdateFeatures, Vec::new())
    }
    fn sdk_info(&self) -> BoxFut<'_, VResult<SdkInfo>> {
        let f = self.call(Op::SdkInfo, Vec::new());
        Box::pin(async move {
            let a = f.await?;
            vendor_result(&a)?;
            let num = |k: &str| a.get(k).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            Ok(SdkInfo {
                sdk_version: a.get("sdk_version").cloned().unwrap_or_default(),
                face_feature_version: a.get("face_feature_version").cloned().unwrap_or_default(),
                user_info_dbcount: num("user_info_dbcount"),
                user_info_total_count: num("user_info_total_count"),
                last_update_data_time_ms: a.get("last_update_data_time").and_then(|s| s.parse().ok()),
            })
        })
    }
    fn set_preview(&self, s: Surface) -> BoxFut<'_, VResult<()>> {
        let mut kv = Vec::new();
        push(&mut kv, "surface_id", s.id.to_string());
        push(&mut kv, "width", s.width.to_string());
        push(&mut kv, "height", s.height.to_string());
        self.call_unit(Op::SetPreview, kv)
    }
    fn remove_preview(&self) -> BoxFut<'_, VResult<()>> {
        self.call_unit(Op::RemovePreview, Vec::new())
    }
    fn start_verify(&self, p: VerifyParams) -> BoxFut<'_, VResult<()>> {
        let mut kv = Vec::new();
        push(&mut kv, "authinfo", p.authinfo.expose());
        push(&mut kv, "appid", p.appid);
        push(&mut kv, "mch_id", p.mch_id);
        push_opt(&mut kv, "sub_appid", &p.sub_appid);
        push_opt(&mut kv, "sub_mch_id", &p.sub_mch_id);
        push(&mut kv, "organization_id", p.organization_id);
        push(&mut kv, "recog_mode", recog_mode(p.recog_mode));
        if let Some(fee) = p.total_fee {
            push(&mut kv, "total_fee", fee.to_string());
        }
        push_opt(&mut kv, "out_trade_no", &p.out_trade_no);
        let f = self.call_session(Op::StartVerify, kv, Some(p.session));
        Box::pin(async move { f.await.map(|_| ()) })
    }
    fn stop_verify(&self) -> BoxFut<'_, VResult<()>> {
        self.call_unit(Op::StopVerify, Vec::new())
    }
    fn finish_verify(&self, p: FinishParams) -> BoxFut<'_, VResult<UserInfo>> {
        let mut kv = Vec::new();
        push(&mut kv, "user_id", p.user_id);
        if let Some(ph) = &p.user_phone {
            push(&mut kv, "user_phone", ph.expose());
        }
        let f = self.call(Op::Finish, kv);
        Box::pin(async move {
            let a = f.await?;
            vendor_result(&a)?;
            user_at(&a, "user.")
        })
    }
    fn credential(&self, p: CredentialParams) -> BoxFut<'_, VResult<Credential>> {
        let mut kv = Vec::new();
        push(&mut kv, "user_id", p.user_id);
        push(&mut kv, "recog_mode", recog_mode(p.recog_mode));
        if let Some(fee) = p.total_fee {
            push(&mut kv, "total_fee", fee.to_string());
        }
        let f = self.call(Op::Credential, kv);
        Box::pin(async move {
            let a = f.await?;
            vendor_result(&a)?;
            Ok(Credential { face_token: Secret::new(field(&a, "face_token")?) })
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
                        let ev = recognition(&a);
                        let _ = l.send(ServiceEvent::Recognition { session, event: ev });
                    }
                }
            }
            return; // callbacks of a stopped verification are dropped
        }
        if let Some(tx) = s.pending.lock().remove(&id) {
            let _ = tx.send(Ok(a));
            return;
        }
        if op == op_code(Op::Init) && *s.init_id.lock() == Some(id) {
            // The vendor fires the init callback again on every reconnect (API-NOTES §1).
            if let Some(l) = s.listener.lock().as_ref() {
                let _ = l.send(ServiceEvent::InitCallback { ok: vendor_result(&a).is_ok() });
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
