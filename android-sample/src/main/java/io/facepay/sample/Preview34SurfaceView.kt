package io.facepay.sample

import android.content.Context
import android.view.SurfaceView
import io.facepay.PreviewBinder

/** The one preview view (T6.2), always 3:4 width:height (T6.4). */
class Preview34SurfaceView(context: Context) : SurfaceView(context) {
    override fun onMeasure(widthMeasureSpec: Int, heightMeasureSpec: Int) {
        val w = MeasureSpec.getSize(widthMeasureSpec).takeIf { it > 0 } ?: 480
        val h = MeasureSpec.getSize(heightMeasureSpec).takeIf { it > 0 } ?: 640
        val (bw, bh) = PreviewBinder.measure34(w, h)
        setMeasuredDimension(bw, bh)
    }
}
