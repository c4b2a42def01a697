package io.facepay

/**
 * An error of the facepay core, with its stable numeric [code] (Rust `ErrorCode`; the constants
 * below are compared with Rust's list by `SchemaTest`): 1xx argument/config, 2xx service, 3xx flow
 * (T7), 4xx backend/authinfo, 500 store, 600 vendor, 900 internal. Messages never carry personal data.
 */
@CalledFromNative
class FacePayException @CalledFromNative constructor(val code: Int, message: String) : RuntimeException("[$code] $message") {
    companion object {
        const val INVALID_ARGUMENT = 100
        const val INVALID_CONFIG = 101
        /** T3.5: organisation and merchant do not belong together. */
        const val CONFIG_MISMATCH = 102
        const val NOT_INITIALISED = 200
        const val SERVICE_DISCONNECTED = 201
        const val CALL_TIMEOUT = 202
        /** T4.4: no feature update answered since init. */
        const val FEATURES_NOT_READY = 203
        const val CLOSED = 204
        /** T7: a call out of the only legal order. */
        const val OUT_OF_ORDER = 300
        const val FLOW_BUSY = 301
        const val FLOW_TIMEOUT = 302
        const val FLOW_CANCELLED = 303
        const val NO_SUCH_FLOW = 304
        const val AUTHINFO_UNAVAILABLE = 400
        const val NETWORK = 401
        const val BACKEND = 402
        const val STORE = 500
        const val VENDOR = 600
        const val INTERNAL = 900

        /** Every code by its constant's name. */
        @JvmField val ALL: Map<String, Int> = linkedMapOf(
            "INVALID_ARGUMENT" to INVALID_ARGUMENT, "INVALID_CONFIG" to INVALID_CONFIG, "CONFIG_MISMATCH" to CONFIG_MISMATCH,
            "NOT_INITIALISED" to NOT_INITIALISED, "SERVICE_DISCONNECTED" to SERVICE_DISCONNECTED, "CALL_TIMEOUT" to CALL_TIMEOUT,
            "FEATURES_NOT_READY" to FEATURES_NOT_READY, "CLOSED" to CLOSED, "OUT_OF_ORDER" to OUT_OF_ORDER, "FLOW_BUSY" to FLOW_BUSY,
            "FLOW_TIMEOUT" to FLOW_TIMEOUT, "FLOW_CANCELLED" to FLOW_CANCELLED, "NO_SUCH_FLOW" to NO_SUCH_FLOW,
            "AUTHINFO_UNAVAILABLE" to AUTHINFO_UNAVAILABLE, "NETWORK" to NETWORK, "BACKEND" to BACKEND, "STORE" to STORE,
            "VENDOR" to VENDOR, "INTERNAL" to INTERNAL,
        )
    }
}
