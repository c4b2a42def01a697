//! The FaceID API 3.0 client: TC3-signed `POST /` calls to `DetectAuth` (R1),
//! `GetDetectInfoEnhanced` with `InfoType "1"` (R2–R4) and `GetWeChatBillDetails` (R5).
//! `Response.Error` is read before anything else; only `RequestLimitExceeded*`,
//! `InternalError*`, network errors and HTTP 5xx are retried, with capped exponential
//! back-off ([`RetryPolicy`], pure). Credentials come from `TENCENTCLOUD_SECRET_ID` /
//! `TENCENTCLOUD_SECRET_KEY`; the endpoint is configurable so any test server can stand in.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{ReconError, ReconResult};
use super::models::{
    DetectAuthRequest, DetectAuthResponse, Envelope, ErrorProbe, GetDetectInfoEnhancedRequest,
    GetDetectInfoEnhancedResponse, GetWeChatBillDetailsRequest, GetWeChatBillDetailsResponse,
};
use super::tc3;
use crate::clock::{unix_s, Clock, SystemClock};
use crate::error::Secret;

pub const DEFAULT_ENDPOINT: &str = "https://faceid.tencentcloudapi.com";
pub const SERVICE: &str = "faceid";
pub const VERSION: &str = "2018-03-01";
pub const CONTENT_TYPE: &str = "application/json";

/// A SecretId / SecretKey pair. The key never prints.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub secret_id: String,
    pub secret_key: Secret,
}

impl Credentials {
    pub fn new(id: impl Into<String>, key: impl Into<String>) -> Self {
        Credentials { secret_id: id.into(), secret_key: Secret::new(key) }
    }

    /// From `TENCENTCLOUD_SECRET_ID` / `TENCENTCLOUD_SECRET_KEY`.
    pub fn from_env() -> ReconResult<Self> {
        let get = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ReconError::invalid_arg("credentials", format!("{name} is not set")))
        };
        Ok(Credentials::new(get("TENCENTCLOUD_SECRET_ID")?, get("TENCENTCLOUD_SECRET_KEY")?))
    }
}

/// Whether a failure may be retried (API-NOTES §3 "Errors").
pub fn is_retryable(e: &ReconError) -> bool {
    match e {
        ReconError::Api { code, .. } => code.starts_with("RequestLimitExceeded") || code.starts_with("InternalError"),
        ReconError::Network(_) => true,
        ReconError::Http(s) => *s >= 500,
        _ => false,
    }
}

/// Capped exponential back-off, pure: `delay(n)` is the wait before retry `n` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub initial: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 6, initial: Duration::from_millis(200), max_delay: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    pub fn delay(&self, retry: u32) -> Duration {
        crate::clock::backoff(self.initial, self.max_delay, retry.saturating_sub(1))
    }
    /// `Some(wait)` when attempt number `attempt` (1-based) failed with `e` and may be retried.
    pub fn next(&self, attempt: u32, e: &ReconError) -> Option<Duration> {
        (attempt < self.max_attempts && is_retryable(e)).then(|| self.delay(attempt))
    }
}

#[derive(Clone)]
pub struct FaceIdClient {
    http: reqwest::Client,
    url: String,
    host: String,
    creds: Credentials,
    retry: RetryPolicy,
    /// Signature timestamps (wall time) and retry waits; replaceable for tests.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for FaceIdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceIdClient").field("url", &self.url).field("creds", &self.creds).finish()
    }
}

impl FaceIdClient {
    pub fn new(endpoint: &str, creds: Credentials) -> ReconResult<Self> {
        let url = reqwest::Url::parse(endpoint)
            .map_err(|e| ReconError::invalid_arg("endpoint", format!("`{endpoint}` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ReconError::invalid_arg("endpoint", "must start with http:// or https://"));
        }
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return Err(ReconError::invalid_arg("endpoint", "has no host")),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ReconError::Network(e.to_string()))?;
        Ok(FaceIdClient {
            http,
            url: url.to_string(),
            host,
            creds,
            retry: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.url
    }

    /// One signed call, with retries for the retryable failures only.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(&self, action: &str, req: &Req) -> ReconResult<Resp> {
        let body = serde_json::to_vec(req).map_err(|e| ReconError::Protocol(format!("cannot encode request: {e}")))?;
        let mut attempt = 1;
        loop {
            match self.call_once(action, &body).await {
                Ok(r) => return Ok(r),
                Err(e) => match self.retry.next(attempt, &e) {
                    Some(wait) => {
                        tracing::debug!(action, attempt, code = e.api_code(), "retrying FaceID call");
                        self.clock.sleep(wait).await;
                        attempt += 1;
                    }
                    None => return Err(e),
                },
            }
        }
    }

    async fn call_once<Resp: DeserializeOwned>(&self, action: &str, body: &[u8]) -> ReconResult<Resp> {
        let ts = unix_s(self.clock.wall()) as i64;
        let (_, auth) = tc3::sign(
            &self.creds.secret_id,
            self.creds.secret_key.expose(),
            &tc3::SignInput {
                service: SERVICE,
                host: &self.host,
                content_type: CONTENT_TYPE,
                timestamp: ts,
                payload: body,
            },
        );
        let resp = self
            .http
            .post(&self.url)
            .header("Content-Type", CONTENT_TYPE)
            .header("Host", &self.host)
            .header("X-TC-Action", action)
            .header("X-TC-Version", VERSION)
            .header("X-TC-Timestamp", ts.to_string())
            .header("Authorization", auth)
            .body(body.to_vec())
            .send()
            .await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        if status >= 500 {
            return Err(ReconError::Http(status));
        }
        decode(status, &bytes)
    }

    /// R1: DetectAuth; the caller stores the token at once ([`super::ledger::record_issued`]).
    pub async fn detect_auth(&self, req: &DetectAuthRequest) -> ReconResult<DetectAuthResponse> {
        let r: DetectAuthResponse = self.call("DetectAuth", req).await?;
        if r.biz_token.as_deref().is_none_or(str::is_empty) {
            return Err(ReconError::Protocol("DetectAuth answered without BizToken".into()));
        }
        Ok(r)
    }

    /// R2: GetDetectInfoEnhanced, text only (`InfoType "1"`).
    pub async fn get_detect_info(&self, biz_token: &str, rule_id: &str) -> ReconResult<GetDetectInfoEnhancedResponse> {
        let req = GetDetectInfoEnhancedRequest {
            biz_token: biz_token.into(),
            rule_id: rule_id.into(),
            info_type: Some("1".into()),
        };
        self.call("GetDetectInfoEnhanced", &req).await
    }

    /// R5: one page of the daily bill.
    pub async fn get_bill_page(
        &self,
        date: &str,
        rule_id: Option<&str>,
        cursor: u64,
    ) -> ReconResult<GetWeChatBillDetailsResponse> {
        let req = GetWeChatBillDetailsRequest { date: date.into(), cursor, rule_id: rule_id.map(str::to_string) };
        self.call("GetWeChatBillDetails", &req).await
    }
}

/// Decodes an answer: `Response.Error` first, then the typed body.
pub fn decode<Resp: DeserializeOwned>(status: u16, bytes: &[u8]) -> ReconResult<Resp> {
    let probe: ErrorProbe = serde_json::from_slice(bytes).map_err(|e| {
        if status != 200 {
            ReconError::Http(status)
        } else {
            ReconError::Protocol(format!("not a FaceID answer: {e}"))
        }
    })?;
    if let Some(err) = probe.response.error {
        return Err(ReconError::Api {
            code: err.code,
            message: err.message,
            request_id: probe.response.request_id.unwrap_or_default(),
        });
    }
    if status != 200 {
        return Err(ReconError::Http(status));
    }
    let env: Envelope<Resp> =
        serde_json::from_slice(bytes).map_err(|e| ReconError::Protocol(format!("unexpected shape: {e}")))?;
    Ok(env.response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str) -> ReconError {
        ReconError::Api { code: code.into(), message: String::new(), request_id: String::new() }
    }

    #[test]
    fn only_documented_codes_are_retried() {
        for c in ["RequestLimitExceeded", "RequestLimitExceeded.UinLimitExceeded", "InternalError"] {
            assert!(is_retryable(&api(c)), "{c}");
        }
        for c in [
            "AuthFailure.SignatureFailure",
            "AuthFailure.SignatureExpire",
            "InvalidParameter",
            "InvalidParameterValue.RuleIdNotExist",
            "UnauthorizedOperation.Arrears",
        ] {
            assert!(!is_retryable(&api(c)), "{c}");
        }
        assert!(is_retryable(&ReconError::Http(502)));
        assert!(!is_retryable(&ReconError::Http(404)));
        assert!(is_retryable(&ReconError::Network("reset".into())));
        assert!(!is_retryable(&ReconError::Protocol("x".into())));
    }

    #[test]
    fn backoff_doubles_and_caps_and_stops() {
        let p =
            RetryPolicy { max_attempts: 4, initial: Duration::from_millis(100), max_delay: Duration::from_millis(350) };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(3), Duration::from_millis(350));
        assert_eq!(p.next(3, &api("InternalError")), Some(Duration::from_millis(350)));
        assert_eq!(p.next(4, &api("InternalError")), None);
        assert_eq!(p.next(1, &api("AuthFailure.SignatureFailure")), None);
    }

    #[test]
    fn error_is_checked_before_the_body() {
        let j =
            br#"{"Response":{"Error":{"Code":"AuthFailure.SignatureExpire","Message":"expired"},"RequestId":"r1"}}"#;
        let e = decode::<GetWeChatBillDetailsResponse>(200, j).unwrap_err();
        assert_eq!(e.api_code(), Some("AuthFailure.SignatureExpire"));
        assert!(matches!(decode::<GetWeChatBillDetailsResponse>(200, b"{not json"), Err(ReconError::Protocol(_))));
        assert!(matches!(
            decode::<GetWeChatBillDetailsResponse>(200, b"{\"Response\":{\"HasNextPage\":\"yes\"}}"),
            Err(ReconError::Protocol(_))
        ));
        let ok: GetWeChatBillDetailsResponse =
            decode(200, br#"{"Response":{"HasNextPage":false,"NextCursor":0,"WeChatBillDetails":[],"RequestId":"r"}}"#)
                .expect("ok");
        assert_eq!(ok.has_next_page, Some(false));
    }

    #[test]
    fn endpoint_must_be_a_url_and_host_keeps_the_port() {
        let c = Credentials::new("id", "key");
        assert!(FaceIdClient::new("not a url", c.clone()).is_err());
        assert!(FaceIdClient::new("ftp://x", c.clone()).is_err());
        let cl = FaceIdClient::new("http://127.0.0.1:8123", c).expect("client");
        assert_eq!(cl.host, "127.0.0.1:8123");
        assert!(!format!("{cl:?}").contains("key\""));
    }
}
