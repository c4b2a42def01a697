package io.facepay

import org.json.JSONObject

/**
 * What the engine tells the app (Rust `EngineEvent`, parsed from its JSON; jni-bindings
 * `schema.rs`): SPEC T1.4 disconnects and reconnects, T4.3 stale/fresh features, T3 authinfo,
 * T6 preview, T7 flow outcomes and T7.8 payments, T8 restart advice. [seq] numbers the events
 * of one [FacePay] from 1 with no gap, so a collector that fell behind the bounded buffer
 * (see [FacePay.events]) sees the gap; [EventsLost] says the engine's own channel overflowed.
 * Events carry ids and codes only, never personal data.
 */
sealed class FacePayEvent {
    /** 1, 2, 3, … per [FacePay] instance (not part of equality). Every kind is a class, not an object, so each event has its own. */
    var seq: Long = 0
        internal set

    data class StateChanged(val state: ServiceState) : FacePayEvent()
    /** T1.4: the link was lost ([reason]: `call_timeout`, `no_callback`, `not_initialised`). */
    data class ServiceDisconnected(val reason: String) : FacePayEvent()
    /** T1.4: the link is back after [afterMs]. */
    data class ServiceReconnected(val afterMs: Long) : FacePayEvent()
    /** T4.3: features older than allowed; [ageMs] null = never updated. */
    data class FeaturesStale(val ageMs: Long?) : FacePayEvent()
    class FeaturesFresh : FacePayEvent() {
        override fun equals(other: Any?) = other is FeaturesFresh
        override fun hashCode() = FeaturesFresh::class.hashCode()
        override fun toString() = "FeaturesFresh"
    }
    data class FeaturesUpdated(val ok: Boolean) : FacePayEvent()
    /** T3: a new authinfo, valid for [expiresInMs]. */
    data class AuthInfoRefreshed(val expiresInMs: Long) : FacePayEvent()
    /** T3: the refresh failed with the Rust `ErrorCode` named [code]; the engine retries. */
    data class AuthInfoFailed(val code: String) : FacePayEvent()
    /** T3.5: organisation and merchant do not belong together; no retry. */
    class ConfigMismatch : FacePayEvent() {
        override fun equals(other: Any?) = other is ConfigMismatch
        override fun hashCode() = ConfigMismatch::class.hashCode()
        override fun toString() = "ConfigMismatch"
    }
    data class PreviewBound(val width: Int, val height: Int) : FacePayEvent()
    /** T6.4: the preview is not 3:4. */
    data class PreviewAspect(val width: Int, val height: Int) : FacePayEvent()
    data class RecognitionFailed(val flowId: Long, val errCode: Long) : FacePayEvent()
    /** T7: a flow ended; [outcome] is [Outcome.Cancelled] after a cancelled coroutine (T7.7). */
    data class FlowEnded(val flowId: Long, val outcome: Outcome, val recognitionFailures: Int, val timings: StageTimings) :
        FacePayEvent()
    /** T1.3: gate mode recognised a user. */
    data class GateRecognised(val userId: String) : FacePayEvent()
    /** T7.8: the credential is in the durable outbox under [idempotencyKey]. */
    data class PaymentQueued(val flowId: Long, val idempotencyKey: String) : FacePayEvent()
    data class PaymentFinal(val idempotencyKey: String, val state: PaymentState) : FacePayEvent()
    /** T8: the SDK plans a restart of the face service at [atUnixMs] (inside the window). */
    data class RestartPlanned(val atUnixMs: Long) : FacePayEvent()
    /** T8: restart now (the app should let it happen). */
    class RestartNow : FacePayEvent() {
        override fun equals(other: Any?) = other is RestartNow
        override fun hashCode() = RestartNow::class.hashCode()
        override fun toString() = "RestartNow"
    }
    /** The JNI pump fell more than the engine's channel behind and lost [count] events. */
    data class EventsLost(val count: Long) : FacePayEvent()

    companion object {
        /** The wire names (Rust variant names) of every kind, compared with Rust's by `SchemaTest`. */
        @JvmField val NAMES: List<String> = listOf(
            "StateChanged", "Disconnected", "Reconnected", "FeaturesStale", "FeaturesFresh", "FeaturesUpdated",
            "AuthInfoRefreshed", "AuthInfoFailed", "ConfigMismatch", "PreviewBound", "PreviewAspect",
            "RecognitionFailed", "FlowEnded", "GateRecognised", "PaymentQueued", "PaymentFinal", "RestartPlanned",
            "RestartNow", "EventsLost",
        )

        /** One event from its JSON (`{"type": name, ...fields}`); an unknown type is an error. */
        @JvmStatic fun parse(json: String): FacePayEvent {
            val o = JSONObject(json)
            return when (val t = o.getString("type")) {
                "StateChanged" -> StateChanged(ServiceState.fromWire(o.getString("state")))
                "Disconnected" -> ServiceDisconnected(o.getString("reason"))
                "Reconnected" -> ServiceReconnected(o.getLong("after"))
                "FeaturesStale" -> FeaturesStale(o.optLongOrNull("age"))
                "FeaturesFresh" -> FeaturesFresh()
                "FeaturesUpdated" -> FeaturesUpdated(o.getBoolean("ok"))
                "AuthInfoRefreshed" -> AuthInfoRefreshed(o.getLong("expires_in"))
                "AuthInfoFailed" -> AuthInfoFailed(o.getString("code"))
                "ConfigMismatch" -> ConfigMismatch()
                "PreviewBound" -> PreviewBound(o.getInt("width"), o.getInt("height"))
                "PreviewAspect" -> PreviewAspect(o.getInt("width"), o.getInt("height"))
                "RecognitionFailed" -> RecognitionFailed(o.getLong("flow_id"), o.getLong("err_code"))
                "FlowEnded" -> FlowEnded(
                    o.getLong("flow_id"), Outcome.parse(o.get("outcome")), o.getInt("recognition_failures"),
                    StageTimings.parse(o.getJSONObject("timings")),
                )
                "GateRecognised" -> GateRecognised(o.getString("user_id"))
                "PaymentQueued" -> PaymentQueued(o.getLong("flow_id"), o.getString("idempotency_key"))
                "PaymentFinal" -> PaymentFinal(o.getString("idempotency_key"), PaymentState.valueOf(o.getString("state")))
                "RestartPlanned" -> RestartPlanned(o.getLong("at_unix_ms"))
                "RestartNow" -> RestartNow()
                "EventsLost" -> EventsLost(o.getLong("count"))
                else -> throw IllegalArgumentException("unknown event type '$t'")
            }
        }
    }
}

/** Java's way to receive [FacePayEvent]s ([FacePay.addEventListener]). */
fun interface FacePayEventListener {
    fun onEvent(event: FacePayEvent)
}
