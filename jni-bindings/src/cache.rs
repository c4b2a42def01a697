//! Classes cached at load time (`JNI_OnLoad`, on the app thread that loaded `io.facepay.Native`,
//! whose class loader finds our classes): no `FindClass` ever runs on a native thread.

use std::sync::OnceLock;

use jni::objects::JClass;
use jni::refs::Global;
use jni::{jni_str, JavaVM};

pub struct Cache {
    pub vm: JavaVM,
    pub facepay_exception: Global<JClass<'static>>,
    pub illegal_argument: Global<JClass<'static>>,
    pub illegal_state: Global<JClass<'static>>,
    pub string: Global<JClass<'static>>,
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
        Ok(Cache {
            vm: vm.clone(),
            facepay_exception: env.new_global_ref(&fpe)?,
            illegal_argument: env.new_global_ref(&iae)?,
            illegal_state: env.new_global_ref(&ise)?,
            string: env.new_global_ref(&s)?,
        })
    })?;
    let _ = CACHE.set(cache);
    Ok(())
}

pub fn get() -> jni::errors::Result<&'static Cache> {
    CACHE.get().ok_or(jni::errors::Error::UninitializedJavaVM)
}
