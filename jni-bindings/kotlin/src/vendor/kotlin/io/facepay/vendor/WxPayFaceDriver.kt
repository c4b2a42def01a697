package io.facepay.vendor

// NOT COMPILED HERE YET: the vendor AAR (com.tencent.wxpayface 2.32.300) is not on Maven
// Central and the compile-only stubs of VENDOR-API.md §1 are not written yet, so this folder
// is excluded from the Maven build (pom.xml compiles src/main only). On an integrator's
// machine add the AAR with `implementation` and this source folder (android-sample shows how).
// A thin mapping: no rules live here (SPEC T2.4, T3.6, T7.10, T9 are the core's).

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

    private fun onLooper(block: () -> Unit) {
        handler.post(block)
    }

    /**
     * The library answers on binder threads without a Looper: nothing here blocks, and the
     * answer is handed on as is (values keep their Java types; users are flattened).
     */
    private fun cb(callback: DriverCallback) = object : IWxPayfaceCallback() {
        override fun response(info: java.util.Map<*, *>?) {
            val out = HashMap<String, Any?>()
            info?.entrySet()?.forEach { e -> if (e.key != "user_info") out[e.key.toString()] = e.value }
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

    /** T2.4: the 2-argument init unless the core passed a proxy section. */
    override fun initWxpayface(request: Map<String, String>, callback: DriverCallback) = onLooper {
        if (request.isEmpty()) face.initWxpayface(context, cb(callback))
        else face.initWxpayface(context, java.util.HashMap<Any, Any>(mapOf("proxy" to java.util.HashMap(request))), cb(callback))
    }
    override fun getWxpayfaceRawdata(callback: DriverCallback) = onLooper { face.getWxpayfaceRawdata(cb(callback)) }
    override fun preloadSdkEnv(request: Map<String, String>, callback: DriverCallback) =
        onLooper { face.preloadSdkEnv(map(request), cb(callback)) }
    override fun manualUpdateFaceDatas(request: Map<String, String>, callback: DriverCallback) =
        onLooper { face.manualUpdateFaceDatas(map(request), cb(callback)) }
    override fun getSdkInfo(request: Map<String, String>, callback: DriverCallback) =
        onLooper { face.getSdkInfo(map(request), cb(callback)) }
    override fun setCameraPreview(request: Map<String, String>, callback: DriverCallback) = onLooper {
        val view = PreviewBinder.viewFor(request["surface_id"]?.toLong() ?: 0)
        if (view == null) {
            callback.response(mapOf("return_code" to "ERROR", "err_code" to -1))
        } else {
            val m = map(request).apply { remove("surface_id"); remove("width"); remove("height") }
            face.setCameraPreview(view, m, cb(callback))
        }
    }
    override fun removeCameraView(request: Map<String, String>, callback: DriverCallback) =
        onLooper { face.removeCameraView(map(request), cb(callback)) }
    override fun startVerify(request: Map<String, String>, callback: DriverCallback) =
        onLooper { face.startVerify(map(request), cb(callback)) }
    override fun stopVerify(request: Map<String, String>, callback: DriverCallback) =
        onLooper { face.stopVerify(map(request), cb(callback)) }
    override fun finishFaceVerify(request: Map<String, String>, callback: DriverCallback) =
        onLooper { face.finishFaceVerify(map(request), cb(callback)) }
    /** T7.10: `recog_mode` is an Integer, `total_fee` and `user_id` Strings. */
    override fun getFacePayCredential(request: Map<String, String>, callback: DriverCallback) = onLooper {
        val m = map(request)
        m["recog_mode"] = Integer.valueOf(request["recog_mode"]?.toIntOrNull() ?: 0)
        face.getFacePayCredential(m, cb(callback))
    }
    override fun releaseWxpayface(callback: DriverCallback) = onLooper {
        // "Service not registered" may be thrown on release: answer ERROR.
        try {
            face.releaseWxpayface(context)
            callback.response(mapOf("return_code" to "SUCCESS"))
        } catch (e: IllegalArgumentException) {
            callback.response(mapOf("return_code" to "ERROR", "err_code" to -1))
        }
    }
}
