package io.facepay

/**
 * Every native method of `libfacepay_jni`, named `Type_operation` (STYLE.md). Handles are Rust
 * `Arc` pointers; 0 means closed. Only this package calls it.
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

    @JvmStatic external fun Engine_create(configJson: String, simulatedBackend: Boolean, sim: Long, driver: Long): Long
    @JvmStatic external fun Engine_init(engine: Long)
    @JvmStatic external fun Engine_startFlow(engine: Long, amountFen: Long, outTradeNo: String?): Long
    @JvmStatic external fun Engine_waitRecognition(engine: Long, flow: Long): Array<String>
    @JvmStatic external fun Engine_extVerify(engine: Long, flow: Long, phone: String?)
    @JvmStatic external fun Engine_finish(engine: Long, flow: Long): String
    @JvmStatic external fun Engine_credential(engine: Long, flow: Long): String
    @JvmStatic external fun Engine_stop(engine: Long, flow: Long)
    @JvmStatic external fun Engine_pay(engine: Long, amountFen: Long, outTradeNo: String?, phone: String?): Array<String>
    @JvmStatic external fun Engine_startGate(engine: Long)
    @JvmStatic external fun Engine_stopGate(engine: Long)
    @JvmStatic external fun Engine_surfaceChanged(engine: Long, surfaceId: Long, width: Int, height: Int)
    @JvmStatic external fun Engine_surfaceDestroyed(engine: Long)
    @JvmStatic external fun Engine_release(engine: Long)
    @JvmStatic external fun Engine_health(engine: Long): Array<String>
    @JvmStatic external fun Engine_close(engine: Long)

    /** Test and benchmark support. */
    @JvmStatic external fun Debug_liveGlobalRefs(): Long
    @JvmStatic external fun Debug_panic()
    @JvmStatic external fun Debug_echo(v: Long): Long
    @JvmStatic external fun Debug_benchRustFlow(flows: Long): DoubleArray
    @JvmStatic external fun Debug_benchRustThreadedFlow(flows: Long): DoubleArray
}
