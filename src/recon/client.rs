//! The FaceID API 3.0 client: TC3-signed `POST /` calls to `DetectAuth` (R1),
//! `GetDetectInfoEnhanced` with `InfoType "1"` (R2–R4) and `GetWeChatBillDetails` (R5).
//! `Response.Error` is read before anything else, on 5xx answers too; only
//! `RequestLimitExceeded*`, `InternalError*`, `FailedOperation.UnKnown`, `ServiceUnavailable*`,
//! `ResourceUnavailable*`, network errors and HTTP 5xx are retried, with capped exponential
//! back-off ([`RetryPolicy`], pure). `DetectAuth` creates a token, so it is retried only when
//! the request certainly was not carried out; any other failure is [`ReconError::Uncertain`].
//! Credentials come from `TENCENTCLOUD_SECRET_ID` / `TENCENTCLOUD_SECRET_KEY` and, for
//! temporary (STS) credentials, `TENCENTCLOUD_TOKEN`, sent as `X-TC-Token`; the endpoint is
//! configurable so any test server can stand in. Serves R1–R5 and R9 (the account of a call).

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

/// A SecretId / SecretKey pair, plus the session token of temporary (STS) credentials. The
/// key and the token never print.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub secret_id: String,
    pub secret_key: Secret,
    /// `X-TC-Token`: set for temporary credentials only.
    pub token: Option<Secret>,
}

impl Credentials {
    pub fn new(id: impl Into<String>, key: impl Into<String>) -> Self {
        Credentials { secret_id: id.into(), secret_key: Secret::new(key), token: None }
    }

    /// Temporary credentials: the token goes with every request as `X-TC-Token`.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret::new(token));
        self
    }

    pub fn is_temporary(&self) -> bool {
        self.token.is_some()
    }

    /// From `TENCENTCLOUD_SECRET_ID` / `TENCENTCLOUD_SECRET_KEY` and the optional
    /// `TENCENTCLOUD_TOKEN` (tccli's names).
    pub fn from_env() -> ReconResult<Self> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self::from_values(get("TENCENTCLOUD_SECRET_ID"), get("TENCENTCLOUD_SECRET_KEY"), get("TENCENTCLOUD_TOKEN"))
    }

    /// The checks of [`Credentials::from_env`], pure: both of id and key or neither; a token
    /// only with both.
    pub fn from_values(id: Option<String>, key: Option<String>, token: Option<String>) -> ReconResult<Self> {
        let err = |m: &str| ReconError::invalid_arg("credentials", m);
        match (id, key, token) {
            (Some(id), Some(key), token) => {
                let c = Credentials::new(id.trim(), key.trim());
                Ok(match token {
                    Some(t) => c.with_token(t.trim()),
                    None => c,
                })
            }
            (Some(_), None, _) => Err(err("TENCENTCLOUD_SECRET_ID is set but TENCENTCLOUD_SECRET_KEY is not")),
            (None, Some(_), _) => Err(err("TENCENTCLOUD_SECRET_KEY is set but TENCENTCLOUD_SECRET_ID is not")),
            (None, None, Some(_)) => Err(err(
                "TENCENTCLOUD_TOKEN is set without TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (temporary \
                 credentials are the three together)",
            )),
            (None, None, None) => Err(err("TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY are not set")),
        }
    }
}

/// Codes that are never retried, whatever the HTTP status (API-NOTES §3 "Errors").
fn never_retried(code: &str) -> bool {
    ["AuthFailure", "InvalidParameter", "MissingParameter", "UnauthorizedOperation", "UnsupportedOperation"]
        .iter()
        .any(|p| code.starts_with(p))
        || code == "InvalidAction"
        || code == "NoSuchVersion"
}

/// Whether a failure of a read-only call may be retried (API-NOTES §3 "Errors" and
/// "Corrections": `FailedOperation.UnKnown` is listed for all three actions).
pub fn is_retryable(e: &ReconError) -> bool {
    match e {
        ReconError::Api { code, status, .. } => {
            code.starts_with("RequestLimitExceeded")
                || code.starts_with("InternalError")
                || code == "FailedOperation.UnKnown"
                || code.starts_with("ServiceUnavailable")
                || code.starts_with("ResourceUnavailable")
                || (*status >= 500 && !never_retried(code))
        }
        ReconError::Network(_) | ReconError::Connect(_) => true,
        ReconError::Http(s) => *s >= 500,
        _ => false,
    }
}

/// Whether a failed call that creates something (`DetectAuth`) certainly was not carried
/// out: the connection never opened, or the service refused it for its rate before doing
/// anything. Everything else that [`is_retryable`] would retry leaves the outcome unknown.
pub fn certainly_not_done(e: &ReconError) -> bool {
    match e {
        ReconError::Connect(_) => true,
        ReconError::Api { code, .. } => code.starts_with("RequestLimitExceeded"),
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

    /// One signed read-only call, with retries for the retryable failures only.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        action: &'static str,
        req: &Req,
    ) -> ReconResult<Resp> {
        self.call_with(action, req, false).await
    }

    /// `creates`: the call creates something (a second one would act twice), so it is retried
    /// only when [`certainly_not_done`]; another retryable failure becomes `Uncertain`.
    async fn call_with<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        action: &'static str,
        req: &Req,
        creates: bool,
    ) -> ReconResult<Resp> {
        let body = serde_json::to_vec(req).map_err(|e| ReconError::Protocol(format!("cannot encode request: {e}")))?;
        let mut attempt = 1;
        loop {
            match self.call_once(action, &body).await {
                Ok(r) => return Ok(r),
                Err(e) if creates && !certainly_not_done(&e) && is_retryable(&e) => {
                    tracing::warn!(
                        action,
                        code = e.api_code(),
                        "call that creates a resource failed with an unknown outcome"
                    );
                    return Err(ReconError::Uncertain { action, cause: e.to_string() });
                }
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

    async fn call_once<Resp: DeserializeOwned>(&self, action: &'static str, body: &[u8]) -> ReconResult<Resp> {
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
        let mut rb = self
            .http
            .post(&self.url)
            .header("Content-Type", CONTENT_TYPE)
            .header("Host", &self.host)
            .header("X-TC-Action", action)
            .header("X-TC-Version", VERSION)
            .header("X-TC-Timestamp", ts.to_string())
            .header("Authorization", auth);
        if let Some(t) = &self.creds.token {
            // Temporary credentials: the session token rides along unsigned, as in the
            // official SDKs (TC3 signs `content-type;host` only).
            rb = rb.header("X-TC-Token", t.expose());
        }
        let resp = rb.body(body.to_vec()).send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        decode(status, &bytes)
    }

    /// R1: DetectAuth; the caller stores the token at once ([`super::ledger::record_issued`]).
    pub async fn detect_auth(&self, req: &DetectAuthRequest) -> ReconResult<DetectAuthResponse> {
        let r: DetectAuthResponse = self.call_with("DetectAuth", req, true).await?;
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

/// Decodes an answer: `Response.Error` first (also on a 5xx, so its code is kept), then the
/// typed body.
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
            status,
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
        ReconError::api(code)
    }

    #[test]
    fn only_documented_codes_are_retried() {
        for c in [
            "RequestLimitExceeded",
            "RequestLimitExceeded.UinLimitExceeded",
            "InternalError",
            "InternalError.UnKnown",
            "FailedOperation.UnKnown",
            "ServiceUnavailable",
            "ResourceUnavailable",
        ] {
            assert!(is_retryable(&api(c)), "{c}");
        }
        for c in [
            "AuthFailure.SignatureFailure",
            "AuthFailure.SignatureExpire",
            "InvalidParameter",
            "InvalidParameterValue.RuleIdNotExist",
            "UnauthorizedOperation.Arrears",
            "AuthFailure.TokenFailure",
            "FailedOperation.RuleIdNotExist",
        ] {
            assert!(!is_retryable(&api(c)), "{c}");
        }
        // A 5xx keeps its code: retried unless the code says never.
        let five = |code: &str| ReconError::Api {
            code: code.into(),
            message: String::new(),
            request_id: String::new(),
            status: 503,
        };
        assert!(is_retryable(&five("FailedOperation.Whatever")));
        assert!(!is_retryable(&five("AuthFailure.TokenFailure")));
        assert_eq!(
            decode::<GetWeChatBillDetailsResponse>(
                502,
                br#"{"Response":{"Error":{"Code":"ServiceUnavailable","Message":"m"},"RequestId":"r"}}"#
            )
            .unwrap_err()
            .api_code(),
            Some("ServiceUnavailable")
        );
        assert!(matches!(
            decode::<GetWeChatBillDetailsResponse>(502, b"<html>bad gateway</html>"),
            Err(ReconError::Http(502))
        ));
        assert!(is_retryable(&ReconError::Http(502)));
        assert!(!is_retryable(&ReconError::Http(404)));
        assert!(is_retryable(&ReconError::Network("reset".into())));
        assert!(!is_retryable(&ReconError::Protocol("x".into())));
    }

    #[test]
    fn r1_detect_auth_is_retried_only_when_certainly_not_carried_out() {
        assert!(certainly_not_done(&ReconError::Connect("refused".into())));
        assert!(certainly_not_done(&api("RequestLimitExceeded")));
        for e in [
            ReconError::Network("reset after send".into()),
            ReconError::Http(502),
            api("InternalError"),
            api("FailedOperation.UnKnown"),
        ] {
            assert!(is_retryable(&e) && !certainly_not_done(&e), "{e}");
        }
    }

    #[test]
    fn credentials_need_both_halves_and_a_token_needs_both() {
        let s = |v: &str| Some(v.to_string());
        let c = Credentials::from_values(s("AKID1"), s("key"), None).expect("static");
        assert!(!c.is_temporary());
        let c = Credentials::from_values(s("AKID1"), s("key"), s("tok")).expect("temporary");
        assert!(c.is_temporary());
        assert!(!format!("{c:?}").contains("tok\""), "the token never prints");
        for (id, key, tok, needle) in [
            (s("AKID1"), None, None, "TENCENTCLOUD_SECRET_KEY is not"),
            (None, s("key"), None, "TENCENTCLOUD_SECRET_ID is not"),
            (None, None, s("tok"), "TENCENTCLOUD_TOKEN is set without"),
            (None, s("key"), s("tok"), "TENCENTCLOUD_SECRET_ID is not"),
            (None, None, None, "are not set"),
        ] {
            let e = Credentials::from_values(id, key, tok).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
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
