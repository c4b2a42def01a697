package io.facepay

/**
 * Every production native method of `libfacepay_jni`, named `Type_operation` (STYLE.md). Handles
 * are Rust `Arc` pointers; 0 means closed. Results, health and events cross as JSON (jni-bindings
 * `schema.rs`). `…Async` natives check their arguments at once and complete their
 * [NativeCompletion] later from the thread that finished the call (the engine's, see `Completion.kt`). Only this package calls it; the
 * test-only natives live in the test build's `TestNative`.
 */
internal object Native {
    init {
        System.loadLibrary("facepay_jni")
    }

    @JvmStatic external fun Sim_create(seed: Long): Long
    @JvmStatic external fun Sim_close(sim: Long)

    @JvmStatic external fun Driver_create(bridge: Any): Long
    @JvmStatic external fun Driver_answer(driver: Long, id: Long, op: Int, kv: Array<String?>)
    @JvmStatic external fun Driver_close(driver: Long)

    /** Parses and validates a configuration; throws `FacePayException(INVALID_CONFIG)` naming the field. */
    @JvmStatic external fun Config_validate(configJson: String)

    @JvmStatic external fun Engine_create(configJson: String, simulatedBackend: Boolean, sim: Long, driver: Long, sink: EventSink): Long
    @JvmStatic external fun Engine_init(engine: Long)
    @JvmStatic external fun Engine_startFlow(engine: Long, amountFen: Long, outTradeNo: String?): Long
    @JvmStatic external fun Engine_waitRecognition(engine: Long, flow: Long): String
    @JvmStatic external fun Engine_extVerify(engine: Long, flow: Long, phone: String?)
    @JvmStatic external fun Engine_finish(engine: Long, flow: Long): String
    @JvmStatic external fun Engine_credential(engine: Long, flow: Long): String
    @JvmStatic external fun Engine_stop(engine: Long, flow: Long)
    @JvmStatic external fun Engine_pay(engine: Long, amountFen: Long, outTradeNo: String?, phone: String?): String
    @JvmStatic external fun Engine_startGate(engine: Long)
    @JvmStatic external fun Engine_stopGate(engine: Long)
    @JvmStatic external fun Engine_surfaceChanged(engine: Long, surfaceId: Long, width: Int, height: Int)
    @JvmStatic external fun Engine_surfaceDestroyed(engine: Long)
    @JvmStatic external fun Engine_release(engine: Long)
    @JvmStatic external fun Engine_health(engine: Long): String
    @JvmStatic external fun Engine_close(engine: Long)

    @JvmStatic external fun Engine_initAsync(engine: Long, c: NativeCompletion)
    @JvmStatic external fun Engine_startFlowAsync(engine: Long, amountFen: Long, outTradeNo: String?, c: NativeCompletion)
    @JvmStatic external fun Engine_waitRecognitionAsync(engine: Long, flow: Long, c: NativeCompletion)
    @JvmStatic external fun Engine_extVerifyAsync(engine: Long, flow: Long, phone: String?, c: NativeCompletion)
    @JvmStatic external fun Engine_finishAsync(engine: Long, flow: Long, c: NativeCompletion)
    @JvmStatic external fun Engine_credentialAsync(engine: Long, flow: Long, c: NativeCompletion)
    @JvmStatic external fun Engine_stopAsync(engine: Long, flow: Long, c: NativeCompletion)
    @JvmStatic external fun Engine_payAsync(engine: Long, amountFen: Long, outTradeNo: String?, phone: String?, c: NativeCompletion)
    @JvmStatic external fun Engine_startGateAsync(engine: Long, c: NativeCompletion)
    @JvmStatic external fun Engine_stopGateAsync(engine: Long, c: NativeCompletion)
    @JvmStatic external fun Engine_surfaceChangedAsync(engine: Long, surfaceId: Long, width: Int, height: Int, c: NativeCompletion)
    @JvmStatic external fun Engine_surfaceDestroyedAsync(engine: Long, c: NativeCompletion)
    @JvmStatic external fun Engine_releaseAsync(engine: Long, c: NativeCompletion)
    /** T7.7: stops a flow without waiting (a cancelled coroutine or future). */
    @JvmStatic external fun Engine_cancelFlow(engine: Long, flow: Long)
}
