package io.facepay

import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

/** The JNI FaceService over Kotlin drivers: a good one, a dead one (watchdog), a throwing one. */
class DriverTest {
    private var fp: FacePay? = null

    @After fun tearDown() {
        fp?.close()
    }

    @Test fun a_kotlin_driver_runs_a_whole_pay_flow_through_jni() {
        val d = FakeDriver(needExtVerify = true)
        val f = FacePay.initHost(Configs.sim("drv-1"), d).also { fp = it }
        Ready.await(f)
        val paid = f.payBlocking(100, null, "1234")
        assertEquals("u-1", paid.userId)
        assertTrue(paid.idempotencyKey.isNotEmpty())
        // Without a phone the flow that needs auxiliary verification is cancelled (T7.6).
        val e = assertThrows(FacePayException::class.java) { f.payBlocking(100) }
        assertEquals(FacePayException.FLOW_CANCELLED, e.code)
        f.surfaceChangedBlocking(1, 480, 640)
        assertEquals(1, d.calls.get())
    }

    @Test fun t7_6_ext_verify_step_by_step_through_a_kotlin_driver() {
        val f = FacePay.initHost(Configs.sim("drv-ext"), FakeDriver(needExtVerify = true)).also { fp = it }
        Ready.await(f)
        val flow = f.startFlowBlocking(100)
        val rec = f.waitRecognitionBlocking(flow)
        assertTrue(rec.needExtVerify)
        assertEquals("u-1", rec.userId)
        // T7.6: finish before the auxiliary verification is refused.
        val e = assertThrows(FacePayException::class.java) { f.finishBlocking(flow) }
        assertEquals(FacePayException.OUT_OF_ORDER, e.code)
        f.extVerifyBlocking(flow, "1234")
        assertEquals("u-1", f.finishBlocking(flow))
        assertTrue(f.credentialBlocking(flow).isNotEmpty())
    }

    @Test fun t1_1_a_driver_that_never_answers_is_caught_by_the_watchdog() {
        val f = FacePay.initHost(Configs.fast("silent-1"), SilentDriver()).also { fp = it }
        val e = assertThrows(FacePayException::class.java) { f.initBlocking() }
        assertTrue("code ${e.code}", e.code == FacePayException.CALL_TIMEOUT || e.code == FacePayException.SERVICE_DISCONNECTED)
        val flow = assertThrows(FacePayException::class.java) { f.payBlocking(100) }
        assertTrue("code ${flow.code}", flow.code != FacePayException.INTERNAL)
        assertTrue(f.refreshHealth().state != ServiceState.READY)
    }

    @Test fun a_driver_that_throws_gives_a_clear_error_and_the_jvm_lives_on() {
        val f = FacePay.initHost(Configs.fast("throw-1"), ThrowingDriver()).also { fp = it }
        val e = assertThrows(FacePayException::class.java) { f.initBlocking() }
        assertEquals(FacePayException.VENDOR, e.code)
        assertTrue(e.message!!.contains("Init"))
        assertEquals(42L, TestNative.Debug_echo(41))
    }
}
