package io.facepay

import org.json.JSONObject

/**
 * The typed results and the health snapshot, parsed from the JSON the core writes with serde
 * (jni-bindings `schema.rs`: durations as integer milliseconds). The key and
 * name lists here are compared with Rust's by `SchemaTest`, so the two sides cannot drift.
 * SPEC T1.4 (disconnect/reconnect counters), T4.3 (feature age), T3 (authinfo), T8 (next restart).
 */

/** The face service link (Rust `LinkState`). */
enum class ServiceState(val wire: String) {
    UNINITIALISED("uninitialised"),
    INITIALISING("initialising"),
    READY("ready"),
    DISCONNECTED("disconnected");

    companion object {
        @JvmStatic fun fromWire(s: String): ServiceState =
            entries.firstOrNull { it.wire == s } ?: throw IllegalArgumentException("unknown service state '$s'")
    }
}

/** A payment's final state at the backend (Rust `PaymentState`). */
enum class PaymentState { PROCESSING, PAID, FAILED }

/** A health snapshot (Rust `Health`, every field): the status panel's one source. */
data class Health(
    val state: ServiceState,
    val featuresReady: Boolean,
    val featuresStale: Boolean,
    val lastFeatureUpdateUnixMs: Long?,
    val authinfoValidForMs: Long?,
    val authinfoRefreshes: Long,
    val configMismatch: Boolean,
    val disconnects: Long,
    val reconnects: Long,
    val initCalls: Long,
    val lateAnswersDropped: Long,
    val sequences: Long,
    val previewBound: Boolean,
    val flowRunning: Boolean,
    val gateRunning: Boolean,
    /** Flows ended, by outcome label. */
    val flows: Map<String, Long>,
    val lastOutcome: String?,
    val paymentsQueued: Long,
    val paymentsFinal: Map<PaymentState, Long>,
    /** T8: the planned restart, or null. */
    val nextRestartUnixMs: Long?,
) {
    companion object {
        /** The JSON keys of the Rust health, in the order of this class. */
        @JvmField val KEYS: List<String> = listOf(
            "state", "features_ready", "features_stale", "last_feature_update_unix_ms", "authinfo_valid_for",
            "authinfo_refreshes", "config_mismatch", "disconnects", "reconnects", "init_calls", "late_answers_dropped",
            "sequences", "preview_bound", "flow_running", "gate_running", "flows", "last_outcome", "payments_queued",
            "payments_final", "next_restart_unix_ms",
        )

        @JvmField val UNKNOWN = Health(
            ServiceState.UNINITIALISED, false, false, null, null, 0, false, 0, 0, 0, 0, 0, false, false, false,
            emptyMap(), null, 0, emptyMap(), null,
        )

        @JvmStatic fun parse(json: String): Health {
            val o = JSONObject(json)
            val flows = HashMap<String, Long>()
            o.getJSONObject("flows").let { m -> m.keys().forEach { flows[it] = m.getLong(it) } }
            val finals = HashMap<PaymentState, Long>()
            o.getJSONObject("payments_final").let { m -> m.keys().forEach { finals[PaymentState.valueOf(it)] = m.getLong(it) } }
            return Health(
                state = ServiceState.fromWire(o.getString("state")),
                featuresReady = o.getBoolean("features_ready"),
                featuresStale = o.getBoolean("features_stale"),
                lastFeatureUpdateUnixMs = o.optLongOrNull("last_feature_update_unix_ms"),
                authinfoValidForMs = o.optLongOrNull("authinfo_valid_for"),
                authinfoRefreshes = o.getLong("authinfo_refreshes"),
                configMismatch = o.getBoolean("config_mismatch"),
                disconnects = o.getLong("disconnects"),
                reconnects = o.getLong("reconnects"),
                initCalls = o.getLong("init_calls"),
                lateAnswersDropped = o.getLong("late_answers_dropped"),
                sequences = o.getLong("sequences"),
                previewBound = o.getBoolean("preview_bound"),
                flowRunning = o.getBoolean("flow_running"),
                gateRunning = o.getBoolean("gate_running"),
                flows = flows,
                lastOutcome = o.optStringOrNull("last_outcome"),
                paymentsQueued = o.getLong("payments_queued"),
                paymentsFinal = finals,
                nextRestartUnixMs = o.optLongOrNull("next_restart_unix_ms"),
            )
        }
    }
}

/** A payment whose credential is safely in the outbox (T7.8). */
data class Paid(val flowId: Long, val idempotencyKey: String, val userId: String) {
    internal companion object {
        fun parse(json: String) = JSONObject(json).let {
            Paid(it.getLong("flow_id"), it.getString("idempotency_key"), it.getString("user_id"))
        }
    }
}

/** The recognition callback's result (T7): the user and whether auxiliary verification is needed (T7.6). */
data class Recognition(val userId: String, val outUserId: String, val needExtVerify: Boolean) {
    internal companion object {
        fun parse(json: String) = JSONObject(json).let {
            Recognition(it.getString("user_id"), it.getString("out_user_id"), it.getBoolean("need_ext_verify"))
        }
    }
}

/** How a flow ended (Rust `Outcome`). */
sealed class Outcome {
    /** The credential was issued (T7.8). */
    data object Credential : Outcome()
    /** Gate mode: recognised, no payment. */
    data object Recognised : Outcome()
    /** Stopped by the app (T7.7), e.g. a cancelled coroutine. */
    data object Cancelled : Outcome()
    data object TimedOut : Outcome()
    /** The service stopped answering or restarted (T1.2). */
    data object Disconnected : Outcome()
    /** The vendor refused [step]; no credential follows (T7.5). */
    data class Failed(val step: String, val errCode: Long) : Outcome()

    companion object {
        /** serde's form: a unit variant is its name, `Failed` is `{"Failed": {...}}`. */
        internal fun parse(v: Any): Outcome = when (v) {
            "Credential" -> Credential
            "Recognised" -> Recognised
            "Cancelled" -> Cancelled
            "TimedOut" -> TimedOut
            "Disconnected" -> Disconnected
            is JSONObject -> v.getJSONObject("Failed").let { Failed(it.getString("step"), it.getLong("err_code")) }
            else -> throw IllegalArgumentException("unknown outcome $v")
        }
    }
}

/** Per-stage timings of a flow from `startVerify`, in milliseconds. */
data class StageTimings(val firstFrameMs: Long?, val recognisedMs: Long?, val finishedMs: Long?, val credentialMs: Long?, val totalMs: Long) {
    internal companion object {
        fun parse(o: JSONObject) = StageTimings(
            o.optLongOrNull("first_frame"), o.optLongOrNull("recognised"), o.optLongOrNull("finished"),
            o.optLongOrNull("credential"), o.getLong("total"),
        )
    }
}

internal fun JSONObject.optLongOrNull(k: String): Long? = if (!has(k) || isNull(k)) null else getLong(k)
internal fun JSONObject.optStringOrNull(k: String): String? = if (!has(k) || isNull(k)) null else getString(k)
