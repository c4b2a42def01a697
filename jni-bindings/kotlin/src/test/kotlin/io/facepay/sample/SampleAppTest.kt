package io.facepay.sample

import android.os.Looper
import android.view.SurfaceHolder
import io.facepay.FacePay
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNotSame
import org.junit.Assert.assertSame
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.annotation.ConscryptMode

/**
 * The sample app under Robolectric: the real `Application#onCreate` initialises the real Rust
 * core through JNI (T2), the activity comes up with its SurfaceView, and payments run end to
 * end with the simulator.
 */
@RunWith(RobolectricTestRunner::class)
@Config(application = SampleApp::class, sdk = [34])
// Conscrypt's own native code trips -Xcheck:jni; this build fails on any JNI warning.
@ConscryptMode(ConscryptMode.Mode.OFF)
class SampleAppTest {
    @After fun tearDown() {
        FacePay.current()?.close()
    }

    /** Waits (no timed assertion: gives up only after a minute) until [cond] holds. */
    private fun waitFor(what: String, cond: () -> Boolean) {
        val deadline = System.nanoTime() + 60_000_000_000L
        while (!cond()) {
            check(System.nanoTime() < deadline) { "never happened: $what" }
            Thread.sleep(2)
        }
    }

    /** Runs the main looper (the activity's coroutines) until [a] has an outcome. */
    private fun nextOutcome(a: MainActivity): String {
        waitFor("an outcome") {
            shadowOf(Looper.getMainLooper()).idle()
            a.outcomes.isNotEmpty()
        }
        return a.outcomes.take()
    }

    private fun surfaceUp(a: MainActivity, width: Int = 480, height: Int = 640) {
        val holder: SurfaceHolder = shadowOf(a.preview).fakeSurfaceHolder
        for (cb in shadowOf(a.preview).fakeSurfaceHolder.callbacks.toList()) {
            cb.surfaceCreated(holder)
            cb.surfaceChanged(holder, 0, width, height)
        }
    }

    private fun surfaceDown(a: MainActivity) {
        val holder: SurfaceHolder = shadowOf(a.preview).fakeSurfaceHolder
        for (cb in shadowOf(a.preview).fakeSurfaceHolder.callbacks.toList()) cb.surfaceDestroyed(holder)
    }

    @Test fun t2_t7_sample_app_starts_the_core_and_pays_end_to_end() {
        val app = RuntimeEnvironment.getApplication() as SampleApp
        val fp = FacePay.current()
        assertNotNull("Application#onCreate initialised FacePay", fp)
        assertSame(app.facePay, fp)
        assertEquals(app, FacePay.applicationContext())

        val a = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        surfaceUp(a)
        waitFor("preview bound") { fp!!.refreshHealth().previewBound }
        waitFor("authinfo cached") { fp!!.refreshHealth().authinfoValidForMs != null }

        a.amount.setText("100")
        a.phone.setText("1234")
        a.payButton.performClick()
        val outcome = nextOutcome(a)
        waitFor("status shows the outcome and Ready") {
            shadowOf(Looper.getMainLooper()).idle()
            a.status.text.contains("last outcome: paid") && a.status.text.contains("service: Ready")
        }
        assertEquals("paid", outcome)
        assertTrue(a.status.text.toString(), a.status.text.contains("last outcome: paid"))
        assertTrue(a.status.text.toString(), a.status.text.contains("service: Ready"))
    }

    @Test fun t6_1_surface_destroyed_and_recreated_is_rebound() {
        val fp = FacePay.current()!!
        val a = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        assertEquals(a.preview.width * 4, a.preview.height * 3) // T6.4: 3:4
        surfaceUp(a)
        waitFor("preview bound") { fp.refreshHealth().previewBound }
        surfaceDown(a)
        waitFor("preview unbound after the surface was destroyed") { !fp.refreshHealth().previewBound }
        surfaceUp(a)
        waitFor("preview bound again after the surface was recreated") { fp.refreshHealth().previewBound }
        shadowOf(Looper.getMainLooper()).idle()
        waitFor("the pushed health reaches the status panel") {
            shadowOf(Looper.getMainLooper()).idle()
            a.status.text.contains("preview bound: true")
        }
        assertTrue(a.status.text.contains("preview bound: true"))
        assertEquals("no main-thread callback blocked on a native call", 0, FacePay.mainThreadBlockingCalls.get())
    }

    /**
     * A rotation in the middle of a payment: the old activity's surface goes, the activity is
     * destroyed (its scope cancels the payment's coroutine: the SDK stops the flow, T7.7, unless it
     * had already finished) and recreated. The new activity binds its own preview (T6.1) and its
     * payment runs at once: no flow was left running into a "flow busy". (The sample's simulator
     * answers within microseconds, so its flow has often finished by the rotation; FlowCancelTest
     * proves the stop of a flow held mid-recognition.)
     */
    @Test fun t6_1_t7_7_rotation_mid_flow_rebinds_the_preview_and_leaves_no_flow_running() {
        val fp = FacePay.current()!!
        val controller = Robolectric.buildActivity(MainActivity::class.java).setup()
        val a = controller.get()
        surfaceUp(a)
        waitFor("preview bound") { fp.refreshHealth().previewBound }
        waitFor("authinfo cached") { fp.refreshHealth().authinfoValidForMs != null }
        a.amount.setText("100")
        a.phone.setText("1234")
        a.payButton.performClick()
        shadowOf(Looper.getMainLooper()).idle() // the payment's coroutine starts and waits on the SDK
        surfaceDown(a)
        controller.recreate()
        val b = controller.get()
        assertNotSame(a, b)
        // The old activity's payment ended: cancelled by the rotation, or paid if the flow finished
        // before it (the simulator answers within microseconds).
        val old = nextOutcome(a)
        assertTrue(old, old == "cancelled" || old == "paid")
        surfaceUp(b)
        waitFor("the new activity's preview is bound") { fp.refreshHealth().previewBound }
        b.amount.setText("100")
        b.phone.setText("1234")
        b.payButton.performClick()
        assertEquals("paid", nextOutcome(b))
        assertTrue(fp.refreshHealth().previewBound)
        assertEquals("no main-thread callback blocked on a native call", 0, FacePay.mainThreadBlockingCalls.get())
    }

    @Test fun empty_amount_is_refused_in_the_ui() {
        val a = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        a.amount.setText("")
        a.payButton.performClick()
        assertEquals("enter an amount in fen", nextOutcome(a))
    }
}
