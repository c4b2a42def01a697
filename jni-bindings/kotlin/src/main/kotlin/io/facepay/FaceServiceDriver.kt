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

/**
 * Rust calls [dispatch] on its dispatch thread; answers go back through `Native.Driver_answer`.
 * An answer (from any thread: a vendor binder thread) and [close] exclude each other, so a late
 * answer never touches a freed driver handle: it is dropped once [close] began.
 */
@CalledFromNative
internal class DriverBridge(private val driver: FaceServiceDriver) {
    private val lock = java.util.concurrent.locks.ReentrantReadWriteLock()
    private var handle: Long = 0

    fun open() {
        handle = Native.Driver_create(this)
    }

    fun handleForCreate(): Long = lock.readLock().let { it.lock(); try { handle } finally { it.unlock() } }

    /** Frees the driver handle once no answer is in flight; idempotent. */
    fun close() {
        val w = lock.writeLock()
        w.lock()
        try {
            val h = handle
            handle = 0
            if (h != 0L) Native.Driver_close(h)
        } finally {
            w.unlock()
        }
    }

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
            OP_INIT -> driver.initWxpayface(req, cb)
            OP_RAW_DATA -> driver.getWxpayfaceRawdata(cb)
            OP_PRELOAD -> driver.preloadSdkEnv(req, cb)
            OP_UPDATE_FEATURES -> driver.manualUpdateFaceDatas(req, cb)
            OP_SDK_INFO -> driver.getSdkInfo(req, cb)
            OP_SET_PREVIEW -> driver.setCameraPreview(req, cb)
            OP_REMOVE_PREVIEW -> driver.removeCameraView(req, cb)
            OP_START_VERIFY -> driver.startVerify(req, cb)
            OP_STOP_VERIFY -> driver.stopVerify(req, cb)
            OP_FINISH -> driver.finishFaceVerify(req, cb)
            OP_CREDENTIAL -> driver.getFacePayCredential(req, cb)
            OP_RELEASE -> driver.releaseWxpayface(cb)
            else -> throw IllegalArgumentException("unknown face service operation $op")
        }
    }

    private fun answer(id: Long, op: Int, result: Map<String, Any?>) {
        val flat = ArrayList<String?>(result.size * 2)
        for ((k, v) in result) {
            flat.add(k)
            flat.add(tag(v))
        }
        val arr = flat.toTypedArray()
        val r = lock.readLock()
        r.lock()
        try {
            val h = handle
            if (h == 0L) return // closed: late answers are dropped
            Native.Driver_answer(h, id, op, arr)
        } finally {
            r.unlock()
        }
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

    companion object {
        /** The Rust `Op` numbers (compared with Rust's by `SchemaTest`). */
        const val OP_INIT = 0
        const val OP_RAW_DATA = 1
        const val OP_PRELOAD = 2
        const val OP_UPDATE_FEATURES = 3
        const val OP_SDK_INFO = 4
        const val OP_SET_PREVIEW = 5
        const val OP_REMOVE_PREVIEW = 6
        const val OP_START_VERIFY = 7
        const val OP_STOP_VERIFY = 8
        const val OP_FINISH = 9
        const val OP_CREDENTIAL = 10
        const val OP_RELEASE = 11

        /** By Rust `Op` variant name. */
        val OPS: Map<String, Int> = linkedMapOf(
            "Init" to OP_INIT, "RawData" to OP_RAW_DATA, "Preload" to OP_PRELOAD, "UpdateFeatures" to OP_UPDATE_FEATURES,
            "SdkInfo" to OP_SDK_INFO, "SetPreview" to OP_SET_PREVIEW, "RemovePreview" to OP_REMOVE_PREVIEW,
            "StartVerify" to OP_START_VERIFY, "StopVerify" to OP_STOP_VERIFY, "Finish" to OP_FINISH,
            "Credential" to OP_CREDENTIAL, "Release" to OP_RELEASE,
        )
    }
}
