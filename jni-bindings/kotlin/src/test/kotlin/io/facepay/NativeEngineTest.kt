package io.facepay

import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertSame
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

/** The engine through JNI with the Rust simulator: every Engine/Sim native, T7 ordering, bad input. */
class NativeEngineTest {
    private var fp: FacePay? = null

    @After fun tearDown() {
        fp?.close()
    }

    private fun open(cfg: FacePayConfig = Configs.sim()): FacePay =
        FacePay.initHost(cfg, SimulatedFaceDriver(7)).also { fp = it }

    @Test fun t7_pay_flow_end_to_end_with_the_simulator() {
        val f = open()
        Ready.await(f)
        val paid = f.payBlocking(100, null, "1234")
        assertTrue(paid.flowId > 0)
        assertTrue(paid.idempotencyKey.isNotEmpty())
        assertTrue(paid.userId.isNotEmpty())
        assertEquals(ServiceState.READY, f.refreshHealth().state)
        assertTrue(f.refreshHealth().featuresReady)
    }

    @Test fun t7_step_by_step_flow_calls_every_engine_native() {
        val f = open()
        Ready.await(f)
        val flow = f.startFlowBlocking(250, "order-1")
        val rec = f.waitRecognitionBlocking(flow)
        assertTrue(rec.userId.isNotEmpty())
        if (rec.needExtVerify) f.extVerifyBlocking(flow, "1234")
        assertEquals(rec.userId, f.finishBlocking(flow))
        assertTrue(f.credentialBlocking(flow).isNotEmpty())
        // The next flow is cancelled (T7.5: no credential after stop).
        val flow2 = f.startFlowBlocking(100)
        f.stopBlocking(flow2)
        val e = assertThrows(FacePayException::class.java) { f.credentialBlocking(flow2) }
        assertNotEquals(0, e.code)
        f.startGateBlocking()
        assertTrue(f.refreshHealth().let { it.state == ServiceState.READY })
        f.stopGateBlocking()
        f.surfaceChangedBlocking(1, 480, 640)
        f.surfaceDestroyedBlocking()
        f.releaseBlocking()
        // The engine answers the call, then publishes its health: wait for the snapshot.
        Waits.until("uninitialised after release") { f.refreshHealth().state == ServiceState.UNINITIALISED }
        assertEquals(ServiceState.UNINITIALISED, f.refreshHealth().state)
    }

    @Test fun t7_3_finish_before_recognition_is_refused_with_code() {
        // A driver whose recognition never calls back: the flow is before its callback.
        val f = FacePay.initHost(Configs.sim("t73"), NoRecognitionDriver()).also { fp = it }
        Ready.await(f)
        val flow = f.startFlowBlocking(100)
        val e = assertThrows(FacePayException::class.java) { f.finishBlocking(flow) }
        assertEquals(FacePayException.OUT_OF_ORDER, e.code)
    }

    @Test fun t7_4_credential_before_finish_is_refused_with_code() {
        val f = open()
        Ready.await(f)
        val flow = f.startFlowBlocking(100)
        val rec = f.waitRecognitionBlocking(flow)
        if (rec.needExtVerify) f.extVerifyBlocking(flow, "1234")
        val e = assertThrows(FacePayException::class.java) { f.credentialBlocking(flow) }
        assertEquals(FacePayException.OUT_OF_ORDER, e.code)
    }

    @Test fun bad_input_gives_clear_exceptions() {
        val f = open()
        Ready.await(f)
        val a = assertThrows(IllegalArgumentException::class.java) { f.payBlocking(0) }
        assertTrue(a.message!!.contains("amountFen"))
        assertThrows(IllegalArgumentException::class.java) { f.waitRecognitionBlocking(-1) }
        assertThrows(IllegalArgumentException::class.java) { f.surfaceChangedBlocking(1, 0, 640) }
        val unknown = assertThrows(FacePayException::class.java) { f.finishBlocking(999_999) }
        assertEquals(FacePayException.NO_SUCH_FLOW, unknown.code)
    }

    @Test fun t2_1_second_init_same_config_is_the_same_instance_different_config_throws() {
        val f = open()
        assertSame(f, FacePay.initHost(Configs.sim(), SimulatedFaceDriver(7)))
        val e = assertThrows(IllegalStateException::class.java) { FacePay.initHost(Configs.sim("other"), SimulatedFaceDriver(7)) }
        assertTrue(e.message!!.contains("different config"))
    }

    @Test fun malformed_config_names_the_field() {
        val e = assertThrows(FacePayException::class.java) {
            FacePay.initHost(Configs.sim().copy(appid = " "), SimulatedFaceDriver(1))
        }
        assertEquals(FacePayException.INVALID_CONFIG, e.code)
        assertTrue(e.message!!.contains("appid"))
        val j = assertThrows(FacePayException::class.java) {
            FacePay.initHost(Configs.sim().copy(timing = Timing(flowTimeout = java.time.Duration.ZERO)), SimulatedFaceDriver(1))
        }
        assertEquals(FacePayException.INVALID_CONFIG, j.code)
        assertEquals(null, FacePay.current())
    }

    @Test fun calls_after_close_throw_and_close_is_idempotent() {
        val f = open()
        Ready.await(f)
        f.close()
        f.close()
        assertTrue(f.isClosed)
        val e = assertThrows(IllegalStateException::class.java) { f.payBlocking(100) }
        assertTrue(e.message!!.contains("closed"))
        // A new init after close works.
        val g = open()
        assertFalse(g.isClosed)
        assertNotEquals(f, g)
    }

    @Test fun a_panicking_native_becomes_an_exception_and_the_jvm_lives_on() {
        val e = assertThrows(FacePayException::class.java) { TestNative.Debug_panic() }
        assertEquals(FacePayException.INTERNAL, e.code)
        assertFalse(e.message!!.contains("deliberate")) // the payload is not echoed
        assertEquals(42L, TestNative.Debug_echo(41))
        val f = open()
        Ready.await(f)
        assertTrue(f.payBlocking(100, null, "1234").idempotencyKey.isNotEmpty())
    }

    @Test fun bench_support_natives_answer() {
        val r = TestNative.Debug_benchRustFlow(100)
        assertEquals(2, r.size)
        assertTrue(r[0] > 0.0 && r[1] >= r[0])
        assertThrows(IllegalArgumentException::class.java) { TestNative.Debug_benchRustFlow(1) }
        val t = TestNative.Debug_benchRustThreadedFlow(100)
        assertTrue(t[0] > 0.0 && t[1] >= t[0])
    }

    @Test fun suspend_api_and_java_callbacks() {
        val f = open()
        kotlinx.coroutines.runBlocking {
            f.awaitReady()
            val p = f.pay(100, null, "1234")
            assertTrue(p.idempotencyKey.isNotEmpty())
        }
        assertTrue(f.payFuture(100, null, "1234").get().idempotencyKey.isNotEmpty())
    }
}
