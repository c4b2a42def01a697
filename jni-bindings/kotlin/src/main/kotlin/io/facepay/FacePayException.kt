package io.facepay

/**
 * An error of the facepay core, with its stable numeric [code] (Rust `ErrorCode`): 100 invalid
 * argument, 101 invalid config, 200 not initialised, 201 service disconnected, 202 call timeout,
 * 203 features not ready, 204 closed, 300 out of order (T7), 301 flow busy, 302 flow timeout,
 * 303 flow cancelled, 304 no such flow, 4xx backend/authinfo, 600 vendor, 900 internal.
 * Messages never carry personal data.
 */
@CalledFromNative
class FacePayException @CalledFromNative constructor(val code: Int, message: String) : RuntimeException("[$code] $message") {
    companion object {
        const val INVALID_CONFIG = 101
        const val NOT_INITIALISED = 200
        const val SERVICE_DISCONNECTED = 201
        const val CALL_TIMEOUT = 202
        const val CLOSED = 204
        const val OUT_OF_ORDER = 300
        const val FLOW_BUSY = 301
        const val FLOW_CANCELLED = 303
        const val NO_SUCH_FLOW = 304
        const val VENDOR = 600
        const val INTERNAL = 900
    }
}
