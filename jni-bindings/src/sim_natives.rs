//! The Rust simulator behind the Kotlin `SimulatedFaceDriver` (emulators, tests): the
//! simulated vendor service of `facepay::sim` as a handle the engine drives directly.

use std::sync::Arc;

use jni::objects::JClass;
use jni::sys::jlong;
use jni::EnvUnowned;

use facepay::sim::face_service::{SimConfig, SimFaceService};

use crate::ffi::run_ffi_safe;
use crate::handles;

/// `Native.Sim_create(seed: Long): Long` — a simulated face service with zero latency.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Sim_1create<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    seed: jlong,
) -> jlong {
    run_ffi_safe(env, |_env| {
        let sim: Arc<SimFaceService> = SimFaceService::new(SimConfig::instant(seed as u64));
        Ok(handles::into_handle(sim))
    })
}

/// `Native.Sim_close(sim: Long)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_Native_Sim_1close<'l>(env: EnvUnowned<'l>, _class: JClass<'l>, h: jlong) {
    run_ffi_safe(env, |_env| {
        // SAFETY: Kotlin closes each handle once.
        unsafe { handles::release::<SimFaceService>(h) };
        Ok(())
    })
}
