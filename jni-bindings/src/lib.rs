//! JNI bindings of the facepay terminal core for the Kotlin wrapper (`io.facepay`). The
//! crate owns the boundary and nothing else: every entry point runs through
//! [`ffi::run_ffi_safe`] (jni 0.22 `EnvUnowned::with_env(..).resolve::<Policy>()`), so core
//! errors become `io.facepay.FacePayException(code)` with the stable code, bad arguments
//! `IllegalArgumentException`, use after close `IllegalStateException`, and a panic never
//! crosses into the JVM. Rust objects cross as `Arc` handles (`Long`, [`handles`]); the
//! Kotlin `FaceServiceDriver` is driven from one attached dispatch thread ([`driver`]);
//! classes and method ids are cached in `JNI_OnLoad` ([`cache`]). Rules: STYLE.md "The JNI
//! layer", SPEC T1.1 (a driver that never answers is a dead service), T2, T6, T7.

pub mod answer;
pub mod async_natives;
pub mod attach;
pub mod cache;
pub mod callbacks;
#[cfg(feature = "test-natives")]
pub mod debug_natives;
pub mod driver;
pub mod engine_natives;
pub mod ffi;
pub mod handles;
pub mod inline;
pub mod logging;
pub mod ops;
pub mod schema;
pub mod sim_natives;

use std::ffi::c_void;

use jni::sys::{jint, JNI_ERR, JNI_VERSION_1_6};

/// Called by the JVM when `System.loadLibrary("facepay_jni")` loads us (on the app thread
/// that loaded the class `io.facepay.Native`, so its class loader finds our classes).
///
/// # Safety
/// Called by the JVM with a valid `JavaVM` pointer.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn JNI_OnLoad(vm: *mut jni::sys::JavaVM, _reserved: *mut c_void) -> jint {
    let outcome = std::panic::catch_unwind(|| {
        logging::init();
        install_panic_hook();
        // SAFETY: the JVM hands us a valid pointer.
        let vm = unsafe { jni::JavaVM::from_raw(vm) };
        cache::init(&vm)
    });
    match outcome {
        Ok(Ok(())) => JNI_VERSION_1_6,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "facepay_jni: caching classes failed");
            JNI_ERR
        }
        Err(_) => JNI_ERR,
    }
}

/// A panic anywhere in this library is logged (logcat on Android) with its location, never
/// its payload (which could carry data), before the boundary turns it into
/// `FacePayException(900)` ([`ffi`]). Replaces the default hook, which prints the payload.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let (file, line) = info.location().map(|l| (l.file(), l.line())).unwrap_or(("?", 0));
            let thread = std::thread::current();
            tracing::error!(
                file,
                line,
                thread = thread.name().unwrap_or("?"),
                "panic in facepay native code (a bug in facepay)"
            );
        }));
    });
}
