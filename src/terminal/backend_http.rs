//! The HTTP client of the terminal ↔ merchant backend protocol (DESIGN "Contracts",
//! `docs/merchant-protocol.md`): [`HttpBackend`] implements [`AuthInfoSource`] (T3, B3 via
//! the backend) and [`PaymentBackend`] (the outbox's delivery) over one reused reqwest
//! connection pool with a per-request timeout. It maps the backend's error bodies
//! `{"code","message"}` onto [`Error`]: HTTP 400 `ORG_MCH_MISMATCH` is the configuration
//! error of T3.5 (never retried), any other non-2xx is `Error::Backend`, transport trouble
//! is `Error::Network`; [`is_retryable`] and [`is_rejection`] classify them for the outbox
//! and the engine's authinfo refresh. The backend's `message` is never copied into an
//! error (it could echo personal data); only its `code` is.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::terminal::backend::{AuthInfoSource, PaymentBackend};
pub use crate::wire::{error_from_answer, ErrorBody, CODE_IDEMPOTENCY_KEY_REUSED, CODE_ORG_MCH_MISMATCH};
use crate::wire::{AuthInfoGrant, AuthInfoRequest, BoxFut, PaymentRequest, PaymentStatus};

/// True for failures worth retrying with backoff: network errors and timeouts, HTTP 5xx,
/// 408 and 429.
pub fn is_retryable(e: &Error) -> bool {
    match e {
        Error::Network(_) | Error::CallTimeout { .. } => true,
        Error::Backend { status, .. } => *status >= 500 || *status == 429 || *status == 408,
        _ => false,
    }
}

/// True for a final answer of the backend: retrying the same request cannot succeed
/// (HTTP 4xx other than 408/429, and the T3.5 configuration mismatch).
pub fn is_rejection(e: &Error) -> bool {
    match e {
        Error::ConfigMismatch(_) => true,
        Error::Backend { status, .. } => (400..500).contains(status) && *status != 429 && *status != 408,
        _ => false,
    }
}

/// The merchant backend over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpBackend {
    client: Client,
    base: Url,
}

impl HttpBackend {
    /// `base_url` like `https://backend.example.com` (a path prefix is kept); `timeout`
    /// bounds every request from connect to the end of the body.
    pub fn new(base_url: &str, timeout: Duration) -> Result<HttpBackend> {
        let mut base = Url::parse(base_url).map_err(|e| Error::invalid_config("backend_url", e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::invalid_config("backend_url", "must be an http:// or https:// URL"));
        }
        if timeout.is_zero() {
            return Err(Error::invalid_config("timeout", "must be greater than 0"));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| Error::invalid_config("backend_url", Error::from(e).to_string()))?;
        Ok(HttpBackend { client, base })
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
        let mut rb = self.client.request(method, url);
        if let Some(b) = body {
            rb = rb.json(b);
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
    fn submit(&self, req: PaymentRequest) -> BoxFut<'_, Result<PaymentStatus>> {
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
        assert!(HttpBackend::new("http://x", Duration::ZERO).is_err());
    }

    #[test]
    fn error_codes_come_from_the_body_only_when_well_formed() {
        assert_eq!(answer_code(StatusCode::BAD_REQUEST, br#"{"code":"PARAM_ERROR","message":"x"}"#), "PARAM_ERROR");
        assert_eq!(answer_code(StatusCode::BAD_GATEWAY, b"<html>"), "HTTP_502");
        assert_eq!(answer_code(StatusCode::BAD_REQUEST, br#"{"code":"13800138000 Zhang San"}"#), "HTTP_400");
    }
}
