//! The merchant backend (feature `merchant`, SPEC B1–B6): the WeChat Pay API v3 client
//! for the offline-face endpoints ([`sign`], [`client`], [`models`]), the deduction engine
//! that applies the B5 table exactly and never loses or double-charges a payment
//! ([`deduction`], [`engine`]), the out_user_id registry (B6, [`users`]) and the reference
//! backend that terminals talk to ([`server`], [`config`]). The merchant private key lives
//! here only; the terminal build never compiles this module.

pub mod client;
pub mod config;
pub mod contracts;
pub mod deduction;
pub mod devices;
pub mod engine;
pub mod link_auth;
pub mod link_checks;
pub mod link_config;
pub mod listener;
pub mod models;
pub mod notify;
pub mod server;
pub mod sign;
pub mod users;
pub mod x509;

use crate::error::Error;

/// The detailed error of the merchant layer; [`From`] maps it onto the public [`Error`].
/// No variant carries key material or personal data.
#[derive(Debug, thiserror::Error)]
pub enum MerchantError {
    /// A key could not be read or used (never prints the key).
    #[error("key: {0}")]
    Key(String),
    /// A signature check failed (forged, unsigned, expired, probe, malformed).
    #[error("signature: {0}")]
    Signature(String),
    /// `Wechatpay-Serial` names no key we know (certificates mode refreshes on this).
    #[error("unknown platform key serial {0}")]
    UnknownSerial(String),
    /// WeChat Pay answered an error body `{code, message, detail}` with this status.
    /// `detail` is `field / issue / location` (never the echoed `value`, which may be a
    /// submitted personal field); `request_id` is the answer's `Request-ID`.
    #[error("WeChat Pay answered HTTP {status} {code}{}", request_id.as_ref().map(|r| format!(" (Request-ID {r})")).unwrap_or_default())]
    Api { status: u16, code: String, message: String, detail: Option<String>, request_id: Option<String> },
    /// The outcome is unknown: timeout, dropped connection, unreadable answer.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("configuration mismatch: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Core(#[from] Error),
}

impl From<rusqlite::Error> for MerchantError {
    fn from(e: rusqlite::Error) -> Self {
        MerchantError::Core(Error::Store(e))
    }
}

impl From<serde_json::Error> for MerchantError {
    fn from(e: serde_json::Error) -> Self {
        MerchantError::Core(e.into())
    }
}

impl From<MerchantError> for Error {
    fn from(e: MerchantError) -> Self {
        match e {
            MerchantError::Key(m) => Error::invalid_config("merchant_key", m),
            MerchantError::Config(m) => Error::invalid_config("merchant", m),
            MerchantError::Mismatch(m) => Error::ConfigMismatch(m),
            MerchantError::Api { status, code, .. } => Error::Backend { status, code },
            MerchantError::Signature(m) => Error::Backend { status: 0, code: format!("SIGNATURE: {m}") },
            MerchantError::UnknownSerial(s) => Error::Backend { status: 0, code: format!("UNKNOWN_SERIAL {s}") },
            MerchantError::Unknown(m) => Error::Network(m),
            MerchantError::Core(e) => e,
        }
    }
}

/// Test keys generated at run time (never committed): an RSA-2048 PKCS#8 PEM.
pub fn generate_test_key_pem() -> String {
    use aws_lc_rs::encoding::AsDer;
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA-2048 key generation");
    let der = kp.as_der().expect("PKCS#8 encoding");
    sign::pem_encode("PRIVATE KEY", der.as_ref())
}
