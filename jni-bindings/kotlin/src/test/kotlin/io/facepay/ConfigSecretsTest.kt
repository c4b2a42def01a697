package io.facepay

import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test

/** SPEC S1: the device credential reaches the core's JSON and never a log line through toString. */
class ConfigSecretsTest {
    private val credential = "fpdc1_" + "ab".repeat(32)

    @Test fun credentialIsSentButNeverPrinted() {
        val cfg = FacePayConfig.simulator().copy(deviceCredential = credential, allowPlainHttp = true)
        assertTrue(cfg.toJson().contains("\"device_credential\":\"$credential\""))
        assertTrue(cfg.toJson().contains("\"allow_plain_http\":true"))
        assertFalse(cfg.toString().contains(credential))
        assertTrue(cfg.toString().contains("deviceCredential=***"))
        assertFalse(FacePayConfig.simulator().toJson().contains("device_credential"))
    }
}
