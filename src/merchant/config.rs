//! The reference backend's configuration file (JSON, documented in
//! `docs/merchant-backend.md`): merchant key path and serial, mch ids, base URL, the
//! platform key mode (public-key id + PEM, or certificates + APIv3 key), the
//! organisations owned by the merchant (T3.5, B3), the DB path. Loading builds the
//! client and fails with a clear error naming the problem (missing key file, bad key,
//! bad mch_id, no organisation) — never with key material in it.

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
    PublicKey { public_key_id: String, public_key_file: PathBuf },
    Certificates { apiv3_key: Secret },
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
    /// The terminal link: TLS, limits, device amount default (S1–S3).
    #[serde(default)]
    pub link: super::link_config::LinkConfig,
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
        if let PlatformConfig::Certificates { apiv3_key } = &self.platform {
            if apiv3_key.expose().len() != 32 {
                return Err(MerchantError::Config("platform.apiv3_key must be 32 bytes".into()));
            }
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
        let mode = match &self.platform {
            PlatformConfig::PublicKey { public_key_id, public_key_file } => {
                if !public_key_id.starts_with("PUB_KEY_ID_") {
                    return Err(MerchantError::Config("platform.public_key_id must start with PUB_KEY_ID_".into()));
                }
                let pem = std::fs::read_to_string(public_key_file).map_err(|e| {
                    MerchantError::Config(format!("platform.public_key_file {}: {e}", public_key_file.display()))
                })?;
                keys.insert_pem(public_key_id, &pem)?;
                PlatformMode::PublicKey
            }
            PlatformConfig::Certificates { apiv3_key } => PlatformMode::Certificates {
                apiv3_key: apiv3_key.clone(),
                refresh_every: Duration::from_secs(12 * 3600),
            },
        };
        WechatPayClient::new(&self.base_url, signer, keys, mode, Duration::from_millis(self.timeout_ms))
    }

    pub fn deduction_params(&self) -> DeductionParams {
        DeductionParams {
            sp_appid: self.sp_appid.clone(),
            sp_mchid: self.mch_id.clone(),
            sub_mchid: self.sub_mchid.clone(),
            business_product_id: self.business_product_id,
            business_scene_id: self.business_scene_id,
            description: "facepay canteen".into(),
        }
    }
}
