//! The reference backend's configuration file (JSON, documented in
//! `docs/merchant-backend.md`): merchant key path and serial, mch ids, base URL and the
//! backup domain (B0), the platform key mode (public-key id + PEM, certificates + APIv3
//! key, or both at once during a migration: B0), the APIv3 key that decrypts
//! notifications (B7) and their path, the organisations owned by the merchant (T3.5, B3),
//! the deduction's defaults (`device_ip`, `sub_appid`, `goods_tag`), the DB path. Loading
//! builds the client and fails with a clear error naming the field (missing key file, bad
//! key, bad mch_id, no organisation) — never with key material in it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::{PlatformMode, WechatPayClient};
use super::engine::DeductionParams;
use super::sign::{MerchantSigner, PlatformKeys};
use super::MerchantError;
use crate::error::Secret;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum PlatformConfig {
    PublicKey {
        public_key_id: String,
        public_key_file: PathBuf,
        /// Decrypts notifications (B7); not needed to pay.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        apiv3_key: Option<Secret>,
    },
    Certificates {
        apiv3_key: Secret,
    },
    /// B0: a merchant moving from certificates to the public key holds both; requests
    /// name the public key, answers signed with either verify.
    Both {
        public_key_id: String,
        public_key_file: PathBuf,
        apiv3_key: Secret,
    },
}

impl PlatformConfig {
    /// The APIv3 key, when configured (certificates and notifications need it).
    pub fn apiv3_key(&self) -> Option<&Secret> {
        match self {
            PlatformConfig::PublicKey { apiv3_key, .. } => apiv3_key.as_ref(),
            PlatformConfig::Certificates { apiv3_key } | PlatformConfig::Both { apiv3_key, .. } => Some(apiv3_key),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendConfig {
    /// The service provider merchant id (`sp_mchid`, signs every call).
    pub mch_id: String,
    pub sub_mchid: String,
    pub sp_appid: String,
    pub merchant_serial_no: String,
    pub merchant_key_file: PathBuf,
    pub platform: PlatformConfig,
    #[serde(default = "default_base")]
    pub base_url: String,
    /// B0: tried when a connection to `base_url` cannot be opened. Default: the backup
    /// domain `api2.mch.weixin.qq.com` when `base_url` is the official one, else none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_base_url: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Organisations created by this merchant; any other is a T3.5 mismatch.
    pub organizations: Vec<String>,
    pub db_path: PathBuf,
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_ttl")]
    pub authinfo_ttl_s: u64,
    /// Milliseconds slept per second of B5 back-off (1000 = real time; tests use less).
    #[serde(default = "default_scale")]
    pub retry_delay_ms_per_s: u64,
    #[serde(default = "default_product")]
    pub business_product_id: u32,
    #[serde(default = "default_scene")]
    pub business_scene_id: u32,
    /// `scene_info.device_ip` of deductions not submitted by a terminal over the network
    /// (`backend deduct`); `backend serve` sends the terminal's address as it connected.
    #[serde(default = "default_device_ip")]
    pub device_ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_appid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_tag: Option<String>,
    /// T3.5: also accept an organisation not listed in `organizations` when WeChat Pay's
    /// organisations query knows it under this merchant (cached for an hour). Off by
    /// default: the configured list alone decides and WeChat Pay is never asked.
    #[serde(default)]
    pub query_organizations: bool,
    /// Where `backend serve` receives WeChat Pay notifications (B7).
    #[serde(default = "default_notify_path")]
    pub notify_path: String,
    /// The terminal link: TLS, limits, device amount default (S1–S3).
    #[serde(default)]
    pub link: super::link_config::LinkConfig,
}

fn default_device_ip() -> String {
    "127.0.0.1".into()
}
fn default_notify_path() -> String {
    "/facepay/v1/wechatpay/notify".into()
}

fn default_base() -> String {
    "https://api.mch.weixin.qq.com".into()
}
fn default_timeout() -> u64 {
    5000
}
fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_ttl() -> u64 {
    3600
}
fn default_scale() -> u64 {
    1000
}
fn default_product() -> u32 {
    2
}
fn default_scene() -> u32 {
    3
}

impl BackendConfig {
    pub fn load(path: &Path) -> Result<Self, MerchantError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| MerchantError::Config(format!("cannot read config {}: {e}", path.display())))?;
        let c: BackendConfig = serde_json::from_str(&text)
            .map_err(|e| MerchantError::Config(format!("config {}: {e}", path.display())))?;
        c.validate()?;
        Ok(c)
    }

    /// Values that parse but cannot work, refused at start naming the field (S3, and
    /// careless configurations that would fail every request).
    fn validate_values(&self) -> Result<(), MerchantError> {
        let bad = |f: &str, why: &str| Err(MerchantError::Config(format!("{f}: {why}")));
        match reqwest::Url::parse(&self.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => return bad("base_url", "must be an http(s) URL with a host"),
        }
        if self.timeout_ms == 0 {
            return bad("timeout_ms", "must be greater than 0");
        }
        if self.authinfo_ttl_s == 0 {
            return bad("authinfo_ttl_s", "must be greater than 0");
        }
        let text_ok = |v: &str| crate::config::check_field("value", v).is_ok();
        for (f, v) in
            [("merchant_serial_no", &self.merchant_serial_no), ("sp_appid", &self.sp_appid), ("listen", &self.listen)]
        {
            if !text_ok(v) {
                return bad(f, "must be non-empty, at most 256 bytes, without control characters");
            }
        }
        if self.merchant_key_file.as_os_str().is_empty() {
            return bad("merchant_key_file", "must not be empty");
        }
        if self.db_path.as_os_str().is_empty() {
            return bad("db_path", "must not be empty");
        }
        if !self.organizations.iter().all(|o| text_ok(o)) {
            return bad("organizations", "every organisation id must be non-empty, without control characters");
        }
        self.link.validate()
    }

    pub fn validate(&self) -> Result<(), MerchantError> {
        for (name, id) in [("mch_id", &self.mch_id), ("sub_mchid", &self.sub_mchid)] {
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
                return Err(MerchantError::Config(format!("{name} must be the merchant's numeric id")));
            }
        }
        if self.organizations.is_empty() {
            return Err(MerchantError::Config(
                "organizations: list the organisation ids created by this merchant (T3.5)".into(),
            ));
        }
        if let Some(k) = self.platform.apiv3_key() {
            if k.expose().len() != 32 {
                return Err(MerchantError::Config("platform.apiv3_key must be 32 bytes".into()));
            }
        }
        if self.device_ip.parse::<std::net::IpAddr>().is_err() {
            return Err(MerchantError::Config("device_ip must be an IP address".into()));
        }
        if !self.notify_path.starts_with('/') || self.notify_path.starts_with("/facepay/v1/payments") {
            return Err(MerchantError::Config("notify_path must be a path of its own starting with /".into()));
        }
        self.validate_values()
    }

    /// T3.5: an organisation of another merchant is a configuration error, not a retry.
    pub fn check_organization(&self, org: &str) -> Result<(), MerchantError> {
        if self.organizations.iter().any(|o| o == org) {
            Ok(())
        } else {
            Err(MerchantError::Mismatch(format!("organization {org} does not belong to mch_id {}", self.mch_id)))
        }
    }

    pub fn client(&self) -> Result<WechatPayClient, MerchantError> {
        let pem = std::fs::read_to_string(&self.merchant_key_file).map_err(|e| {
            MerchantError::Config(format!("merchant_key_file {}: {e}", self.merchant_key_file.display()))
        })?;
        let signer = MerchantSigner::from_pem(&self.mch_id, &self.merchant_serial_no, &pem)?;
        let keys = PlatformKeys::new();
        let load_public = |id: &str, file: &Path| -> Result<(), MerchantError> {
            if !id.starts_with(super::sign::PUBLIC_KEY_ID_PREFIX) {
                return Err(MerchantError::Config("platform.public_key_id must start with PUB_KEY_ID_".into()));
            }
            let pem = std::fs::read_to_string(file).map_err(|e| {
                MerchantError::Config(format!("platform.public_key_file {}: {}", file.display(), e.kind()))
            })?;
            // Names the field, never the file's content.
            keys.insert_pem(id, &pem).map_err(|_| {
                MerchantError::Config(format!("platform.public_key_file {}: not an RSA PUBLIC KEY PEM", file.display()))
            })
        };
        let certificates = |k: &Secret| PlatformMode::Certificates {
            apiv3_key: k.clone(),
            refresh_every: Duration::from_secs(12 * 3600),
        };
        let mode = match &self.platform {
            PlatformConfig::PublicKey { public_key_id, public_key_file, .. } => {
                load_public(public_key_id, public_key_file)?;
                PlatformMode::PublicKey
            }
            PlatformConfig::Certificates { apiv3_key } => certificates(apiv3_key),
            PlatformConfig::Both { public_key_id, public_key_file, apiv3_key } => {
                load_public(public_key_id, public_key_file)?;
                certificates(apiv3_key)
            }
        };
        let client = WechatPayClient::new(&self.base_url, signer, keys, mode, Duration::from_millis(self.timeout_ms))?;
        Ok(match &self.backup_base_url {
            Some(u) => client.with_backup_url(Some(u)),
            None => client,
        })
    }

    pub fn deduction_params(&self) -> DeductionParams {
        DeductionParams {
            sp_appid: self.sp_appid.clone(),
            sp_mchid: self.mch_id.clone(),
            sub_mchid: self.sub_mchid.clone(),
            business_product_id: self.business_product_id,
            business_scene_id: self.business_scene_id,
            description: "facepay canteen".into(),
            device_ip: self.device_ip.clone(),
            sub_appid: self.sub_appid.clone(),
            goods_tag: self.goods_tag.clone(),
        }
    }
}
