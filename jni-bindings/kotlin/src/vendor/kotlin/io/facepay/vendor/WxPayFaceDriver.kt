package io.facepay.vendor

// NOT COMPILED HERE: the vendor AAR (com.tencent.wxpayface, offline face 2.x) is not on Maven
// Central, so this folder is excluded from the Maven build (pom.xml compiles src/main only).
// On an integrator's machine add the AAR as compileOnly/implementation and this source folder
// (android-sample/build.gradle.kts shows how). Keep it a thin mapping: no rules live here.

import android.content.Context
import com.tencent.wxpayface.IWxPayfaceCallback
import com.tencent.wxpayface.WxPayFace
import com.tencent.wxpayface.data.UserInfo
import io.facepay.DriverCallback
import io.facepay.FaceServiceDriver
import io.facepay.PreviewBinder

/** The real vendor face service behind [FaceServiceDriver] (API-NOTES §1). */
class WxPayFaceDriver(private val context: Context) : FaceServiceDriver {
    private val face get() = WxPayFace.getInstance()

    private fun cb(callback: DriverCallback) = object : IWxPayfaceCallback() {
        override fun response(info: Map<*, *>?) {
            val out = HashMap<String, Any?>()
            info?.forEach { (k, v) -> if (k != "user_info_list" && k != "user_info") out[k.toString()] = v }
            (info?.get("user_info_list") as? List<*>)?.filterIsInstance<UserInfo>()?.forEachIndexed { i, u ->
                put(out, "user.$i.", u)
            }
            (info?.get("user_info") as? UserInfo)?.let { put(out, "user.", it) }
            callback.response(out)
        }
    }

    private fun put(out: HashMap<String, Any?>, p: String, u: UserInfo) {
        out["${p}user_id"] = u.userId
        out["${p}out_user_id"] = u.outUserId
        out["${p}user_name"] = u.userName
        out["${p}status"] = u.status
        out["${p}valid"] = u.isValidUser
    }

    override fun initWxpayface(request: Map<String, String>, callback: DriverCallback) =
        face.initWxpayface(context, HashMap<String, Any>(request), cb(callback))
    override fun getWxpayfaceRawdata(callback: DriverCallback) = face.getWxpayfaceRawdata(cb(callback))
    override fun preloadSdkEnv(callback: DriverCallback) = face.preloadSdkEnv(HashMap(), cb(callback))
    override fun manualUpdateFaceDatas(callback: DriverCallback) = face.manualUpdateFaceDatas(HashMap(), cb(callback))
    override fun getSdkInfo(callback: DriverCallback) = face.getSdkInfo(HashMap(), cb(callback))
    override fun setCameraPreview(request: Map<String, String>, callback: DriverCallback) {
        val view = PreviewBinder.viewFor(request["surface_id"]?.toLong() ?: 0)
            ?: return callback.response(mapOf("return_code" to "ERROR", "err_code" to -1))
        face.setCameraPreview(view, HashMap<String, Any>(request), cb(callback))
    }
    override fun removeCameraView(callback: DriverCallback) = face.removeCameraView(HashMap(), cb(callback))
    override fun startVerify(request: Map<String, String>, callback: DriverCallback) =
        face.startVerify(HashMap<String, Any>(request), cb(callback))
    override fun stopVerify(callback: DriverCallback) = face.stopVerify(HashMap(), cb(callback))
    override fun finishFaceVerify(request: Map<String, String>, callback: DriverCallback) =
        face.finishFaceVerify(HashMap<String, Any>(request), cb(callback))
    override fun getFacePayCredential(request: Map<String, String>, callback: DriverCallback) =
        face.getFacePayCredential(HashMap<String, Any>(request), cb(callback))
    override fun releaseWxpayface(callback: DriverCallback) {
        // "Service not registered" may be thrown on release (API-NOTES §1): answer ERROR.
        try {
            face.releaseWxpayface(context)
            callback.response(mapOf("return_code" to "SUCCESS", "err_code" to 0))
        } catch (e: IllegalArgumentException) {
            callback.response(mapOf("return_code" to "ERROR", "err_code" to -1))
        }
    }
}
