//! The Rust simulator behind the Kotlin `SimulatedFaceDriver` (emulators, tests): the
//! simulated vendor service of `facepay::sim` as a handle the engine drives directly, and
//! the in-process backend double. Only a build with the `simulator` feature carries them;
//! in a production build the same natives exist and refuse with a clear error, so a
//! terminal app can never run a simulated face service by accident.

use std::sync::Arc;

use jni::objects::JClass;
use jni::sys::jlong;
use jni::EnvUnowned;

use facepay::terminal::config::TerminalConfig;
use facepay::terminal::engine::Deps;
use facepay::terminal::face_service::FaceService;

use crate::ffi::{run_ffi_safe, FfiResult};
#[cfg(feature = "simulator")]
use crate::handles;

#[cfg(not(feature = "simulator"))]
fn no_simulator() -> crate::ffi::FfiError {
    crate::ffi::FfiError::IllegalState(
        "this build of facepay_jni has no simulator (build it with the `simulator` feature)".into(),
    )
}

/// `Native.Sim_create(seed: Long): Long` — a simulated face service with zero latency.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Sim_1create<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    seed: jlong,
) -> jlong {
    run_ffi_safe(env, |_env| {
        #[cfg(feature = "simulator")]
        {
            use facepay::sim::face_service::{SimConfig, SimFaceService};
            let sim: Arc<SimFaceService> = SimFaceService::new(SimConfig::instant(seed as u64));
            Ok(handles::into_handle(sim))
        }
        #[cfg(not(feature = "simulator"))]
        {
            let _ = seed;
            Err(no_simulator())
        }
    })
}

/// `Native.Sim_close(sim: Long)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Sim_1close<'l>(env: EnvUnowned<'l>, _class: JClass<'l>, h: jlong) {
    run_ffi_safe(env, |_env| {
        #[cfg(feature = "simulator")]
        // SAFETY: Kotlin closes each handle once.
        unsafe {
            handles::release::<facepay::sim::face_service::SimFaceService>(h)
        };
        #[cfg(not(feature = "simulator"))]
        let _ = h;
        Ok(())
    })
}

/// The face service behind a `Sim_create` handle.
///
/// # Safety
/// `h` is a live `Sim_create` handle.
pub unsafe fn service_from_handle(h: jlong) -> FfiResult<Arc<dyn FaceService>> {
    #[cfg(feature = "simulator")]
    {
        // SAFETY: the caller's contract.
        let sim = unsafe { handles::borrow::<facepay::sim::face_service::SimFaceService>(h, "simulator")? };
        Ok(sim)
    }
    #[cfg(not(feature = "simulator"))]
    {
        let _ = h;
        Err(no_simulator())
    }
}

/// The injected HTTP 500 rate of the next simulated backends, as `f64` bits (0 = none). Set
/// only by the test-only `TestNative.Debug_setSimBackendErrorRate` (a backend that is down
/// while a payment is queued: the outbox keeps it, T7.8).
#[cfg(feature = "simulator")]
pub static SIM_BACKEND_ERROR_RATE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(feature = "simulator")]
fn sim_backend_error_rate() -> f64 {
    f64::from_bits(SIM_BACKEND_ERROR_RATE.load(std::sync::atomic::Ordering::Relaxed))
}

/// Engine dependencies with the in-process backend double in place of the merchant backend.
pub fn simulated_backend(cfg: &TerminalConfig, service: Arc<dyn FaceService>) -> FfiResult<Deps> {
    #[cfg(feature = "simulator")]
    {
        use facepay::sim::backend::{SimBackend, SimBackendConfig};
        let backend = SimBackend::new(SimBackendConfig {
            mch_id: cfg.mch_id.clone(),
            organizations: vec![cfg.organization_id.clone()],
            error_rate: sim_backend_error_rate(),
            ..SimBackendConfig::default()
        });
        Ok(Deps::new(service, backend.clone(), backend))
    }
    #[cfg(not(feature = "simulator"))]
    {
        let _ = (cfg, service);
        Err(no_simulator())
    }
}
