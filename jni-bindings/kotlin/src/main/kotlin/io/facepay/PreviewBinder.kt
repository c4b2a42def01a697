package io.facepay

import android.view.SurfaceHolder
import android.view.SurfaceView

/**
 * Binds the app's ONE preview [SurfaceView] to the face service (SPEC T6): the size is passed
 * on every `surfaceChanged` and the core binds only once it stopped changing (T6.3); after
 * `surfaceDestroyed` the core unbinds and binds again when the surface comes back (T6.1); a
 * second view is refused (T6.2). Use a 3:4 view ([measure34]) so users of any height fit (T6.4).
 */
class PreviewBinder(private val facePay: FacePay) : SurfaceHolder.Callback {
    private var view: SurfaceView? = null

    /** Attaches the one preview view. Attaching another view throws (T6.2). */
    fun attach(v: SurfaceView) {
        val current = view
        check(current == null || current === v) { "one preview view for the whole app (T6.2): detach the old one first" }
        if (current === v) return
        view = v
        views[SURFACE_ID] = v
        v.holder.addCallback(this)
    }

    fun detach() {
        view?.holder?.removeCallback(this)
        view = null
        views.remove(SURFACE_ID)
    }

    override fun surfaceCreated(holder: SurfaceHolder) {
        // T6.3: the size is not final yet; surfaceChanged follows.
    }

    override fun surfaceChanged(holder: SurfaceHolder, format: Int, width: Int, height: Int) {
        if (width > 0 && height > 0) facePay.surfaceChangedBlocking(SURFACE_ID, width, height)
    }

    override fun surfaceDestroyed(holder: SurfaceHolder) {
        facePay.surfaceDestroyedBlocking()
    }

    companion object {
        const val SURFACE_ID = 1L
        private val views = java.util.concurrent.ConcurrentHashMap<Long, SurfaceView>()

        /** The view behind `surface_id` of `setCameraPreview` (for the vendor adapter). */
        @JvmStatic fun viewFor(surfaceId: Long): SurfaceView? = views[surfaceId]

        /** The largest 3:4 (width:height) box inside [maxWidth] x [maxHeight] (T6.4). */
        @JvmStatic fun measure34(maxWidth: Int, maxHeight: Int): Pair<Int, Int> {
            val w = minOf(maxWidth, maxHeight * 3 / 4)
            return Pair(w, w * 4 / 3)
        }
    }
}
