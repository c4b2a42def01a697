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

    @Test fun service_states_agree() {
        val rust = schema.getJSONArray("service_states").let { a -> (0 until a.length()).map { a.getString(it) } }
        assertEquals(rust, ServiceState.entries.map { it.wire })
    }
}
