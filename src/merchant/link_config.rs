//! The reference backend's terminal-link settings (SPEC S1–S3), the `link` object of the
//! backend configuration (`docs/merchant-backend.md`): TLS certificate and key (or plain
//! HTTP, only when asked for explicitly, for a loopback or a TLS-terminating proxy), the
//! default amount limit of a device (S2), and the transport bounds of S3 (body, URI and
//! header sizes, header-read and idle timeouts, concurrent connections, per-device rate).
//! Every value that cannot work is refused at start, naming the field.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::MerchantError;

/// The server's certificate chain and private key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Terminate TLS with these (S3). Without it, `plain_http` must be set.
    pub tls: Option<TlsFiles>,
    /// Serve plain HTTP: for a loopback listener or behind a TLS-terminating proxy only
    /// (a warning is logged at start).
    pub plain_http: bool,
    /// Default amount limit of a device (fen, S2); `devices add --max-amount` overrides it.
    pub max_amount_fen: u64,
    pub max_body_bytes: usize,
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
    /// A request's headers must arrive within this (slowloris, S3).
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight is closed after this.
    pub idle_timeout_ms: u64,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Per-device token bucket: sustained requests per second and burst (429 beyond).
    pub rate_per_s: u32,
    pub rate_burst: u32,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            tls: None,
            plain_http: false,
            max_amount_fen: 100_000,
            max_body_bytes: 16 * 1024,
            max_uri_bytes: 2048,
            max_header_bytes: 8 * 1024,
            header_read_timeout_ms: 5_000,
            idle_timeout_ms: 30_000,
            max_connections: 256,
            rate_per_s: 20,
            rate_burst: 40,
        }
    }
}

impl LinkConfig {
    pub fn validate(&self) -> Result<(), MerchantError> {
        let bad = |f: &str, why: &str| Err(MerchantError::Config(format!("link.{f}: {why}")));
        if self.tls.is_none() && !self.plain_http {
            return bad(
                "tls",
                "name cert_file and key_file, or set link.plain_http for a loopback or a TLS proxy (S3)",
            );
        }
        if self.tls.is_some() && self.plain_http {
            return bad("plain_http", "cannot be set together with link.tls");
        }
        if let Some(t) = &self.tls {
            if t.cert_file.as_os_str().is_empty() || t.key_file.as_os_str().is_empty() {
                return bad("tls", "cert_file and key_file must not be empty");
            }
        }
        for (f, v) in [
            ("max_amount_fen", self.max_amount_fen),
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_uri_bytes", self.max_uri_bytes as u64),
            ("max_header_bytes", self.max_header_bytes as u64),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("rate_per_s", self.rate_per_s as u64),
            ("rate_burst", self.rate_burst as u64),
        ] {
            if v == 0 {
                return bad(f, "must be greater than 0");
            }
        }
        if self.max_amount_fen > i64::MAX as u64 {
            return bad("max_amount_fen", "too large");
        }
        Ok(())
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// Plain HTTP with the flag set: convenient for tests and the fixture.
    pub fn plain() -> Self {
        LinkConfig { plain_http: true, ..LinkConfig::default() }
    }
}
