package io.facepay

import android.util.Log
import android.view.SurfaceHolder
import android.view.SurfaceView
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong

/**
 * Binds the app's ONE preview [SurfaceView] to the face service (SPEC T6): the size is passed
 * on every `surfaceChanged` and the core binds only once it stopped changing (T6.3); after
 * `surfaceDestroyed` the core unbinds and binds again when the surface comes back (T6.1); a
 * second view is refused (T6.2). Use a 3:4 view ([measure34]) so users of any height fit (T6.4).
 * Every attached view gets its own surface id; a callback of a view no longer attached (the old
 * activity's `surfaceDestroyed` after a rotation) is ignored. The `SurfaceHolder` callbacks run
 * on the main thread and never block on a native call: they hand the change to the engine
 * (`…Future`) and return; no exception escapes into the framework (it is logged, code only).
 */
class PreviewBinder(private val facePay: FacePay) {
    private var view: SurfaceView? = null
    private var callback: HolderCallback? = null

    /** The surface id of the attached view, or 0. */
    @Volatile var surfaceId: Long = 0
        private set

    /** Attaches the one preview view. Attaching another view throws (T6.2). */
    fun attach(v: SurfaceView) {
        val current = view
        check(current == null || current === v) { "one preview view for the whole app (T6.2): detach the old one first" }
        if (current === v) return
        val id = nextId.incrementAndGet()
        view = v
        surfaceId = id
        views[id] = v
        val cb = HolderCallback(id)
        callback = cb
        v.holder.addCallback(cb)
    }

    fun detach() {
        val v = view ?: return
        callback?.let { v.holder.removeCallback(it) }
        views.remove(surfaceId)
        view = null
        callback = null
        surfaceId = 0
    }

    private inner class HolderCallback(private val id: Long) : SurfaceHolder.Callback {
        private fun current() = surfaceId == id

        override fun surfaceCreated(holder: SurfaceHolder) {
            // T6.3: the size is not final yet; surfaceChanged follows.
        }

        override fun surfaceChanged(holder: SurfaceHolder, format: Int, width: Int, height: Int) {
            if (!current() || width <= 0 || height <= 0) return
            guarded("surfaceChanged") { facePay.surfaceChangedFuture(id, width, height) }
        }

        override fun surfaceDestroyed(holder: SurfaceHolder) {
            if (!current()) return // a stale view's destroy: the current one is bound
            guarded("surfaceDestroyed") { facePay.surfaceDestroyedFuture() }
        }
    }

    private fun guarded(what: String, start: () -> java.util.concurrent.CompletableFuture<Unit>) {
        try {
            start().whenComplete { _, e -> if (e != null) logFailure(what, e) }
        } catch (e: Exception) {
            logFailure(what, e)
        }
    }

    private fun logFailure(what: String, e: Throwable) {
        val code = (e as? FacePayException ?: e.cause as? FacePayException)?.code
        try {
            Log.w("facepay", "preview $what failed: ${code ?: e.javaClass.simpleName}")
        } catch (t: Throwable) {
            // A host JVM without the Android log.
        }
    }

    companion object {
        private val nextId = AtomicLong()
        private val views = ConcurrentHashMap<Long, SurfaceView>()

        /** The view behind `surface_id` of `setCameraPreview` (for the vendor adapter). */
        @JvmStatic fun viewFor(surfaceId: Long): SurfaceView? = views[surfaceId]

        /** The largest 3:4 (width:height) box inside [maxWidth] x [maxHeight] (T6.4). */
        @JvmStatic fun measure34(maxWidth: Int, maxHeight: Int): Pair<Int, Int> {
            val w = minOf(maxWidth, maxHeight * 3 / 4)
            return Pair(w, w * 4 / 3)
        }
    }
}
