//! The one way into Rust from Java: [`run_ffi_safe`] wraps an entry point in jni 0.22's
//! `EnvUnowned::with_env(..).resolve::<FacePayPolicy>()`, so an error becomes the right Java
//! exception and a panic becomes `FacePayException(900)`: nothing unwinds into the JVM.
//! Exception messages name the problem and never carry personal data (the core's messages
//! do not, and panic payloads are not echoed).

use std::fmt;

use jni::errors::ErrorPolicy;
use jni::objects::{JClass, JObject, JThrowable, JValue};
use jni::refs::Global;
use jni::{jni_sig, Env, EnvUnowned};

use crate::cache;

/// What an entry point can fail with.
#[derive(Debug)]
pub enum FfiError {
    /// A core error: `io.facepay.FacePayException` with `Error::code()`.
    Core(facepay::Error),
    /// `IllegalArgumentException`: null, empty or out-of-range argument.
    IllegalArgument(String),
    /// `IllegalStateException`: use after `close()`, a closed handle.
    IllegalState(String),
    /// A JNI call failed (a Java exception is usually pending already).
    Jni(jni::errors::Error),
}

impl fmt::Display for FfiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FfiError::Core(e) => write!(f, "{e}"),
            FfiError::IllegalArgument(m) | FfiError::IllegalState(m) => f.write_str(m),
            FfiError::Jni(e) => write!(f, "JNI: {e}"),
        }
    }
}

impl std::error::Error for FfiError {}

impl From<jni::errors::Error> for FfiError {
    fn from(e: jni::errors::Error) -> Self {
        FfiError::Jni(e)
    }
}

impl From<facepay::Error> for FfiError {
    fn from(e: facepay::Error) -> Self {
        FfiError::Core(e)
    }
}

pub type FfiResult<T> = Result<T, FfiError>;

pub fn illegal_arg(msg: impl Into<String>) -> FfiError {
    FfiError::IllegalArgument(msg.into())
}

/// Code of `FacePayException` for a panic caught at the boundary (`ErrorCode::Internal`).
pub const PANIC_CODE: i32 = facepay::ErrorCode::Internal as i32;

/// Errors → exceptions, panics → `FacePayException(900)`.
pub struct FacePayPolicy;

impl<T: Default> ErrorPolicy<T, FfiError> for FacePayPolicy {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'l: 'n, 'n>(env: &mut Env<'l>, _cap: &mut (), err: FfiError) -> jni::errors::Result<T> {
        if env.exception_check() {
            // A Java exception (from a callback or a JNI call) is already on its way.
            return Ok(T::default());
        }
        let c = cache::get()?;
        match &err {
            FfiError::Core(e) => throw_facepay(env, e.code().as_u32() as i32, &e.to_string())?,
            FfiError::IllegalArgument(m) => throw_msg(env, &c.illegal_argument, m)?,
            FfiError::IllegalState(m) => throw_msg(env, &c.illegal_state, m)?,
            FfiError::Jni(e) => throw_facepay(env, PANIC_CODE, &format!("internal JNI error: {e}"))?,
        }
        Ok(T::default())
    }

    fn on_panic<'l: 'n, 'n>(
        env: &mut Env<'l>,
        _cap: &mut (),
        _payload: Box<dyn std::any::Any + Send + 'static>,
    ) -> jni::errors::Result<T> {
        tracing::error!("a panic was caught at the JNI boundary (a bug in facepay)");
        if env.exception_check() {
            env.exception_clear();
        }
        throw_facepay(env, PANIC_CODE, "internal error: a panic was caught in native code (a bug in facepay)")?;
        Ok(T::default())
    }
}

/// Runs one native method body: errors and panics become Java exceptions.
pub fn run_ffi_safe<'local, T, F>(mut env: EnvUnowned<'local>, f: F) -> T
where
    T: Default,
    F: FnOnce(&mut Env<'local>) -> FfiResult<T>,
{
    env.with_env(f).resolve::<FacePayPolicy>()
}

/// Throws `io.facepay.FacePayException(code, message)` (constructor kept by the keep rules).
pub fn throw_facepay(env: &mut Env<'_>, code: i32, msg: &str) -> jni::errors::Result<()> {
    let c = cache::get()?;
    let jmsg = env.new_string(msg)?;
    let obj = env.new_object(
        &c.facepay_exception,
        jni_sig!("(ILjava/lang/String;)V"),
        &[JValue::Int(code), JValue::Object(&jmsg)],
    )?;
    throw_obj(env, obj)
}

fn throw_msg(env: &mut Env<'_>, class: &Global<JClass<'static>>, msg: &str) -> jni::errors::Result<()> {
    let jmsg = env.new_string(msg)?;
    let obj = env.new_object(class, jni_sig!("(Ljava/lang/String;)V"), &[JValue::Object(&jmsg)])?;
    throw_obj(env, obj)
}

fn throw_obj(env: &mut Env<'_>, obj: JObject<'_>) -> jni::errors::Result<()> {
    let t = env.cast_local::<JThrowable>(obj)?;
    match env.throw(t) {
        // `throw` reports the now pending exception as an error: that is the success case.
        Ok(()) | Err(jni::errors::Error::JavaException) => Ok(()),
        Err(e) => Err(e),
    }
}
