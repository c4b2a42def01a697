package io.facepay

/**
 * The vendor face service (`com.tencent.wxpayface` 2.32.300, VENDOR-API.md) as the Rust core
 * drives it. Requests hold exactly the library's keys (SPEC T2.4, T3.6, T7.10): the init
 * request only the proxy section (empty: the 2-argument init), every call after rawdata the
 * authed map (`appid`, `mch_id`, `mch_name`, `sub_appid`?, `sub_mch_id`?, `organization_id`,
 * `authinfo`), `getFacePayCredential` also `user_id`, `recog_mode` ("0"/"1": the adapter
 * passes an Integer) and `total_fee` (fen). Each call answers through its [DriverCallback]
 * like the vendor's `IWxPayfaceCallback.response(Map)`, values keeping their Java types:
 * `return_code` String, `err_code` Integer, `need_ext_verify` Boolean, `user_info_list` the
 * list itself, with its users flattened as `user.<i>.user_id`, `user.<i>.out_user_id`,
 * `user.<i>.user_name`, `user.<i>.status` (Strings; `finishFaceVerify`: `user.user_id`, …).
 * A driver that never answers is declared dead by the core's watchdog (T1.1); one that
 * throws answers ERROR; a second answer for one call (the library's timeout FAIL, then the
 * real one, T9) counts nothing. Calls arrive on one facepay dispatch thread; answers may
 * come from any thread.
 */
interface FaceServiceDriver {
    fun initWxpayface(request: Map<String, String>, callback: DriverCallback)
    fun getWxpayfaceRawdata(callback: DriverCallback)
    fun preloadSdkEnv(request: Map<String, String>, callback: DriverCallback)
    fun manualUpdateFaceDatas(request: Map<String, String>, callback: DriverCallback)
    fun getSdkInfo(request: Map<String, String>, callback: DriverCallback)
    /** The request holds the authed map and `surface_id` (see [PreviewBinder.viewFor]), `width`, `height`. */
    fun setCameraPreview(request: Map<String, String>, callback: DriverCallback)
    fun removeCameraView(request: Map<String, String>, callback: DriverCallback)
    fun startVerify(request: Map<String, String>, callback: DriverCallback)
    fun stopVerify(request: Map<String, String>, callback: DriverCallback)
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
            2 -> driver.preloadSdkEnv(req, cb)
            3 -> driver.manualUpdateFaceDatas(req, cb)
            4 -> driver.getSdkInfo(req, cb)
            5 -> driver.setCameraPreview(req, cb)
            6 -> driver.removeCameraView(req, cb)
            7 -> driver.startVerify(req, cb)
            8 -> driver.stopVerify(req, cb)
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
            flat.add(tag(v))
        }
        Native.Driver_answer(h, id, op, flat.toTypedArray())
    }

    /** A value with its Java type, so the core refuses an ill-typed key by name (never a panic). */
    private fun tag(v: Any?): String = when (v) {
        null -> "n:"
        is String -> "s:$v"
        is Int, is Long, is Short, is Byte -> "i:$v"
        is Boolean -> "b:$v"
        is Float, is Double -> "f:$v"
        is List<*> -> "l:${v.size}"
        else -> "o:$v"
    }
}
