//! The HTTP client of the terminal ↔ merchant backend protocol (DESIGN "Contracts",
//! `docs/merchant-protocol.md`): [`HttpBackend`] implements [`AuthInfoSource`] (T3, B3 via
//! the backend) and [`PaymentBackend`] (the outbox's delivery) over one reused reqwest
//! connection pool with a per-request timeout. It maps the backend's error bodies
//! `{"code","message"}` onto [`Error`]: HTTP 400 `ORG_MCH_MISMATCH` is the configuration
//! error of T3.5 (never retried), any other non-2xx is `Error::Backend`, transport trouble
//! is `Error::Network`; [`is_retryable`] and [`is_rejection`] classify them for the outbox
//! and the engine's authinfo refresh. The backend's `message` is never copied into an
//! error (it could echo personal data); only its `code` is.
//!
//! S1 and S3: with a [`DeviceSigner`] every request is signed when it is sent (so a retry
//! is signed anew); HTTPS trusts only the CA or certificate the terminal is configured
//! with (`backend_ca_pem`, pinned: no platform or web roots, so reqwest's platform
//! verifier is never used); plain HTTP is refused except to a loopback address or when
//! `allow_plain_http` says so.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::terminal::backend::{AuthInfoSource, PaymentBackend};
use crate::terminal::config::TerminalConfig;
use crate::terminal::link_sign::DeviceSigner;
use crate::wire::{error_from_answer, ErrorBody};
use crate::wire::{AuthInfoGrant, AuthInfoRequest, BoxFut, PaymentRequest, PaymentStatus};

/// True for failures worth retrying with backoff: network errors and timeouts, HTTP 5xx,
/// 408, 429 and 401 (S1: a refused signature — clock off, credential being rotated — must
/// not cost a payment its credential; the next attempt is signed anew).
pub fn is_retryable(e: &Error) -> bool {
    match e {
        Error::Network(_) | Error::CallTimeout { .. } => true,
        Error::Backend { status, .. } => *status >= 500 || matches!(*status, 401 | 408 | 429),
        _ => false,
    }
}

/// True for a final answer of the backend: retrying the same request cannot succeed
/// (HTTP 4xx other than 401/408/429, and the T3.5 configuration mismatch).
pub fn is_rejection(e: &Error) -> bool {
    match e {
        Error::ConfigMismatch(_) => true,
        Error::Backend { status, .. } => (400..500).contains(status) && !matches!(*status, 401 | 408 | 429),
        _ => false,
    }
}

/// How the link is secured (S1, S3).
#[derive(Debug, Clone, Default)]
pub struct LinkOptions {
    /// PEM of the CA (or the server certificate itself) HTTPS trusts, and nothing else.
    pub ca_pem: Option<String>,
    /// Allow plain HTTP to a host that is not a loopback address.
    pub allow_plain_http: bool,
    /// Signs every request (S1).
    pub signer: Option<Arc<DeviceSigner>>,
}

/// The merchant backend over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpBackend {
    client: Client,
    base: Url,
    signer: Option<Arc<DeviceSigner>>,
}

fn is_loopback(u: &Url) -> bool {
    match u.host_str() {
        Some(h) if h.eq_ignore_ascii_case("localhost") => true,
        Some(h) => {
            h.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
        }
        None => false,
    }
}

impl HttpBackend {
    /// `base_url` like `http://127.0.0.1:8080` (a path prefix is kept), unsigned: for
    /// tests and the backend double. HTTPS needs [`HttpBackend::with_options`]' pinned CA.
    pub fn new(base_url: &str, timeout: Duration) -> Result<HttpBackend> {
        Self::with_options(base_url, timeout, LinkOptions::default())
    }

    /// The terminal's client as its configuration says: signed with the device
    /// credential (when one is configured), the pinned CA, plain HTTP only if allowed.
    pub fn from_config(cfg: &TerminalConfig, clock: Arc<dyn Clock>) -> Result<HttpBackend> {
        let signer = match &cfg.device_credential {
            Some(c) => Some(Arc::new(DeviceSigner::new(&cfg.device_id, c.clone(), clock)?)),
            None => None,
        };
        let opts = LinkOptions { ca_pem: cfg.backend_ca_pem.clone(), allow_plain_http: cfg.allow_plain_http, signer };
        Self::with_options(&cfg.backend_url, Duration::from_millis(cfg.timing.call_timeout_ms), opts)
    }

    /// `timeout` bounds every request from connect to the end of the body.
    pub fn with_options(base_url: &str, timeout: Duration, opts: LinkOptions) -> Result<HttpBackend> {
        let mut base = Url::parse(base_url).map_err(|e| Error::invalid_config("backend_url", e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() || base.host().is_none() {
            return Err(Error::invalid_config("backend_url", "must be an http:// or https:// URL with a host"));
        }
        if base.scheme() == "http" && !opts.allow_plain_http && !is_loopback(&base) {
            return Err(Error::invalid_config(
                "backend_url",
                "plain HTTP to a non-loopback host is refused (S3): use https:// or set allow_plain_http",
            ));
        }
        if timeout.is_zero() {
            return Err(Error::invalid_config("timeout", "must be greater than 0"));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let builder = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none());
        let builder = if base.scheme() == "https" {
            let pem = opts.ca_pem.as_deref().ok_or_else(|| {
                Error::invalid_config("backend_ca_pem", "HTTPS needs the backend's CA or certificate (S3: pinned)")
            })?;
            builder.use_preconfigured_tls(tls_config(pinned_roots(pem)?)?).https_only(true)
        } else {
            // Plain HTTP still needs a TLS configuration for reqwest to build (it never asks a
            // process-wide provider: the app may have installed its own): one that trusts
            // nothing, and redirects are off, so no HTTPS connection can come of it.
            builder.use_preconfigured_tls(tls_config(rustls::RootCertStore::empty())?)
        };
        let client = builder.build().map_err(|e| Error::invalid_config("backend_url", Error::from(e).to_string()))?;
        Ok(HttpBackend { client, base, signer: opts.signer })
    }

    fn url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        {
            let mut p = url.path_segments_mut().map_err(|()| Error::invalid_config("backend_url", "not a base URL"))?;
            p.pop_if_empty();
            p.extend(segments);
        }
        Ok(url)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(&self, method: Method, url: Url, body: Option<&B>) -> Result<T> {
        // The exact bytes sent are the bytes signed.
        let bytes = match body {
            Some(b) => serde_json::to_vec(b)?,
            None => Vec::new(),
        };
        let pq = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let mut rb = self.client.request(method.clone(), url);
        if let Some(s) = &self.signer {
            rb = rb.header(crate::wire::auth::HEADER, s.authorization(method.as_str(), &pq, &bytes));
        }
        if body.is_some() {
            rb = rb.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes);
        }
        let resp = rb.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if status.is_success() {
            return Ok(serde_json::from_slice(&bytes)?);
        }
        Err(error_from_answer(status.as_u16(), &answer_code(status, &bytes)))
    }
}

/// Every certificate of a PEM bundle, as the only roots (S3).
fn pinned_roots(pem: &str) -> Result<rustls::RootCertStore> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bad = || Error::invalid_config("backend_ca_pem", "not a PEM certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.map_err(|_| bad())?).map_err(|_| bad())?;
    }
    if roots.is_empty() {
        return Err(Error::invalid_config("backend_ca_pem", "holds no certificate"));
    }
    Ok(roots)
}

/// The terminal's TLS client configuration (S3): the `ring` provider (the terminal links
/// no aws-lc-rs), TLS 1.2 and 1.3, the given roots and nothing else, no client certificate.
fn tls_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid_config("backend_url", format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(cfg)
}

fn answer_code(status: StatusCode, body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.code)
        .filter(|c| !c.is_empty() && c.len() <= 64 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
        .unwrap_or_else(|| format!("HTTP_{}", status.as_u16()))
}

impl AuthInfoSource for HttpBackend {
    fn fetch(&self, req: AuthInfoRequest) -> BoxFut<'_, Result<AuthInfoGrant>> {
        Box::pin(async move {
            let url = self.url(&["facepay", "v1", "authinfo"])?;
            self.call(Method::POST, url, Some(&req)).await
        })
    }
}

impl PaymentBackend for HttpBackend {
    fn submit<'a>(&'a self, req: &'a PaymentRequest) -> BoxFut<'a, Result<PaymentStatus>> {
        Box::pin(async move {
            let url = self.url(&["facepay", "v1", "payments"])?;
            self.call(Method::POST, url, Some(&req)).await
        })
    }

    fn status(&self, payment_id: String) -> BoxFut<'_, Result<PaymentStatus>> {
        Box::pin(async move {
            if payment_id.is_empty() {
                return Err(Error::invalid_arg("payment_id", "must not be empty"));
            }
            let url = self.url(&["facepay", "v1", "payments", &payment_id])?;
            self.call::<(), _>(Method::GET, url, None).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{CODE_IDEMPOTENCY_KEY_REUSED, CODE_ORG_MCH_MISMATCH};

    #[test]
    fn classification_of_errors() {
        assert!(is_retryable(&Error::Network("reset".into())));
        assert!(is_retryable(&error_from_answer(503, "UNAVAILABLE")));
        assert!(is_retryable(&error_from_answer(429, "RATELIMIT_EXCEEDED")));
        assert!(!is_rejection(&error_from_answer(500, "SYSTEM_ERROR")));
        let mismatch = error_from_answer(400, CODE_ORG_MCH_MISMATCH);
        assert_eq!(mismatch.code(), crate::error::ErrorCode::ConfigMismatch);
        assert!(is_rejection(&mismatch) && !is_retryable(&mismatch));
        let reused = error_from_answer(409, CODE_IDEMPOTENCY_KEY_REUSED);
        assert!(is_rejection(&reused) && !is_retryable(&reused));
        assert!(!is_retryable(&Error::Internal("json".into())) && !is_rejection(&Error::Internal("json".into())));
    }

    #[test]
    fn urls_keep_a_prefix_and_encode_ids() {
        let b = HttpBackend::new("http://127.0.0.1:9/api", Duration::from_secs(1)).expect("valid");
        assert_eq!(
            b.url(&["facepay", "v1", "payments"]).expect("url").as_str(),
            "http://127.0.0.1:9/api/facepay/v1/payments"
        );
        assert_eq!(
            b.url(&["facepay", "v1", "payments", "a/b c"]).expect("url").as_str(),
            "http://127.0.0.1:9/api/facepay/v1/payments/a%2Fb%20c"
        );
        assert!(HttpBackend::new("ftp://x", Duration::from_secs(1)).is_err());
        assert!(HttpBackend::new("http://127.0.0.1:1", Duration::ZERO).is_err());
    }

    #[test]
    fn s3_plain_http_only_to_loopback_or_when_allowed_and_https_only_pinned() {
        let t = Duration::from_secs(1);
        assert!(HttpBackend::new("http://localhost:1", t).is_ok());
        assert!(HttpBackend::new("http://[::1]:1", t).is_ok());
        let e = HttpBackend::new("http://backend.example.com", t).unwrap_err();
        assert!(e.to_string().contains("backend_url"), "{e}");
        let allow = LinkOptions { allow_plain_http: true, ..LinkOptions::default() };
        assert!(HttpBackend::with_options("http://backend.example.com", t, allow).is_ok());
        let e = HttpBackend::new("https://backend.example.com", t).unwrap_err();
        assert!(e.to_string().contains("backend_ca_pem"), "{e}");
        let junk = LinkOptions { ca_pem: Some("not a pem".into()), ..LinkOptions::default() };
        assert!(HttpBackend::with_options("https://backend.example.com", t, junk).is_err());
    }

    #[test]
    fn error_codes_come_from_the_body_only_when_well_formed() {
        assert_eq!(answer_code(StatusCode::BAD_REQUEST, br#"{"code":"PARAM_ERROR","message":"x"}"#), "PARAM_ERROR");
        assert_eq!(answer_code(StatusCode::BAD_GATEWAY, b"<html>"), "HTTP_502");
        assert_eq!(answer_code(StatusCode::BAD_REQUEST, br#"{"code":"13800138000 Zhang San"}"#), "HTTP_400");
    }
}
