package io.facepay

import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger

/**
 * A [FakeDriver] a test steers: [silentChecks] `getSdkInfo` calls go unanswered (a service that
 * died: the watchdog declares it lost, T1.1, and the engine reconnects, T1.2); while
 * [holdRecognition] holds, `startVerify` gives its first frame and never recognises (the user
 * has not looked yet); [credentialCalls] counts `getFacePayCredential`; [lastUpdateMs] is the
 * feature library's last update as `getSdkInfo` reports it (T4.3).
 */
class ScriptedDriver : FakeDriver() {
    val silentChecks = AtomicInteger()
    val holdRecognition = AtomicBoolean(false)
    val credentialCalls = AtomicInteger()
    @Volatile var verifyStarted = CountDownLatch(1)
    /** `last_update_data_time` that `getSdkInfo` reports (null: now). */
    @Volatile var lastUpdateMs: Long? = null

    override fun getSdkInfo(request: Map<String, String>, callback: DriverCallback) {
        if (silentChecks.getAndUpdate { if (it > 0) it - 1 else 0 } > 0) return
        val at = lastUpdateMs ?: return super.getSdkInfo(request, callback)
        callback.response(
            mapOf("return_code" to "SUCCESS", "err_code" to 0, "sdk_version" to "2.0", "face_feature_version" to "1",
                "user_info_dbcount" to 1, "user_info_total_count" to 1, "last_update_data_time" to at),
        )
    }

    override fun startVerify(request: Map<String, String>, callback: DriverCallback) {
        if (holdRecognition.get()) {
            callback.response(mapOf("return_code" to "FIRST_FRAME_CALLBACK"))
            verifyStarted.countDown()
            return
        }
        super.startVerify(request, callback)
    }

    override fun getFacePayCredential(request: Map<String, String>, callback: DriverCallback) {
        credentialCalls.incrementAndGet()
        super.getFacePayCredential(request, callback)
    }
}

object Waits {
    /** Waits (no timed assertion: gives up only after a minute) until [cond] holds. */
    fun until(what: String, cond: () -> Boolean) {
        val deadline = System.nanoTime() + 60_000_000_000L
        while (!cond()) {
            check(System.nanoTime() < deadline) { "never happened: $what" }
            Thread.sleep(2)
        }
    }
}
