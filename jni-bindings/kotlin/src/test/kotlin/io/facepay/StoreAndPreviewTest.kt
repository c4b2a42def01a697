package io.facepay

import android.app.Application
import android.os.Looper
import android.view.SurfaceView
import java.io.File
import java.nio.file.Files
import java.nio.file.attribute.PosixFilePermission
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertSame
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.annotation.ConscryptMode

/**
 * Under Robolectric (a real Android `Context`, the main looper): `FacePay.init` with no store
 * path keeps the store in the app's no-backup files directory, owner-only, and a payment queued
 * there while the backend was down survives a `close()` (standing in for a crash) and is
 * delivered after a new `init` (SPEC T3.3, T7.8). The preview binder's main-thread callbacks
 * never block on a native call, give each view its own surface id and ignore a stale view (T6).
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [34])
// Conscrypt's own native code trips -Xcheck:jni; this build fails on any JNI warning.
@ConscryptMode(ConscryptMode.Mode.OFF)
class StoreAndPreviewTest {
    private val app: Application get() = RuntimeEnvironment.getApplication()

    @After fun tearDown() {
        FacePay.current()?.close()
        TestNative.Debug_setSimBackendErrorRate(0.0)
    }

    /** The simulator config with the default (file) store: no path, not memory. */
    private fun fileConfig(id: String) = FacePayConfig.simulator(id).copy(memoryStore = false)

    /** Ready and the authinfo cached, waiting on the worker thread (the test thread is the main looper's). */
    private fun ready(f: FacePay) {
        val t = Thread { Ready.await(f) }
        t.start()
        t.join()
    }

    @Test fun t3_3_t7_8_the_default_store_is_owner_only_in_no_backup_and_a_queued_payment_survives() {
        val db = File(File(app.noBackupFilesDir, "facepay"), "terminal.db")
        // 1. A normal start: the store is created, the authinfo cached in it (T3.3).
        val a = FacePay.init(app, fileConfig("store-1"), SimulatedFaceDriver(3))
        assertEquals(db.absolutePath, a.config.storePath)
        ready(a)
        a.close()
        assertTrue("store file at ${db.path}", db.isFile)
        assertEquals(setOf(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE), Files.getPosixFilePermissions(db.toPath()))

        // 2. The backend is down: the payment's credential waits in the outbox (T7.8); then "crash".
        TestNative.Debug_setSimBackendErrorRate(1.0)
        val b = FacePay.init(app, fileConfig("store-1"), SimulatedFaceDriver(3))
        ready(b) // from the cached authinfo: the backend is not needed to start
        var paid: Paid? = null
        Thread { paid = b.payBlocking(100, null, "1234") }.apply { start(); join() }
        val key = paid!!.idempotencyKey
        Waits.until("the payment is queued") { b.refreshHealth().paymentsQueued >= 1 }
        assertEquals(0L, b.refreshHealth().paymentsFinal.values.sum())
        b.close()

        // 3. A new init with the backend back: the queued payment is delivered.
        TestNative.Debug_setSimBackendErrorRate(0.0)
        val c = FacePay.init(app, fileConfig("store-1"), SimulatedFaceDriver(3))
        val fin = runBlocking {
            withTimeout(60_000) { c.events.first { it is FacePayEvent.PaymentFinal && it.idempotencyKey == key } }
        } as FacePayEvent.PaymentFinal
        assertEquals(PaymentState.PAID, fin.state)
    }

    @Test fun a_relative_store_path_is_refused_naming_the_field() {
        val e = runCatching { FacePay.init(app, fileConfig("rel-1").copy(storePath = "facepay/t.db"), SimulatedFaceDriver(1)) }
            .exceptionOrNull()
        assertTrue("$e", e is FacePayException && e.code == FacePayException.INVALID_CONFIG && e.message!!.contains("store_path"))
        assertNull(FacePay.current())
    }

    @Test fun t6_binder_callbacks_never_block_and_stale_views_are_ignored() {
        val d = ScriptedDriver()
        val f = FacePay.init(app, FacePayConfig.simulator("binder-1"), d)
        ready(f)
        val before = FacePay.mainThreadBlockingCalls.get()
        val binder = PreviewBinder(f)
        val v1 = SurfaceView(app)
        binder.attach(v1)
        val id1 = binder.surfaceId
        assertSame(v1, PreviewBinder.viewFor(id1))
        val h1 = shadowOf(v1).fakeSurfaceHolder
        val cbs1 = h1.callbacks.toList()
        // The main looper's thread runs the callbacks, as the framework does.
        assertSame(Looper.getMainLooper().thread, Thread.currentThread())
        for (cb in cbs1) {
            cb.surfaceCreated(h1)
            cb.surfaceChanged(h1, 0, 480, 640)
        }
        Waits.until("preview bound") { f.refreshHealth().previewBound }

        // Rotation: the old view goes, a new one comes with its own id; the old view's late destroy is ignored.
        binder.detach()
        val v2 = SurfaceView(app)
        binder.attach(v2)
        val id2 = binder.surfaceId
        assertNotEquals(id1, id2)
        for (cb in cbs1) cb.surfaceDestroyed(h1)
        val h2 = shadowOf(v2).fakeSurfaceHolder
        for (cb in h2.callbacks.toList()) cb.surfaceChanged(h2, 0, 480, 640)
        assertTrue("still bound: the stale destroy was ignored", f.refreshHealth().previewBound)
        // A destroy of the current view unbinds (T6.1).
        for (cb in h2.callbacks.toList()) cb.surfaceDestroyed(h2)
        Waits.until("unbound after the current view's destroy") { !f.refreshHealth().previewBound }
        assertEquals("no main-thread callback blocked on a native call", before, FacePay.mainThreadBlockingCalls.get())

        // A call failing in a callback (a closed SDK) never escapes into the framework.
        f.close()
        for (cb in h2.callbacks.toList()) cb.surfaceChanged(h2, 0, 480, 640)
    }
}
