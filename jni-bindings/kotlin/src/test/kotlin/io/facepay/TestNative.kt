package io.facepay

/**
 * The test-only natives (`TestNative.Debug_*`, cargo feature `test-natives`): never in the
 * production `Native` object nor in an app's library (scripts/test-jvm checks the exports).
 */
object TestNative {
    init {
        System.loadLibrary("facepay_jni")
    }

    @JvmStatic external fun Debug_liveGlobalRefs(): Long
    @JvmStatic external fun Debug_panic()
    @JvmStatic external fun Debug_echo(v: Long): Long
    @JvmStatic external fun Debug_benchRustFlow(flows: Long): DoubleArray
    @JvmStatic external fun Debug_benchRustThreadedFlow(flows: Long): DoubleArray
    /** Rust's error codes, op numbers, health keys, event names and service states (JSON). */
    @JvmStatic external fun Debug_schema(): String
    /** One event of every kind Rust sends, as JSON (an array). */
    @JvmStatic external fun Debug_sampleEvents(): String
    /** Simulated backends created from now on fail this share of calls with HTTP 500. */
    @JvmStatic external fun Debug_setSimBackendErrorRate(rate: Double)
}
