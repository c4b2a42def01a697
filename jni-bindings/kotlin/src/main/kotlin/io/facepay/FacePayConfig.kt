package io.facepay

import java.time.Duration
import org.json.JSONObject

/**
 * The terminal configuration (Rust `TerminalConfig`). Build it with the Kotlin DSL
 * [facePayConfig] or the Java [Builder] (`FacePayConfig.builder()…build()`); [Builder.build]
 * has the core validate every field, so a bad one throws `FacePayException(INVALID_CONFIG)`
 * naming it. [simulatedBackend] replaces the merchant backend by the in-process simulator
 * (emulators, demos, tests). [deviceCredential] is the credential `facepay backend devices add`
 * issued for this terminal (SPEC S1: every backend request is signed with it; a secret:
 * [toString] masks it, never log it); [backendCaPem] is the backend's CA, the only one HTTPS
 * trusts (S3); [allowPlainHttp] permits `http://` to a host other than loopback (a
 * TLS-terminating proxy only). The store (T3.3 authinfo cache, T7.8 outbox): [storePath] is an
 * absolute file; unset, `FacePay.init` puts it under the app's no-backup files directory;
 * [memoryStore] keeps it in memory (tests, the simulator), losing queued payments on a crash.
 */
data class FacePayConfig(
    val deviceId: String,
    val appid: String,
    val mchId: String,
    /** `mch_name` of the authed map every face-service call carries (T3.6); required. */
    val mchName: String,
    val organizationId: String,
    val backendUrl: String,
    val subAppid: String? = null,
    val subMchId: String? = null,
    val storePath: String? = null,
    val simulatedBackend: Boolean = false,
    val timing: Timing = Timing(),
    val deviceCredential: String? = null,
    val backendCaPem: String? = null,
    val allowPlainHttp: Boolean = false,
    val memoryStore: Boolean = false,
    /** T8: restart window, local hours [start, end). Null = the core's default. */
    val restartWindowHours: Pair<Int, Int>? = null,
) {
    init {
        require(!(memoryStore && storePath != null)) { "storePath: set a file path or memoryStore, not both" }
    }

    /** Never shows the device credential (S1). */
    override fun toString(): String =
        "FacePayConfig(deviceId=$deviceId, appid=$appid, mchId=$mchId, organizationId=$organizationId, " +
            "backendUrl=$backendUrl, subAppid=$subAppid, subMchId=$subMchId, storePath=$storePath, " +
            "memoryStore=$memoryStore, simulatedBackend=$simulatedBackend, timing=$timing, " +
            "deviceCredential=${if (deviceCredential == null) "null" else "***"}, " +
            "backendCaPem=${if (backendCaPem == null) "null" else "(pem)"}, allowPlainHttp=$allowPlainHttp)"

    internal fun withDefaultStore(path: String) = copy(storePath = path)

    /** The core's JSON (org.json; `store_path` unset means memory to the core). */
    internal fun toJson(): String {
        val o = JSONObject()
        o.put("device_id", deviceId)
        o.put("appid", appid)
        o.put("mch_id", mchId)
        o.put("mch_name", mchName)
        o.put("organization_id", organizationId)
        o.put("backend_url", backendUrl)
        subAppid?.let { o.put("sub_appid", it) }
        subMchId?.let { o.put("sub_mch_id", it) }
        storePath?.let { o.put("store_path", it) }
        deviceCredential?.let { o.put("device_credential", it) }
        backendCaPem?.let { o.put("backend_ca_pem", it) }
        if (allowPlainHttp) o.put("allow_plain_http", true)
        restartWindowHours?.let { o.put("restart_window", org.json.JSONArray(listOf(it.first, it.second))) }
        timing.toJson()?.let { o.put("timing", it) }
        return o.toString()
    }

    /** The Java builder (Kotlin: [facePayConfig]). */
    class Builder {
        var deviceId: String? = null
        var appid: String? = null
        var mchId: String? = null
        var mchName: String? = null
        var organizationId: String? = null
        var backendUrl: String? = null
        var subAppid: String? = null
        var subMchId: String? = null
        var storePath: String? = null
        var memoryStore: Boolean = false
        var simulatedBackend: Boolean = false
        var deviceCredential: String? = null
        var backendCaPem: String? = null
        var allowPlainHttp: Boolean = false
        var restartWindowHours: Pair<Int, Int>? = null
        var timing: Timing = Timing()

        fun deviceId(v: String) = apply { deviceId = v }
        fun appid(v: String) = apply { appid = v }
        fun mchId(v: String) = apply { mchId = v }
        fun mchName(v: String) = apply { mchName = v }
        fun organizationId(v: String) = apply { organizationId = v }
        fun backendUrl(v: String) = apply { backendUrl = v }
        fun subAppid(v: String?) = apply { subAppid = v }
        fun subMchId(v: String?) = apply { subMchId = v }
        fun storePath(v: String?) = apply { storePath = v }
        fun memoryStore(v: Boolean) = apply { memoryStore = v }
        fun simulatedBackend(v: Boolean) = apply { simulatedBackend = v }
        fun deviceCredential(v: String?) = apply { deviceCredential = v }
        fun backendCaPem(v: String?) = apply { backendCaPem = v }
        fun allowPlainHttp(v: Boolean) = apply { allowPlainHttp = v }
        fun restartWindowHours(start: Int, end: Int) = apply { restartWindowHours = Pair(start, end) }
        fun timing(v: Timing) = apply { timing = v }

        /** Kotlin DSL: `timing { callTimeout = Duration.ofMillis(500) }`. */
        fun timing(block: Timing.Builder.() -> Unit) = apply { timing = Timing.Builder().apply(block).build() }

        /** Validated by the core: a missing or bad field throws, naming it. */
        fun build(): FacePayConfig {
            fun req(name: String, v: String?): String =
                v ?: throw FacePayException(FacePayException.INVALID_CONFIG, "invalid configuration `$name`: required")
            val c = FacePayConfig(
                deviceId = req("device_id", deviceId), appid = req("appid", appid), mchId = req("mch_id", mchId),
                mchName = req("mch_name", mchName), organizationId = req("organization_id", organizationId),
                backendUrl = req("backend_url", backendUrl), subAppid = subAppid, subMchId = subMchId,
                storePath = storePath, simulatedBackend = simulatedBackend, timing = timing,
                deviceCredential = deviceCredential, backendCaPem = backendCaPem, allowPlainHttp = allowPlainHttp,
                memoryStore = memoryStore, restartWindowHours = restartWindowHours,
            )
            c.validate()
            return c
        }
    }

    /** Has the core check every field; throws `FacePayException(INVALID_CONFIG)` naming the bad one. */
    fun validate() = Native.Config_validate(toJson())

    companion object {
        @JvmStatic fun builder() = Builder()

        /** A configuration for the simulator (emulator, sample app, tests): memory store, simulated backend. */
        @JvmStatic
        @JvmOverloads
        fun simulator(deviceId: String = "sim-1"): FacePayConfig = FacePayConfig(
            deviceId = deviceId,
            appid = "wx-sim-app",
            mchId = "1900000100",
            mchName = "示例食堂",
            organizationId = "org-canteen-1",
            backendUrl = "http://backend.invalid",
            simulatedBackend = true,
            memoryStore = true,
        )
    }
}

/** Kotlin DSL: `val cfg = facePayConfig { deviceId = "t-1"; …; timing { flowTimeout = Duration.ofSeconds(30) } }`. */
fun facePayConfig(block: FacePayConfig.Builder.() -> Unit): FacePayConfig = FacePayConfig.Builder().apply(block).build()

/**
 * The engine's deadlines and periods (Rust `Timing`); null = the core's default. Typed
 * durations: the core refuses a bad one by its field name.
 */
data class Timing(
    /** T1.1: an ordinary vendor call. */
    val callTimeout: Duration? = null,
    /** Init and feature updates. */
    val slowCallTimeout: Duration? = null,
    /** T1.1: the first callback after `startVerify`. */
    val firstCallbackTimeout: Duration? = null,
    /** T7.2: the whole flow. */
    val flowTimeout: Duration? = null,
    /** T1.2: reconnect backoff. */
    val backoffInitial: Duration? = null,
    val backoffMax: Duration? = null,
    /** T4.2 */
    val featureCheckEvery: Duration? = null,
    /** T4.3 */
    val featureStaleAfter: Duration? = null,
    val authinfoDefaultTtl: Duration? = null,
    val outboxBackoffInitial: Duration? = null,
    val outboxBackoffMax: Duration? = null,
) {
    internal fun toJson(): JSONObject? {
        val o = JSONObject()
        fun put(k: String, d: Duration?) {
            if (d == null) return
            require(!d.isNegative) { "timing.$k must not be negative" }
            o.put(k, d.toMillis())
        }
        put("call_timeout_ms", callTimeout)
        put("slow_call_timeout_ms", slowCallTimeout)
        put("first_callback_timeout_ms", firstCallbackTimeout)
        put("flow_timeout_ms", flowTimeout)
        put("backoff_initial_ms", backoffInitial)
        put("backoff_max_ms", backoffMax)
        put("feature_check_every_ms", featureCheckEvery)
        put("feature_stale_after_ms", featureStaleAfter)
        put("authinfo_default_ttl_ms", authinfoDefaultTtl)
        put("outbox_backoff_initial_ms", outboxBackoffInitial)
        put("outbox_backoff_max_ms", outboxBackoffMax)
        return if (o.length() == 0) null else o
    }

    class Builder {
        var callTimeout: Duration? = null
        var slowCallTimeout: Duration? = null
        var firstCallbackTimeout: Duration? = null
        var flowTimeout: Duration? = null
        var backoffInitial: Duration? = null
        var backoffMax: Duration? = null
        var featureCheckEvery: Duration? = null
        var featureStaleAfter: Duration? = null
        var authinfoDefaultTtl: Duration? = null
        var outboxBackoffInitial: Duration? = null
        var outboxBackoffMax: Duration? = null

        fun callTimeout(d: Duration) = apply { callTimeout = d }
        fun slowCallTimeout(d: Duration) = apply { slowCallTimeout = d }
        fun firstCallbackTimeout(d: Duration) = apply { firstCallbackTimeout = d }
        fun flowTimeout(d: Duration) = apply { flowTimeout = d }
        fun backoffInitial(d: Duration) = apply { backoffInitial = d }
        fun backoffMax(d: Duration) = apply { backoffMax = d }
        fun featureCheckEvery(d: Duration) = apply { featureCheckEvery = d }
        fun featureStaleAfter(d: Duration) = apply { featureStaleAfter = d }
        fun authinfoDefaultTtl(d: Duration) = apply { authinfoDefaultTtl = d }
        fun outboxBackoffInitial(d: Duration) = apply { outboxBackoffInitial = d }
        fun outboxBackoffMax(d: Duration) = apply { outboxBackoffMax = d }

        fun build() = Timing(
            callTimeout, slowCallTimeout, firstCallbackTimeout, flowTimeout, backoffInitial, backoffMax,
            featureCheckEvery, featureStaleAfter, authinfoDefaultTtl, outboxBackoffInitial, outboxBackoffMax,
        )
    }

    companion object {
        @JvmStatic fun builder() = Builder()
    }
}
