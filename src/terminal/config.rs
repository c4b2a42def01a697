//! Terminal engine configuration, with defaults that apply SPEC and validation that names
//! the offending field. Durations are milliseconds on the wire (JSON from Kotlin or a file).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{check_field, check_positive, MAX_FIELD_LEN};
use crate::error::{Error, Result, Secret};
use crate::store::StorePath;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TerminalConfig {
    pub device_id: String,
    pub appid: String,
    pub mch_id: String,
    /// `mch_name` of the authed map (T3.6): the merchant's name as the face service shows it.
    pub mch_name: String,
    pub sub_appid: Option<String>,
    pub sub_mch_id: Option<String>,
    pub organization_id: String,
    /// The 3-argument init's `proxy` section (T2.4, VENDOR-API §2): `ip`, `port`, `user`,
    /// `passwd`, `proxy_type`, `tcp_port`, `perform_mode`. `None` = the 2-argument init.
    pub proxy: Option<std::collections::BTreeMap<String, String>>,
    /// SQLite file for the authinfo cache and the payment outbox; `None` = memory only.
    pub store_path: Option<String>,
    /// Base URL of the merchant backend (terminal ↔ backend protocol).
    pub backend_url: String,
    /// The credential from `facepay backend devices add` (S1); every request is signed
    /// with it. A secret: never logged, never printed.
    pub device_credential: Option<Secret>,
    /// PEM of the backend's CA or certificate: HTTPS trusts it and nothing else (S3).
    pub backend_ca_pem: Option<String>,
    /// Plain HTTP to a host other than loopback (behind a TLS-terminating proxy only).
    pub allow_plain_http: bool,
    pub timing: Timing,
    /// T8 restart window, local time: start hour (inclusive) and end hour (exclusive).
    pub restart_window: (u8, u8),
    /// Offset of local time from UTC in minutes (China: +480).
    pub utc_offset_minutes: i32,
}

/// Every deadline and period of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// Deadline of an ordinary vendor call (T1.1).
    pub call_timeout_ms: u64,
    /// Deadline of init and feature updates (slower by nature).
    pub slow_call_timeout_ms: u64,
    /// After `startVerify`, the first callback (first frame or a result) must come within this (T1.1).
    pub first_callback_timeout_ms: u64,
    /// Overall flow timeout chosen by the app (T7.2).
    pub flow_timeout_ms: u64,
    /// Reconnect backoff: first delay and cap (T1.2).
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Period of the SDK's own feature check and service heartbeat (T4.2).
    pub feature_check_every_ms: u64,
    /// `FeaturesStale` when the last update is older than this (T4.3).
    pub feature_stale_after_ms: u64,
    /// TTL when the backend gives none (B3); refresh-ahead fraction below (T3.2).
    pub authinfo_default_ttl_ms: u64,
    /// Refresh authinfo once this share (percent) of its life has passed, and at most every hour.
    pub authinfo_refresh_at_percent: u8,
    /// Outbox delivery backoff: first delay and cap.
    pub outbox_backoff_initial_ms: u64,
    pub outbox_backoff_max_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            call_timeout_ms: 5_000,
            slow_call_timeout_ms: 15_000,
            first_callback_timeout_ms: 5_000,
            flow_timeout_ms: 40_000,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            feature_check_every_ms: 60_000,
            feature_stale_after_ms: 10 * 60_000,
            authinfo_default_ttl_ms: 3_600_000,
            authinfo_refresh_at_percent: 50,
            outbox_backoff_initial_ms: 1_000,
            outbox_backoff_max_ms: 60_000,
        }
    }
}

impl Timing {
    pub fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}

impl Default for TerminalConfig {
    fn default() -> Self {
        TerminalConfig {
            device_id: String::new(),
            appid: String::new(),
            mch_id: String::new(),
            mch_name: String::new(),
            sub_appid: None,
            sub_mch_id: None,
            organization_id: String::new(),
            proxy: None,
            store_path: None,
            backend_url: String::new(),
            device_credential: None,
            backend_ca_pem: None,
            allow_plain_http: false,
            timing: Timing::default(),
            restart_window: (1, 3),
            utc_offset_minutes: 480,
        }
    }
}

impl TerminalConfig {
    pub fn from_json(s: &str) -> Result<Self> {
        let c: TerminalConfig =
            serde_json::from_str(s).map_err(|e| Error::invalid_config("config", format!("malformed JSON: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    /// Every field checked; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        check_field("device_id", &self.device_id)?;
        check_field("appid", &self.appid)?;
        check_field("mch_id", &self.mch_id)?;
        // T3.6: every call after rawdata carries mch_name and the organisation.
        check_field("mch_name", &self.mch_name)?;
        check_field("organization_id", &self.organization_id)?;
        for (k, v) in self.proxy.iter().flatten() {
            const PROXY_KEYS: [&str; 7] = ["ip", "port", "user", "passwd", "proxy_type", "tcp_port", "perform_mode"];
            if !PROXY_KEYS.contains(&k.as_str()) {
                // T2.4: the init map is proxy configuration only; merchant ids never go there.
                return Err(Error::invalid_config(
                    "proxy",
                    "only ip, port, user, passwd, proxy_type, tcp_port and perform_mode",
                ));
            }
            if v.len() > MAX_FIELD_LEN || v.chars().any(char::is_control) {
                return Err(Error::invalid_config("proxy", "a value is too long or has control characters"));
            }
        }
        if let Some(v) = &self.sub_appid {
            check_field("sub_appid", v)?;
        }
        if let Some(v) = &self.sub_mch_id {
            check_field("sub_mch_id", v)?;
        }
        if let Some(p) = &self.store_path {
            check_field("store_path", p)?;
            // T3.3, T7.8: the outbox must land where the app expects it; an Android
            // process's working directory is `/`, so a relative path is a trap.
            if !std::path::Path::new(p).is_absolute() {
                return Err(Error::invalid_config(
                    "store_path",
                    "must be an absolute path (the working directory of an app process is /)",
                ));
            }
        }
        check_field("backend_url", &self.backend_url)?;
        if !(self.backend_url.starts_with("http://") || self.backend_url.starts_with("https://")) {
            return Err(Error::invalid_config("backend_url", "must start with http:// or https://"));
        }
        if reqwest::Url::parse(&self.backend_url).map_or(true, |u| u.host_str().is_none_or(str::is_empty)) {
            return Err(Error::invalid_config("backend_url", "must be a URL with a host"));
        }
        if let Some(c) = &self.device_credential {
            if !crate::wire::auth::is_credential(c.expose()) {
                return Err(Error::invalid_config("device_credential", "not a credential from `devices add`"));
            }
        }
        if let Some(p) = &self.backend_ca_pem {
            if !p.contains("-----BEGIN CERTIFICATE-----") {
                return Err(Error::invalid_config("backend_ca_pem", "must be a PEM certificate"));
            }
        }
        if !self.mch_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid_config("mch_id", "must be the merchant's numeric id"));
        }
        if self.sub_mch_id.as_deref().is_some_and(|v| !v.bytes().all(|b| b.is_ascii_digit())) {
            return Err(Error::invalid_config("sub_mch_id", "must be a numeric merchant id"));
        }
        let t = &self.timing;
        for (f, v) in [
            ("timing.call_timeout_ms", t.call_timeout_ms),
            ("timing.slow_call_timeout_ms", t.slow_call_timeout_ms),
            ("timing.first_callback_timeout_ms", t.first_callback_timeout_ms),
            ("timing.flow_timeout_ms", t.flow_timeout_ms),
            ("timing.backoff_initial_ms", t.backoff_initial_ms),
            ("timing.backoff_max_ms", t.backoff_max_ms),
            ("timing.feature_check_every_ms", t.feature_check_every_ms),
            ("timing.feature_stale_after_ms", t.feature_stale_after_ms),
            ("timing.authinfo_default_ttl_ms", t.authinfo_default_ttl_ms),
            ("timing.outbox_backoff_initial_ms", t.outbox_backoff_initial_ms),
            ("timing.outbox_backoff_max_ms", t.outbox_backoff_max_ms),
        ] {
            check_positive(f, v)?;
        }
        if t.backoff_max_ms < t.backoff_initial_ms {
            return Err(Error::invalid_config("timing.backoff_max_ms", "smaller than backoff_initial_ms"));
        }
        if !(1..=90).contains(&t.authinfo_refresh_at_percent) {
            return Err(Error::invalid_config("timing.authinfo_refresh_at_percent", "must be within 1..=90"));
        }
        let (a, b) = self.restart_window;
        if a >= 24 || b > 24 || a == b {
            return Err(Error::invalid_config("restart_window", "hours must be within 0..24 and differ"));
        }
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err(Error::invalid_config("utc_offset_minutes", "must be within -720..=840"));
        }
        Ok(())
    }

    pub fn store(&self) -> StorePath {
        match &self.store_path {
            Some(p) => StorePath::File(p.into()),
            None => StorePath::Memory,
        }
    }

    /// A valid configuration for tests, the demo and benchmarks.
    pub fn example(device_id: &str, backend_url: &str) -> Self {
        TerminalConfig {
            device_id: device_id.into(),
            appid: "wx2421b1c4370ec43b".into(),
            mch_id: "1900000100".into(),
            mch_name: "示例食堂".into(),
            organization_id: "org-canteen-1".into(),
            backend_url: backend_url.into(),
            ..TerminalConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_is_valid_and_bad_values_name_the_field() {
        let ok = TerminalConfig::example("dev-1", "http://127.0.0.1:1");
        ok.validate().expect("valid");
        let mut c = ok.clone();
        c.device_id = " ".into();
        assert!(c.validate().unwrap_err().to_string().contains("device_id"));
        let mut c = ok.clone();
        c.mch_id = "x".repeat(MAX_FIELD_LEN + 1);
        assert!(c.validate().unwrap_err().to_string().contains("mch_id"));
        let mut c = ok.clone();
        c.timing.flow_timeout_ms = 0;
        assert!(c.validate().unwrap_err().to_string().contains("flow_timeout_ms"));
        let mut c = ok.clone();
        c.mch_name = String::new();
        assert!(c.validate().unwrap_err().to_string().contains("mch_name"), "T3.6: mch_name is required");
        let mut c = ok.clone();
        c.organization_id = String::new();
        assert!(c.validate().unwrap_err().to_string().contains("organization_id"));
        let mut c = ok.clone();
        c.proxy = Some([("mch_id".to_string(), "1900000100".to_string())].into());
        assert!(c.validate().unwrap_err().to_string().contains("proxy"), "T2.4: no merchant ids in the init map");
        let mut c = ok.clone();
        c.mch_id = "abc".into();
        assert!(c.validate().unwrap_err().to_string().contains("mch_id"));
        let mut c = ok.clone();
        c.backend_url = "http://".into();
        assert!(c.validate().unwrap_err().to_string().contains("backend_url"));
        let mut c = ok.clone();
        c.store_path = Some("facepay/terminal.db".into());
        assert!(c.validate().unwrap_err().to_string().contains("store_path"), "a relative store path is refused");
        let mut c = ok.clone();
        c.device_credential = Some(crate::error::Secret::new("guessable"));
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("device_credential") && !e.contains("guessable"), "{e}");
        let e = TerminalConfig::from_json("{\"nope\":1}").unwrap_err();
        assert_eq!(e.code(), crate::error::ErrorCode::InvalidConfig);
    }
}
