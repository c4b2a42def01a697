package io.facepay

/**
 * The vendor face service (`com.tencent.wxpayface`, API-NOTES §1) as the Rust core drives it.
 * Each call answers through its [DriverCallback] exactly like the vendor's
 * `IWxPayfaceCallback.response(Map)`: `return_code` (`SUCCESS`/`ERROR`/`FAIL`, or
 * `FIRST_FRAME_CALLBACK` for `startVerify` progress), `err_code`, and the op's keys. Users are
 * flattened as `user.<i>.user_id`, `user.<i>.out_user_id`, `user.<i>.user_name`,
 * `user.<i>.status`, `user.<i>.valid` (`finishFaceVerify`: `user.user_id`, …). A driver that
 * never answers is declared dead by the core's watchdog (T1.1); one that throws answers ERROR.
 * Calls arrive on one facepay dispatch thread; answers may come from any thread.
 */
interface FaceServiceDriver {
    fun initWxpayface(request: Map<String, String>, callback: DriverCallback)
    fun getWxpayfaceRawdata(callback: DriverCallback)
    fun preloadSdkEnv(callback: DriverCallback)
    fun manualUpdateFaceDatas(callback: DriverCallback)
    fun getSdkInfo(callback: DriverCallback)
    /** The request holds `surface_id` (see [PreviewBinder.viewFor]), `width`, `height`. */
    fun setCameraPreview(request: Map<String, String>, callback: DriverCallback)
    fun removeCameraView(callback: DriverCallback)
    fun startVerify(request: Map<String, String>, callback: DriverCallback)
    fun stopVerify(callback: DriverCallback)
    fun finishFaceVerify(request: Map<String, String>, callback: DriverCallback)
    fun getFacePayCredential(request: Map<String, String>, callback: DriverCallback)
    fun releaseWxpayface(callback: DriverCallback)
}

/** The vendor callback: one map per answer. */
fun interface DriverCallback {
    fun response(result: Map<String, Any?>)
}

/** Rust calls [dispatch] on its dispatch thread; answers go back through `Native.Driver_answer`. */
@CalledFromNative
internal class DriverBridge(private val driver: FaceServiceDriver) {
    @Volatile internal var handle: Long = 0

    @CalledFromNative
    fun dispatch(op: Int, id: Long, kv: Array<String>) {
        val req = HashMap<String, String>(kv.size)
        var i = 0
        while (i + 1 < kv.size) {
            req[kv[i]] = kv[i + 1]
            i += 2
        }
        val cb = DriverCallback { result -> answer(id, op, result) }
        when (op) {
            0 -> driver.initWxpayface(req, cb)
            1 -> driver.getWxpayfaceRawdata(cb)
            2 -> driver.preloadSdkEnv(cb)
            3 -> driver.manualUpdateFaceDatas(cb)
            4 -> driver.getSdkInfo(cb)
            5 -> driver.setCameraPreview(req, cb)
            6 -> driver.removeCameraView(cb)
            7 -> driver.startVerify(req, cb)
            8 -> driver.stopVerify(cb)
            9 -> driver.finishFaceVerify(req, cb)
            10 -> driver.getFacePayCredential(req, cb)
            11 -> driver.releaseWxpayface(cb)
            else -> throw IllegalArgumentException("unknown face service operation $op")
        }
    }

    private fun answer(id: Long, op: Int, result: Map<String, Any?>) {
        val h = handle
        if (h == 0L) return // closed: late answers are dropped
        val flat = ArrayList<String?>(result.size * 2)
        for ((k, v) in result) {
            flat.add(k)
            flat.add(v?.toString())
        }
        Native.Driver_answer(h, id, op, flat.toTypedArray())
    }
}
