//! `TestNative.Debug_*`: natives for the JVM tests and `scripts/bench-jni` only (a
//! deliberate panic, the live global-reference count, a bare round trip, the Rust-alone
//! flow benchmarks, the schema both sides must agree on). Compiled only with the
//! `test-natives` feature, so an app's library does not carry them, and declared by the
//! test-only Kotlin object `io.facepay.TestNative` (src/test), not by the production `Native`.

use jni::objects::{JClass, JDoubleArray, JString};
use jni::sys::jlong;
use jni::EnvUnowned;

use facepay::sim::bench::FlowBench;

use crate::ffi::{illegal_arg, run_ffi_safe, FfiResult};

/// Test support: library-held JNI global references alive now (no growth over 100k flows).
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_TestNative_Debug_1liveGlobalRefs<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
) -> jlong {
    run_ffi_safe(env, |_env| Ok(crate::driver::LIVE_GLOBALS.load(std::sync::atomic::Ordering::Relaxed)))
}

/// Test support: a native that panics. The boundary turns it into `FacePayException(900)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_TestNative_Debug_1panic<'l>(env: EnvUnowned<'l>, _c: JClass<'l>) {
    run_ffi_safe(env, |_env| -> FfiResult<()> {
        if std::env::var_os("FACEPAY_NEVER_SET_SENTINEL").is_none() {
            panic!("test-only native: deliberate panic");
        }
        Ok(())
    })
}

/// Benchmark support: the cheapest round trip (Java → Rust → Java), through the boundary helper.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_TestNative_Debug_1echo<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    v: jlong,
) -> jlong {
    run_ffi_safe(env, |_env| Ok(v.wrapping_add(1)))
}

/// Benchmark support: the same complete flow in Rust alone (`facepay::sim::bench::flow`),
/// as `[p50_us, p99_us]`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_TestNative_Debug_1benchRustFlow<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    flows: jlong,
) -> JDoubleArray<'l> {
    bench(env, flows, facepay::sim::bench::flow)
}

/// Benchmark support: the same flow in Rust alone with the engine on its own thread
/// (`Terminal::start`, as behind JNI) and the caller blocking on each answer
/// (`facepay::sim::bench::flow_engine_thread`), as `[p50_us, p99_us]`: the figure that
/// separates the JNI boundary from the thread hand-offs.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_TestNative_Debug_1benchRustThreadedFlow<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    flows: jlong,
) -> JDoubleArray<'l> {
    bench(env, flows, facepay::sim::bench::flow_engine_thread)
}

fn bench<'l>(env: EnvUnowned<'l>, flows: jlong, run: fn(usize) -> facepay::Result<FlowBench>) -> JDoubleArray<'l> {
    run_ffi_safe(env, |env| {
        // Checked at the boundary, like every native's arguments: IllegalArgumentException.
        if flows < 100 {
            return Err(illegal_arg("flows must be at least 100"));
        }
        let b = run(flows as usize)?;
        let arr = env.new_double_array(2)?;
        arr.set_region(env, 0, &[b.p50_us, b.p99_us])?;
        Ok(arr)
    })
}

/// Test support: the error codes, op numbers, health keys, event names and service states
/// as Rust knows them ([`crate::schema::schema_json`]); a JVM test compares the Kotlin side.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_TestNative_Debug_1schema<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
) -> JString<'l> {
    run_ffi_safe(env, |env| Ok(env.new_string(crate::schema::schema_json())?))
}

/// Test support: every simulated backend created from now on fails this share of its calls
/// with HTTP 500 (0.0 = none, 1.0 = all): a backend that is down while a payment is queued.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_TestNative_Debug_1setSimBackendErrorRate<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
    rate: jni::sys::jdouble,
) {
    run_ffi_safe(env, |_env| {
        if !(0.0..=1.0).contains(&rate) {
            return Err(illegal_arg("rate must be within 0.0..=1.0"));
        }
        crate::sim_natives::SIM_BACKEND_ERROR_RATE.store(rate.to_bits(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    })
}

/// Test support: one event of every `EngineEvent` kind (and `EventsLost`), as the pump writes
/// them (a JSON array): the Kotlin parser must read every kind Rust can send.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_facepay_TestNative_Debug_1sampleEvents<'l>(
    env: EnvUnowned<'l>,
    _c: JClass<'l>,
) -> JString<'l> {
    run_ffi_safe(env, |env| {
        let mut all: Vec<serde_json::Value> = sample_events().iter().map(crate::schema::event_value).collect();
        all.push(serde_json::from_str(&crate::schema::events_lost_json(3)).expect("events_lost_json is JSON"));
        Ok(env.new_string(serde_json::Value::Array(all).to_string())?)
    })
}

fn sample_events() -> Vec<facepay::terminal::health::EngineEvent> {
    use facepay::terminal::backend::PaymentState;
    use facepay::terminal::health::{EngineEvent as E, FlowReport, StageTimings};
    use facepay::terminal::lifecycle::{LinkState, LossReason};
    use facepay::terminal::verify::{FlowId, Outcome, Step};
    use std::time::Duration;
    let ms = Duration::from_millis;
    let report = |outcome| FlowReport {
        flow_id: FlowId(7),
        outcome,
        recognition_failures: 1,
        timings: StageTimings {
            first_frame: Some(ms(5)),
            recognised: None,
            finished: None,
            credential: None,
            total: ms(9),
        },
    };
    vec![
        E::StateChanged { state: LinkState::Ready },
        E::Disconnected { reason: LossReason::CallTimeout },
        E::Reconnected { after: ms(1500) },
        E::FeaturesStale { age: None },
        E::FeaturesFresh,
        E::FeaturesUpdated { ok: true },
        E::AuthInfoRefreshed { expires_in: ms(3_600_000) },
        E::AuthInfoFailed { code: facepay::ErrorCode::Network },
        E::ConfigMismatch,
        E::PreviewBound { width: 480, height: 640 },
        E::PreviewAspect { width: 640, height: 480 },
        E::RecognitionFailed { flow_id: FlowId(7), err_code: 42 },
        E::FlowEnded(report(Outcome::Credential)),
        E::FlowEnded(report(Outcome::Failed { step: Step::Finish, err_code: 9 })),
        E::GateRecognised { user_id: "u-1".into() },
        E::PaymentQueued { flow_id: FlowId(7), idempotency_key: "k-1".into() },
        E::PaymentFinal { idempotency_key: "k-1".into(), state: PaymentState::Paid },
        E::RestartPlanned { at_unix_ms: 1_700_000_000_000 },
        E::RestartNow,
    ]
}
