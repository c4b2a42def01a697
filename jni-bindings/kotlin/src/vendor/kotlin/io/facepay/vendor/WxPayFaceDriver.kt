package io.facepay.vendor

// The vendor library (com.tencent.wxpayface 2.32.300) behind FaceServiceDriver. The Maven
// build compiles this folder on every run against the compile-only stubs of VENDOR-API.md §1
// (src/vendor-stubs), or against the integrator's AAR with -Dwxpayface.aar=FILE; its tests run
// over the behavioural fake of the library (src/test/java). On a device add the AAR with
// `implementation` and this source folder (android-sample shows how). A thin mapping: no
// rules live here (SPEC T2.4, T3.6, T7.10, T9 are the core's).

import android.content.Context
import android.os.Handler
import android.os.HandlerThread
import com.tencent.wxpayface.IWxPayfaceCallback
import com.tencent.wxpayface.WxPayFace
import com.tencent.wxpayface.data.UserInfo
import io.facepay.DriverCallback
import io.facepay.FaceServiceDriver
import io.facepay.PreviewBinder

/** The real vendor library behind [FaceServiceDriver] (VENDOR-API.md). */
class WxPayFaceDriver(private val context: Context) : FaceServiceDriver {
    private val face get() = WxPayFace.getInstance()

    /**
     * Every call into the library goes out on this thread: its reconnect path creates its
     * 10 s timeout handler with `new Handler()` on the calling thread, which throws on a
     * thread without a Looper (VENDOR-API §3.4), and the facepay dispatch thread has none.
     */
    private val thread = HandlerThread("facepay-wxpayface").apply { start() }
    private val handler = Handler(thread.looper)

    /**
     * Runs [block] on the library thread. The library lets some exceptions out (its preview
     * call is not wrapped, VENDOR-API §2.1): one answers the call ERROR instead of killing
     * this thread, and the message names the exception's class only (no map, no personal data).
     */
    private fun onLooper(callback: DriverCallback, block: () -> Unit) {
        handler.post {
            try {
                block()
            } catch (e: RuntimeException) {
                callback.response(mapOf("return_code" to "ERROR", "return_msg" to "wxpayface threw ${e.javaClass.name}"))
            }
        }
    }

    /**
     * The library answers on binder threads without a Looper: nothing here blocks, and the
     * answer is handed on as is (values keep their Java types; users are flattened).
     */
    private fun cb(callback: DriverCallback) = object : IWxPayfaceCallback() {
        // The library's raw `java.util.Map` (VENDOR-API §1); a null map passes on as an empty
        // one, which the core refuses by the missing `return_code`.
        override fun response(info: MutableMap<Any?, Any?>?) {
            val out = HashMap<String, Any?>()
            info?.entries?.forEach { e -> if (e.key != "user_info") out[e.key.toString()] = e.value }
            val list = info?.get("user_info_list") as? List<*>
            list?.forEachIndexed { i, u -> (u as? UserInfo)?.let { put(out, "user.$i.", it) } }
            (info?.get("user_info") as? UserInfo)?.let { put(out, "user.", it) }
            callback.response(out)
        }
    }

    private fun put(out: HashMap<String, Any?>, p: String, u: UserInfo) {
        out["${p}user_id"] = u.userId
        out["${p}out_user_id"] = u.outUserId
        out["${p}user_name"] = u.userName
        out["${p}status"] = u.status
    }

    /** A mutable raw map of String values (the library writes `aar_version` into it). */
    private fun map(request: Map<String, String>): java.util.HashMap<Any, Any> = java.util.HashMap(request)

    /**
     * T2.4: the 2-argument init unless the core passed a proxy section; that section is the
     * 3-argument map itself (the library carries it in its bind Intent's `proxy` extra).
     */
    override fun initWxpayface(request: Map<String, String>, callback: DriverCallback) = onLooper(callback) {
        if (request.isEmpty()) face.initWxpayface(context, cb(callback))
        else face.initWxpayface(context, map(request), cb(callback))
    }
    override fun getWxpayfaceRawdata(callback: DriverCallback) = onLooper(callback) { face.getWxpayfaceRawdata(cb(callback)) }
    override fun preloadSdkEnv(request: Map<String, String>, callback: DriverCallback) =
        onLooper(callback) { face.preloadSdkEnv(map(request), cb(callback)) }
    override fun manualUpdateFaceDatas(request: Map<String, String>, callback: DriverCallback) =
        onLooper(callback) { face.manualUpdateFaceDatas(map(request), cb(callback)) }
    override fun getSdkInfo(request: Map<String, String>, callback: DriverCallback) =
        onLooper(callback) { face.getSdkInfo(map(request), cb(callback)) }
    override fun setCameraPreview(request: Map<String, String>, callback: DriverCallback) = onLooper(callback) {
        val view = PreviewBinder.viewFor(request["surface_id"]?.toLong() ?: 0)
        if (view == null) {
            callback.response(mapOf("return_code" to "ERROR", "err_code" to -1))
        } else {
            val m = map(request).apply { remove("surface_id"); remove("width"); remove("height") }
            face.setCameraPreview(view, m, cb(callback))
        }
    }
    override fun removeCameraView(request: Map<String, String>, callback: DriverCallback) =
        onLooper(callback) { face.removeCameraView(map(request), cb(callback)) }
    override fun startVerify(request: Map<String, String>, callback: DriverCallback) =
        onLooper(callback) { face.startVerify(map(request), cb(callback)) }
    override fun stopVerify(request: Map<String, String>, callback: DriverCallback) =
        onLooper(callback) { face.stopVerify(map(request), cb(callback)) }
    override fun finishFaceVerify(request: Map<String, String>, callback: DriverCallback) =
        onLooper(callback) { face.finishFaceVerify(map(request), cb(callback)) }
    /** T7.10: `recog_mode` goes as an Integer, `total_fee` and `user_id` as Strings. */
    override fun getFacePayCredential(request: Map<String, String>, callback: DriverCallback) = onLooper(callback) {
        val m = map(request)
        request["recog_mode"]?.toIntOrNull()?.let { m["recog_mode"] = Integer.valueOf(it) }
        face.getFacePayCredential(m, cb(callback))
    }
    /** The library answers nothing for a release and swallows its own errors (VENDOR-API §8). */
    override fun releaseWxpayface(callback: DriverCallback) = onLooper(callback) {
        face.releaseWxpayface(context)
        callback.response(mapOf("return_code" to "SUCCESS"))
    }
}
