package io.facepay

import org.json.JSONObject
import org.junit.Assert.assertEquals
import org.junit.Test

/**
 * One source for what both sides name: Rust's error codes, face-service op numbers, health keys,
 * event names and service states (`TestNative.Debug_schema`, built from the Rust types) against
 * the Kotlin constants. Any drift — a code added in Rust, a health field renamed, an event kind
 * Kotlin cannot parse — fails here.
 */
class SchemaTest {
    private val schema = JSONObject(TestNative.Debug_schema())

    private fun JSONObject.toIntMap(): Map<String, Int> = keys().asSequence().associateWith { getInt(it) }

    @Test fun error_codes_agree() {
        assertEquals(schema.getJSONObject("error_codes").toIntMap(), FacePayException.ALL)
    }

    @Test fun op_numbers_agree() {
        assertEquals(schema.getJSONObject("ops").toIntMap(), DriverBridge.OPS)
    }

    @Test fun health_keys_agree() {
        val rust = schema.getJSONArray("health_keys").let { a -> (0 until a.length()).map { a.getString(it) } }
        assertEquals(rust.toSortedSet(), Health.KEYS.toSortedSet())
    }

    @Test fun event_names_agree() {
        val rust = schema.getJSONArray("event_names").let { a -> (0 until a.length()).map { a.getString(it) } }
        assertEquals(rust, FacePayEvent.NAMES)
    }

    @Test fun every_event_kind_rust_sends_parses_with_its_fields() {
        val a = org.json.JSONArray(TestNative.Debug_sampleEvents())
        val parsed = (0 until a.length()).map { FacePayEvent.parse(a.getJSONObject(it).toString()) }
        val wireNames = (0 until a.length()).map { a.getJSONObject(it).getString("type") }.toSet()
        assertEquals("the samples cover every name", FacePayEvent.NAMES.toSet(), wireNames)
        assertEquals(FacePayEvent.ServiceReconnected(1500), parsed[2])
        assertEquals(FacePayEvent.FeaturesStale(null), parsed[3])
        assertEquals(FacePayEvent.AuthInfoFailed("Network"), parsed[7])
        val ended = parsed.filterIsInstance<FacePayEvent.FlowEnded>()
        assertEquals(Outcome.Credential, ended[0].outcome)
        assertEquals(StageTimings(5, null, null, null, 9), ended[0].timings)
        assertEquals(Outcome.Failed("Finish", 9), ended[1].outcome)
        assertEquals(FacePayEvent.PaymentFinal("k-1", PaymentState.PAID), parsed.first { it is FacePayEvent.PaymentFinal })
        assertEquals(FacePayEvent.EventsLost(3), parsed.last())
    }

    @Test fun service_states_agree() {
        val rust = schema.getJSONArray("service_states").let { a -> (0 until a.length()).map { a.getString(it) } }
        assertEquals(rust, ServiceState.entries.map { it.wire })
    }
}
