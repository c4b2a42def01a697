//! Classes and method ids cached at load time (`JNI_OnLoad`, on the app thread that loaded
//! `io.facepay.Native`, whose class loader finds our classes): no `FindClass` ever runs on a
//! native thread, and the callbacks of every flow (`NativeCompletion.done`, `flowStarted`, the
//! event sink's pushes) call through a method id instead of looking the method up by name and
//! signature each time (a symbol-table search in the JVM, per call).

use std::sync::OnceLock;

use jni::ids::JMethodID;
use jni::objects::JClass;
use jni::refs::Global;
use jni::{jni_sig, jni_str, JavaVM};

pub struct Cache {
    pub vm: JavaVM,
    pub facepay_exception: Global<JClass<'static>>,
    pub illegal_argument: Global<JClass<'static>>,
    pub illegal_state: Global<JClass<'static>>,
    pub string: Global<JClass<'static>>,
    /// `io.facepay.NativeCompletion`, held so that its method ids stay valid.
    pub completion: Global<JClass<'static>>,
    /// `NativeCompletion.done(int, String)`.
    pub completion_done: JMethodID,
    /// `NativeCompletion.flowStarted(long)`.
    pub completion_flow_started: JMethodID,
    /// `io.facepay.EventSink`, held so that its method ids stay valid.
    pub sink: Global<JClass<'static>>,
    /// `EventSink.onEvent(String)`.
    pub sink_on_event: JMethodID,
    /// `EventSink.onHealth(String)`.
    pub sink_on_health: JMethodID,
}

static CACHE: OnceLock<Cache> = OnceLock::new();

pub fn init(vm: &JavaVM) -> jni::errors::Result<()> {
    if CACHE.get().is_some() {
        return Ok(());
    }
    let cache = vm.attach_current_thread(|env| -> jni::errors::Result<Cache> {
        let fpe = env.find_class(jni_str!("io/facepay/FacePayException"))?;
        let iae = env.find_class(jni_str!("java/lang/IllegalArgumentException"))?;
        let ise = env.find_class(jni_str!("java/lang/IllegalStateException"))?;
        let s = env.find_class(jni_str!("java/lang/String"))?;
        let completion = env.find_class(jni_str!("io/facepay/NativeCompletion"))?;
        let completion_done = env.get_method_id(&completion, jni_str!("done"), jni_sig!("(ILjava/lang/String;)V"))?;
        let completion_flow_started = env.get_method_id(&completion, jni_str!("flowStarted"), jni_sig!("(J)V"))?;
        let sink = env.find_class(jni_str!("io/facepay/EventSink"))?;
        let sink_on_event = env.get_method_id(&sink, jni_str!("onEvent"), jni_sig!("(Ljava/lang/String;)V"))?;
        let sink_on_health = env.get_method_id(&sink, jni_str!("onHealth"), jni_sig!("(Ljava/lang/String;)V"))?;
        Ok(Cache {
            vm: vm.clone(),
            facepay_exception: env.new_global_ref(&fpe)?,
            illegal_argument: env.new_global_ref(&iae)?,
            illegal_state: env.new_global_ref(&ise)?,
            string: env.new_global_ref(&s)?,
            completion: env.new_global_ref(&completion)?,
            completion_done,
            completion_flow_started,
            sink: env.new_global_ref(&sink)?,
            sink_on_event,
            sink_on_health,
        })
    })?;
    let _ = CACHE.set(cache);
    Ok(())
}

pub fn get() -> jni::errors::Result<&'static Cache> {
    CACHE.get().ok_or(jni::errors::Error::UninitializedJavaVM)
}
