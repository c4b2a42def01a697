package io.facepay.vendor

import android.content.Intent
import android.content.pm.ResolveInfo
import android.content.pm.ServiceInfo
import android.view.SurfaceView
import com.tencent.wxpayface.FakeFaceService
import io.facepay.FacePay
import io.facepay.FacePayConfig
import io.facepay.FacePayException
import io.facepay.PreviewBinder
import io.facepay.ServiceState
import io.facepay.Timing
import java.time.Duration
import java.util.concurrent.Executors
import java.util.concurrent.Future
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.annotation.ConscryptMode

/**
 * `FacePay` driving [WxPayFaceDriver] over the behavioural fake of the vendor library
 * (`com.tencent.wxpayface` in src/test/java, VENDOR-API §2–§8), the way a terminal runs it:
 * pay flows with the authed map on every call (T3.6) and the credential's typed keys (T7.10),
 * auxiliary verification, a user not `FS_NORMAL`, service restarts between and during flows,
 * and the library's timeout FAIL followed by a late answer (T9). The library's 10 s timeout
 * runs on the fake's manual clock ([FakeFaceService.advance]); the engine's own deadlines are
 * real but the tests only wait for outcomes (giving up after a minute), never time them.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [34])
@ConscryptMode(ConscryptMode.Mode.OFF)
class WxPayFaceDriverTest {
    private lateinit var fake: FakeFaceService
    private var fp: FacePay? = null
    private val pool = Executors.newCachedThreadPool()

    @Before fun setUp() {
        fake = FakeFaceService.reset()
        // The face service the library binds by intent action (VENDOR-API §3.1); without a
        // match the bind silently never happens.
        val ri = ResolveInfo().apply {
            serviceInfo = ServiceInfo().apply {
                packageName = "com.tencent.wxpayface"
                name = "com.tencent.wxpayface.FaceService"
            }
        }
        shadowOf(RuntimeEnvironment.getApplication().packageManager)
            .addResolveInfoForIntent(Intent("com.tencent.faceservice"), ri)
    }

    @After fun tearDown() {
        fp?.close()
        pool.shutdownNow()
    }

    private fun config(timing: Timing = TIMING) = FacePayConfig.simulator("wx-1").copy(timing = timing)

    private fun open(timing: Timing = TIMING): FacePay {
        val app = RuntimeEnvironment.getApplication()
        return FacePay.init(app, config(timing), WxPayFaceDriver(app)).also { fp = it }
    }

    /** Waits (no timed assertion: gives up only after a minute) until [cond] holds. */
    private fun waitFor(what: String, cond: () -> Boolean) {
        val deadline = System.nanoTime() + 60_000_000_000L
        while (!cond()) {
            check(System.nanoTime() < deadline) { "never happened: $what; the fake saw: ${fake.events.toList().takeLast(40)}" }
            Thread.sleep(2)
        }
    }

    private fun ready(f: FacePay) {
        f.initBlocking()
        waitFor("ready with features") { f.refreshHealth().let { it.state == ServiceState.READY && it.featuresReady } }
    }

    /** Pays, retrying while the engine is still finding out about a restart. */
    private fun payEventually(f: FacePay, phone: String? = null): io.facepay.Paid {
        var last: Throwable? = null
        val deadline = System.nanoTime() + 60_000_000_000L
        while (System.nanoTime() < deadline) {
            try {
                return f.payBlocking(100, null, phone)
            } catch (e: FacePayException) {
                last = e
                Thread.sleep(5)
            }
        }
        throw AssertionError("no payment within a minute; the fake saw: ${fake.events.toList().takeLast(40)}", last)
    }

    private fun assertNoMisuse() {
        assertEquals("calls without authinfo", 0, fake.callsWithoutAuthinfo.get())
        assertEquals("organisation mismatches", 0, fake.orgMismatches.get())
        assertEquals("app calls overwritten in the pending slot", 0, fake.appCallOverwrites.get())
        assertEquals("vendor order violations", 0, fake.orderViolations.get())
        assertEquals("answers on a Looper thread", 0, fake.answersOnLooperThreads.get())
    }

    @Test fun t3_6_t7_10_a_pay_flow_carries_the_authed_map_and_the_typed_credential_keys() {
        val f = open()
        ready(f)
        assertEquals("the init callback", 1, fake.appInitAnswers.get())
        // T3.6's order: rawdata, then preload and the feature update with the authed map.
        assertEquals(1, fake.calls("getWxpayfaceRawdata"))
        assertTrue(fake.calls("preloadSdkEnv") >= 1)
        assertTrue(fake.calls("manualUpdateFaceDatas") >= 1)
        val paid = f.payBlocking(100)
        assertEquals("u-1", paid.userId)
        assertEquals(1, fake.credentials.get())
        val cred = fake.lastMaps.getValue("getFacePayCredential")
        assertEquals(Integer.valueOf(0), cred["recog_mode"]) // an Integer, not "0"
        assertEquals("100", cred["total_fee"])
        assertEquals("u-1", cred["user_id"])
        assertEquals("org-canteen-1", cred["organization_id"])
        assertTrue((cred["authinfo"] as String).isNotEmpty())
        assertEquals("示例食堂", cred["mch_name"])
        assertNull("no invented keys", fake.lastMaps.getValue("finishFaceVerify")["user_id"])
        assertNoMisuse()
    }

    @Test fun t7_6_t7_10_auxiliary_verification_sends_the_phone_and_recog_mode_1() {
        fake.user = FakeFaceService.User("u-2", "out-2", "FS_NORMAL", true, "1234")
        val f = open()
        ready(f)
        // Without the phone the flow cannot finish (T7.6) and no credential is asked for.
        val e = assertThrows(FacePayException::class.java) { f.payBlocking(100) }
        assertEquals(FacePayException.FLOW_CANCELLED, e.code)
        assertEquals(0, fake.calls("getFacePayCredential"))
        val paid = f.payBlocking(250, null, "1234")
        assertEquals("u-2", paid.userId)
        assertEquals("1234", fake.lastMaps.getValue("finishFaceVerify")["user_phone"])
        val cred = fake.lastMaps.getValue("getFacePayCredential")
        assertEquals(Integer.valueOf(1), cred["recog_mode"])
        assertEquals("250", cred["total_fee"])
        assertEquals(1, fake.credentials.get())
        assertNoMisuse()
    }

    @Test fun t7_10_a_user_not_fs_normal_gets_no_credential() {
        fake.user = FakeFaceService.User("u-3", "out-3", "FS_FROZEN", false, null)
        val f = open()
        ready(f)
        val e = assertThrows(FacePayException::class.java) { f.payBlocking(100) }
        assertEquals(FacePayException.VENDOR, e.code)
        assertEquals("no credential asked for", 0, fake.calls("getFacePayCredential"))
        assertEquals(0, fake.credentials.get())
        assertEquals(0, fake.refusedCredentials.get())
        assertNoMisuse()
    }

    @Test fun t9_a_restart_between_flows_is_found_without_the_init_callback_and_the_sequence_runs_again() {
        val f = open()
        ready(f)
        f.payBlocking(100)
        assertEquals(1, fake.credentials.get())
        val preloads = fake.calls("preloadSdkEnv")
        fake.kill()
        fake.start() // back at once: the library re-initialises it with its own no-op callback
        waitFor("the library's own init") { fake.libraryInits.get() == 1 }
        payEventually(f)
        assertEquals(2, fake.credentials.get())
        assertEquals("the init callback is never called again", 1, fake.appInitAnswers.get())
        assertTrue("the engine preloaded again", fake.calls("preloadSdkEnv") > preloads)
        assertTrue(f.refreshHealth().reconnects >= 1)
        assertNoMisuse()
    }

    @Test fun t1_2_t9_a_restart_during_a_flow_ends_it_clearly_and_the_next_flow_pays() {
        fake.recognise = false // the customer has not looked at the camera yet
        val f = open()
        ready(f)
        val flow = f.startFlowBlocking(100)
        val rec: Future<*> = pool.submit { f.waitRecognitionBlocking(flow) }
        waitFor("startFaceVerify reached the service") { fake.calls("startFaceVerify") == 1 }
        fake.kill()
        val e = assertThrows(java.util.concurrent.ExecutionException::class.java) { rec.get() }
        val code = (e.cause as FacePayException).code
        assertTrue("code $code", code == FacePayException.SERVICE_DISCONNECTED || code == FacePayException.CALL_TIMEOUT)
        fake.recognise = true
        fake.start()
        payEventually(f)
        assertEquals(1, fake.credentials.get())
        assertNoMisuse()
    }

    @Test fun t9_a_timeout_fail_then_the_late_answer_counts_once() {
        // The harder case for the engine: the replayed call's late answer is a SUCCESS.
        fake.refuseBeforeSequence = false
        val f = open(SLOW_ENGINE_TIMING)
        ready(f)
        fake.kill() // arms the library's 10 s timeout (on this thread's Looper)
        fake.advance(2_001) // the library's own re-preload takes the slot
        // The engine's periodic check (T4.2) finds the service gone: its getSdkInfo waits in
        // the slot (the engine's own deadline is a minute away).
        waitFor("the engine's check waits in the slot") { fake.pendingName() == "getSdkInfo" }
        fake.advance(8_000) // 10 s after the disconnect: FAIL 621, the call kept
        assertEquals(1, fake.timeoutFails.get())
        waitFor("the engine saw the FAIL") { f.refreshHealth().state != ServiceState.READY }
        fake.start() // the slot is replayed: its real answer follows the FAIL
        waitFor("the late answer") { fake.lateAnswers.get() == 1 }
        payEventually(f)
        assertEquals(1, fake.credentials.get())
        assertTrue(f.refreshHealth().reconnects >= 1)
        assertNoMisuse()
    }

    @Test fun t9_a_flow_answered_fail_by_the_library_timeout_ends_once_and_gets_no_credential() {
        val f = open(SLOW_ENGINE_TIMING)
        ready(f)
        fake.kill()
        fake.advance(2_001)
        val pay = pool.submit<io.facepay.Paid> { f.payBlocking(100) }
        waitFor("the flow's call waits in the slot") {
            fake.pendingName().let { it != null && it != "preloadSdkEnv" && it != "getSdkInfo" }
        }
        fake.advance(8_000)
        assertEquals(1, fake.timeoutFails.get())
        val e = assertThrows(java.util.concurrent.ExecutionException::class.java) { pay.get() }
        assertTrue(e.cause is FacePayException)
        fake.start()
        payEventually(f)
        assertEquals("one credential, for the second flow", 1, fake.credentials.get())
        assertNoMisuse()
    }

    @Test fun t6_t9_repeated_preview_answers_count_nothing_twice() {
        val f = open()
        ready(f)
        val view = SurfaceView(RuntimeEnvironment.getApplication())
        val binder = PreviewBinder(f)
        binder.attach(view)
        val holder = shadowOf(view).fakeSurfaceHolder
        for (cb in holder.callbacks.toList()) cb.surfaceChanged(holder, 0, 480, 640)
        waitFor("the preview bound") { fake.previewAnswers.get() >= 1 }
        // The library registers its own holder callback after its first send (VENDOR-API §7.1).
        waitFor("the library's holder callback") { holder.callbacks.size >= 2 }
        // The library answers again on every surfaceChanged (VENDOR-API §7.3).
        for (cb in holder.callbacks.toList()) cb.surfaceChanged(holder, 0, 480, 640)
        waitFor("a second preview answer") { fake.previewAnswers.get() >= 2 }
        val preview = fake.lastMaps.getValue("setCameraPreview")
        assertTrue(preview.containsKey("callback_surface"))
        assertNull("the adapter's own key stays out", preview["surface_id"])
        assertEquals("u-1", f.payBlocking(100).userId)
        assertEquals(1, fake.credentials.get())
        binder.detach()
        assertNoMisuse()
    }

    companion object {
        /**
         * Engine deadlines short enough that a lost service is found within seconds, long
         * enough that a loaded machine's first Robolectric call is never taken for one (the
         * library's own timeout is on the fake clock).
         */
        val TIMING = Timing(
            callTimeout = Duration.ofMillis(3000),
            slowCallTimeout = Duration.ofMillis(10000),
            firstCallbackTimeout = Duration.ofMillis(3000),
            backoffInitial = Duration.ofMillis(20),
            backoffMax = Duration.ofMillis(50),
            featureCheckEvery = Duration.ofMillis(100),
        )

        /** Engine deadlines far beyond the library's 10 s (virtual) timeout, so its FAIL comes first. */
        val SLOW_ENGINE_TIMING = Timing(
            callTimeout = Duration.ofMillis(60000),
            slowCallTimeout = Duration.ofMillis(60000),
            firstCallbackTimeout = Duration.ofMillis(60000),
            backoffInitial = Duration.ofMillis(20),
            backoffMax = Duration.ofMillis(50),
            featureCheckEvery = Duration.ofMillis(200),
        )
    }
}
