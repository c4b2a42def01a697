package io.facepay

/**
 * The terminal configuration (Rust `TerminalConfig`; the core validates every field and names
 * the bad one). [simulatedBackend] replaces the merchant backend by the in-process simulator
 * (emulators, demos, tests). [timingJson] optionally overrides deadlines (`{"call_timeout_ms": 500}`).
 * [deviceCredential] is the credential `facepay backend devices add` issued for this terminal
 * (SPEC S1: every backend request is signed with it; a secret: [toString] masks it, never log it);
 * [backendCaPem] is the backend's CA or certificate, the only one HTTPS trusts (S3);
 * [allowPlainHttp] permits `http://` to a host other than loopback (a TLS-terminating proxy only).
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
    val timingJson: String? = null,
    val deviceCredential: String? = null,
    val backendCaPem: String? = null,
    val allowPlainHttp: Boolean = false,
) {
    /** Never shows the device credential (S1). */
    override fun toString(): String =
        "FacePayConfig(deviceId=$deviceId, appid=$appid, mchId=$mchId, organizationId=$organizationId, " +
            "backendUrl=$backendUrl, subAppid=$subAppid, subMchId=$subMchId, storePath=$storePath, " +
            "simulatedBackend=$simulatedBackend, timingJson=$timingJson, " +
            "deviceCredential=${if (deviceCredential == null) "null" else "***"}, " +
            "backendCaPem=${if (backendCaPem == null) "null" else "(pem)"}, allowPlainHttp=$allowPlainHttp)"

    internal fun toJson(): String {
        val sb = StringBuilder("{")
        fun field(k: String, v: String?) {
            if (v == null) return
            if (sb.length > 1) sb.append(',')
            sb.append('"').append(k).append("\":").append(quote(v))
        }
        field("device_id", deviceId)
        field("appid", appid)
        field("mch_id", mchId)
        field("mch_name", mchName)
        field("organization_id", organizationId)
        field("backend_url", backendUrl)
        field("sub_appid", subAppid)
        field("sub_mch_id", subMchId)
        field("store_path", storePath)
        field("device_credential", deviceCredential)
        field("backend_ca_pem", backendCaPem)
        if (allowPlainHttp) sb.append(",\"allow_plain_http\":true")
        if (timingJson != null) sb.append(",\"timing\":").append(timingJson)
        return sb.append('}').toString()
    }

    companion object {
        /** A configuration for the simulator (emulator, sample app, tests). */
        @JvmStatic
        fun simulator(deviceId: String = "sim-1"): FacePayConfig = FacePayConfig(
            deviceId = deviceId,
            appid = "wx-sim-app",
            mchId = "1900000100",
            mchName = "示例食堂",
            organizationId = "org-canteen-1",
            backendUrl = "http://backend.invalid",
            simulatedBackend = true,
        )

        private fun quote(s: String): String {
            val sb = StringBuilder("\"")
            for (c in s) {
                when {
                    c == '"' -> sb.append("\\\"")
                    c == '\\' -> sb.append("\\\\")
                    c < ' ' -> sb.append(String.format("\\u%04x", c.code))
                    else -> sb.append(c)
                }
            }
            return sb.append('"').toString()
        }
    }
}

/** A health snapshot (Rust `Health`), for the status panel. */
data class Health(
    val state: String,
    val featuresReady: Boolean,
    val featuresStale: Boolean,
    val lastFeatureUpdateUnixMs: Long?,
    val authinfoValidForMs: Long?,
    val disconnects: Long,
    val reconnects: Long,
    val initCalls: Long,
    val previewBound: Boolean,
    val flowRunning: Boolean,
    val lastOutcome: String?,
    val paymentsQueued: Long,
) {
    companion object {
        val UNKNOWN = Health("Uninitialised", false, false, null, null, 0, 0, 0, false, false, null, 0)

        internal fun parse(kv: Array<String>): Health {
            val m = HashMap<String, String>()
            var i = 0
            while (i + 1 < kv.size) {
                m[kv[i]] = kv[i + 1]
                i += 2
            }
            fun l(k: String) = m[k]?.takeIf { it.isNotEmpty() }?.toLong()
            fun b(k: String) = m[k] == "true"
            return Health(
                state = m["state"] ?: "Uninitialised",
                featuresReady = b("features_ready"),
                featuresStale = b("features_stale"),
                lastFeatureUpdateUnixMs = l("last_feature_update_unix_ms"),
                authinfoValidForMs = l("authinfo_valid_for_ms"),
                disconnects = l("disconnects") ?: 0,
                reconnects = l("reconnects") ?: 0,
                initCalls = l("init_calls") ?: 0,
                previewBound = b("preview_bound"),
                flowRunning = b("flow_running"),
                lastOutcome = m["last_outcome"]?.takeIf { it.isNotEmpty() },
                paymentsQueued = l("payments_queued") ?: 0,
            )
        }
    }
}

/** A payment whose credential is safely in the outbox (T7.8). */
data class Paid(val flowId: Long, val idempotencyKey: String, val userId: String)

/** The recognition callback's result (T7): the user and whether auxiliary verification is needed (T7.6). */
data class Recognition(val userId: String, val outUserId: String, val needExtVerify: Boolean)

/** Java-friendly completion callback. */
interface ResultCallback<T> {
    fun onSuccess(value: T)
    fun onError(error: Throwable)
}
