package io.facepay

import java.util.concurrent.atomic.AtomicInteger

/** A well-behaved Kotlin driver: answers every call at once, recognises user `u-1`. */
open class FakeDriver(private val needExtVerify: Boolean = false) : FaceServiceDriver {
    val calls = AtomicInteger()
    val previews = AtomicInteger()
    private fun ok(vararg kv: Pair<String, Any?>): Map<String, Any?> = mapOf("return_code" to "SUCCESS", "err_code" to 0, *kv)
    override fun initWxpayface(request: Map<String, String>, callback: DriverCallback) {
        calls.incrementAndGet(); callback.response(ok())
    }
    override fun getWxpayfaceRawdata(callback: DriverCallback) = callback.response(ok("rawdata" to "raw-1"))
    override fun preloadSdkEnv(request: Map<String, String>, callback: DriverCallback) = callback.response(ok())
    override fun manualUpdateFaceDatas(request: Map<String, String>, callback: DriverCallback) = callback.response(ok())
    override fun getSdkInfo(request: Map<String, String>, callback: DriverCallback) = callback.response(
        ok("sdk_version" to "2.0", "face_feature_version" to "1", "user_info_dbcount" to 1, "user_info_total_count" to 1,
            "last_update_data_time" to System.currentTimeMillis()),
    )
    override fun setCameraPreview(request: Map<String, String>, callback: DriverCallback) {
        previews.incrementAndGet(); callback.response(ok())
    }
    override fun removeCameraView(request: Map<String, String>, callback: DriverCallback) = callback.response(ok())
    override fun startVerify(request: Map<String, String>, callback: DriverCallback) {
        callback.response(mapOf("return_code" to "FIRST_FRAME_CALLBACK"))
        callback.response(
            ok("need_ext_verify" to needExtVerify, "face_verify_id" to "fv-1", "user_info_list" to listOf("u-1"),
                "user.0.user_id" to "u-1", "user.0.out_user_id" to "out-1", "user.0.user_name" to "N",
                "user.0.status" to "FS_NORMAL"),
        )
    }
    override fun stopVerify(request: Map<String, String>, callback: DriverCallback) = callback.response(ok())
    override fun finishFaceVerify(request: Map<String, String>, callback: DriverCallback) =
        callback.response(ok("user.user_id" to "u-1", "user.out_user_id" to "out-1", "user.status" to "FS_NORMAL"))
    override fun getFacePayCredential(request: Map<String, String>, callback: DriverCallback) = callback.response(ok("face_token" to "ft-1"))
    override fun releaseWxpayface(callback: DriverCallback) = callback.response(ok())
}

/** A dead service: takes every call and never answers (OTA restart, T1.1). */
class SilentDriver : FakeDriver() {
    override fun initWxpayface(request: Map<String, String>, callback: DriverCallback) {}
}

/** A broken driver: throws from init. */
class ThrowingDriver : FakeDriver() {
    override fun initWxpayface(request: Map<String, String>, callback: DriverCallback) {
        throw IllegalStateException("vendor service not bound")
    }
}

object Configs {
    /** Short deadlines so the watchdog tests end quickly (no timed assertion depends on them). */
    val FAST_TIMING = Timing(
        callTimeout = ms(300), slowCallTimeout = ms(300), firstCallbackTimeout = ms(300),
        backoffInitial = ms(50), backoffMax = ms(100),
    )

    fun ms(v: Long): java.time.Duration = java.time.Duration.ofMillis(v)

    fun sim(deviceId: String = "sim-1") = FacePayConfig.simulator(deviceId)
    fun fast(deviceId: String = "fast-1") = FacePayConfig.simulator(deviceId).copy(timing = FAST_TIMING)
}

/** Recognition starts but never calls back (the user has not looked at the camera yet). */
class NoRecognitionDriver : FakeDriver() {
    override fun startVerify(request: Map<String, String>, callback: DriverCallback) {
        callback.response(mapOf("return_code" to "FIRST_FRAME_CALLBACK"))
    }
}

object Ready {
    /**
     * Init, then wait until the first authinfo is cached (fetched in the background right
     * after init, T3.1). A wait, not a timed assertion: it gives up only after a minute.
     */
    fun await(f: FacePay) {
        f.initBlocking()
        val deadline = System.nanoTime() + 60_000_000_000L
        while (f.refreshHealth().authinfoValidForMs == null) {
            check(System.nanoTime() < deadline) { "no authinfo after init" }
            Thread.sleep(1)
        }
    }
}
