//! The typed WeChat Pay API v3 client for the offline-face endpoints: tokens (B1), user
//! update (B2), authinfo (B3), presign (B4), transactions and the order query (B5), and
//! `/v3/certificates`; the contract endpoints of B7 live in [`super::contracts`]. SPEC B0:
//! every request carries `User-Agent`, `Accept: application/json` and `Wechatpay-Serial`
//! naming the platform key we verify with (the public key when held, else the newest
//! certificate in effect); every request is signed and every response verified with
//! either key ([`sign::PlatformKeys`] holds both at once); certificates are refreshed
//! periodically and on an unknown serial, expired ones dropped. A connection that cannot
//! be opened (the request never left) is tried once on the backup domain. One
//! `reqwest::Client` is reused (connection pooling). A timeout or a dropped connection is
//! [`MerchantError::Unknown`]: the deduction engine queries the order before it retries
//! (B5). Every answer's `Request-ID` is kept for the operator.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::models::{
    ApiErrorBody, AuthInfoAnswer, AuthInfoCall, CertificateList, PresignAnswer, PresignRequest, TokenRequest,
    TokenResponse, Transaction, TransactionRequest, UserUpdate, WebInitData,
};
use super::sign::{self, MerchantSigner, PlatformKeys, ResponseSignature};
use super::MerchantError;
use crate::error::Secret;

/// How platform keys are obtained (API-NOTES §2: both modes).
#[derive(Clone)]
pub enum PlatformMode {
    /// Public-key mode: a fixed key under its id `PUB_KEY_ID_…` (already in the key set).
    PublicKey,
    /// Certificates mode: download `/v3/certificates`, decrypt with the APIv3 key.
    Certificates { apiv3_key: Secret, refresh_every: Duration },
}

/// One request as sent on the wire (for [`Transport`]).
#[derive(Debug, Clone)]
pub struct WireRequest {
    pub method: Method,
    pub path_query: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// `(status, headers, body)` of one answer.
pub type WireAnswer = (u16, reqwest::header::HeaderMap, Vec<u8>);

/// Another way to reach the server than HTTP over a socket: the demo runs the mock in
/// process under tokio's paused clock. The answer is `(status, headers, body)`.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, req: WireRequest) -> crate::wire::BoxFut<'_, Result<WireAnswer, MerchantError>>;
}

/// `User-Agent` of every request (B0: WeChat Pay refuses a request without one).
pub fn user_agent() -> String {
    format!("facepay/{} ({}; rust)", env!("CARGO_PKG_VERSION"), std::env::consts::OS)
}

/// The documented backup domain of API v3 (API-NOTES §2).
pub const BACKUP_BASE_URL: &str = "https://api2.mch.weixin.qq.com";
/// The primary domain.
pub const PRIMARY_BASE_URL: &str = "https://api.mch.weixin.qq.com";

pub struct WechatPayClient {
    http: reqwest::Client,
    transport: Option<Arc<dyn Transport>>,
    timeout: Duration,
    base_url: String,
    backup_url: Option<String>,
    user_agent: String,
    pub signer: Arc<MerchantSigner>,
    pub keys: Arc<PlatformKeys>,
    mode: PlatformMode,
    last_refresh: Mutex<Option<std::time::Instant>>,
}

/// A verified answer.
struct Answer {
    status: u16,
    body: Vec<u8>,
    request_id: Option<String>,
}

/// A verified, parsed answer with its `Request-ID` (kept for the operator).
#[derive(Debug, Clone)]
pub struct Answered<T> {
    pub value: T,
    pub request_id: Option<String>,
}

/// One raw answer: status, signature headers, `Request-ID`, body.
struct RawAnswer {
    status: u16,
    sig: ResponseSignature,
    request_id: Option<String>,
    body: Vec<u8>,
}

fn request_id(h: &reqwest::header::HeaderMap) -> Option<String> {
    h.get("request-id").and_then(|v| v.to_str().ok()).map(|v| v.chars().take(128).collect())
}

impl WechatPayClient {
    pub fn new(
        base_url: &str,
        signer: MerchantSigner,
        keys: PlatformKeys,
        mode: PlatformMode,
        timeout: Duration,
    ) -> Result<Self, MerchantError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| MerchantError::Config(format!("http client: {e}")))?;
        let base_url = base_url.trim_end_matches('/').to_string();
        let backup_url = (base_url == PRIMARY_BASE_URL).then(|| BACKUP_BASE_URL.to_string());
        Ok(WechatPayClient {
            http,
            transport: None,
            timeout,
            base_url,
            backup_url,
            user_agent: user_agent(),
            signer: Arc::new(signer),
            keys: Arc::new(keys),
            mode,
            last_refresh: Mutex::new(None),
        })
    }

    /// Sends every request through `t` instead of HTTP (the timeout still applies).
    pub fn with_transport(mut self, t: Arc<dyn Transport>) -> Self {
        self.transport = Some(t);
        self
    }

    /// Tries `url` (a base URL) when a connection to the primary cannot be opened; `None`
    /// turns the fallback off. The default is the backup domain when the primary is the
    /// official one, none otherwise.
    pub fn with_backup_url(mut self, url: Option<&str>) -> Self {
        self.backup_url = url.map(|u| u.trim_end_matches('/').to_string());
        self
    }

    /// Another `User-Agent` (the B0 tests send none through a transport of their own).
    pub fn with_user_agent(mut self, ua: &str) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Downloads and installs the platform certificates (certificates mode).
    pub async fn refresh_certificates(&self) -> Result<usize, MerchantError> {
        let PlatformMode::Certificates { apiv3_key, .. } = &self.mode else {
            return Ok(0);
        };
        // The answer is signed by a key we may not know yet: decrypt first, then verify
        // with the set that includes the new certificates.
        let RawAnswer { status, sig, request_id, body } = self.raw(Method::GET, "/v3/certificates", None).await?;
        if status != 200 {
            return Err(api_error(status, &body, request_id));
        }
        let list: CertificateList = serde_json::from_slice(&body)
            .map_err(|_| MerchantError::Unknown("certificates answer is not the documented shape".into()))?;
        let now = sign::unix_now();
        let staged = PlatformKeys::new();
        let mut fresh = Vec::new();
        for e in &list.data {
            let c = &e.encrypt_certificate;
            let pem =
                sign::aes_gcm_decrypt(apiv3_key.expose().as_bytes(), &c.nonce, &c.associated_data, &c.ciphertext)?;
            let pem = String::from_utf8(pem).map_err(|_| MerchantError::Key("certificate is not PEM".into()))?;
            let (_, der) = sign::pem_blocks(&pem)?.into_iter().next().expect("at least one block");
            let info = super::x509::parse_certificate(&der)?;
            if info.serial_hex != e.serial_no.to_uppercase() {
                return Err(MerchantError::Key("certificate serial differs from its listing".into()));
            }
            let (Some(effective), Some(expires)) =
                (sign::parse_rfc3339(&e.effective_time), sign::parse_rfc3339(&e.expire_time))
            else {
                return Err(MerchantError::Key("certificate effective_time / expire_time is not RFC 3339".into()));
            };
            let validity = sign::CertValidity { effective, expires };
            staged.insert_certificate(&info.serial_hex, info.spki_der.clone(), validity);
            fresh.push((info, validity));
        }
        // The listing itself must be signed by one of the keys it (or we) hold.
        if staged.verify(&sig, &body, now).is_err() {
            self.keys.verify(&sig, &body, now)?;
        }
        let mut n = 0;
        for (info, validity) in fresh {
            if validity.expires > now {
                self.keys.insert_certificate(&info.serial_hex, info.spki_der, validity);
                n += 1;
            }
        }
        let dropped = self.keys.drop_expired(now);
        if dropped > 0 {
            tracing::info!(dropped, "expired platform certificates dropped");
        }
        *self.last_refresh.lock() = Some(std::time::Instant::now());
        Ok(n)
    }

    /// Signs and sends one request with the B0 headers; `Wechatpay-Serial` names the key
    /// we verify with (none before the first certificate download).
    async fn raw(&self, method: Method, path_query: &str, body: Option<String>) -> Result<RawAnswer, MerchantError> {
        let body = body.unwrap_or_default();
        let now = sign::unix_now();
        let auth = self.signer.authorization(method.as_str(), path_query, &body, now, &sign::nonce());
        let serial = self.keys.current(now).map(|(s, _)| s);
        if let Some(t) = &self.transport {
            let mut headers = vec![
                ("authorization", auth),
                ("accept", "application/json".to_string()),
                ("user-agent", self.user_agent.clone()),
            ];
            if self.user_agent.is_empty() {
                headers.pop();
            }
            if !body.is_empty() {
                headers.push(("content-type", "application/json".into()));
            }
            if let Some(s) = serial {
                headers.push(("wechatpay-serial", s));
            }
            let req = WireRequest { method, path_query: path_query.into(), headers, body };
            let (status, h, body) = tokio::time::timeout(self.timeout, t.send(req))
                .await
                .map_err(|_| MerchantError::Unknown("timed out".into()))??;
            return Ok(RawAnswer {
                status,
                sig: ResponseSignature::from_headers(&h),
                request_id: request_id(&h),
                body,
            });
        }
        let send = |base: &str| {
            let mut rb = self
                .http
                .request(method.clone(), format!("{base}{path_query}"))
                .header("Authorization", auth.clone())
                .header("Accept", "application/json");
            if !self.user_agent.is_empty() {
                rb = rb.header("User-Agent", self.user_agent.clone());
            }
            if !body.is_empty() {
                rb = rb.header("Content-Type", "application/json").body(body.clone());
            }
            if let Some(s) = &serial {
                rb = rb.header("Wechatpay-Serial", s.clone());
            }
            rb.send()
        };
        let resp = match send(&self.base_url).await {
            // The connection could not be opened: the request never left, so the backup
            // domain cannot charge twice.
            Err(e) if e.is_connect() && self.backup_url.is_some() => {
                let backup = self.backup_url.as_deref().expect("checked");
                tracing::warn!("primary WeChat Pay domain unreachable; trying the backup domain");
                send(backup).await
            }
            r => r,
        }
        .map_err(|e| MerchantError::Unknown(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let sig = ResponseSignature::from_headers(resp.headers());
        let request_id = request_id(resp.headers());
        let bytes = resp.bytes().await.map_err(|e| MerchantError::Unknown(e.without_url().to_string()))?;
        Ok(RawAnswer { status, sig, request_id, body: bytes.to_vec() })
    }

    async fn call(&self, method: Method, path_query: &str, body: Option<String>) -> Result<Answer, MerchantError> {
        if let PlatformMode::Certificates { refresh_every, .. } = &self.mode {
            let due = self.last_refresh.lock().is_none_or(|t| t.elapsed() >= *refresh_every);
            if due {
                match self.refresh_certificates().await {
                    Ok(_) => {}
                    // Keys still held (the public key, certificates not expired): carry on
                    // and try the refresh again in a minute rather than on every call.
                    Err(e) if self.keys.current(sign::unix_now()).is_some() => {
                        tracing::warn!(error = %e, "platform certificate refresh failed; using the keys held");
                        let retry = std::time::Instant::now()
                            .checked_sub(refresh_every.saturating_sub(Duration::from_secs(60)))
                            .unwrap_or_else(std::time::Instant::now);
                        *self.last_refresh.lock() = Some(retry);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let RawAnswer { status, sig, request_id, body } = self.raw(method, path_query, body).await?;
        let signed = sig.signature.is_some();
        if (200..300).contains(&status) || signed {
            match self.keys.verify(&sig, &body, sign::unix_now()) {
                Err(MerchantError::UnknownSerial(_)) if matches!(self.mode, PlatformMode::Certificates { .. }) => {
                    self.refresh_certificates().await?;
                    self.keys.verify(&sig, &body, sign::unix_now())?;
                }
                r => r?,
            }
        }
        if !(200..300).contains(&status) {
            return Err(api_error(status, &body, request_id));
        }
        Ok(Answer { status, body, request_id })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, MerchantError> {
        self.answered(method, path, body).await.map(|a| a.value)
    }

    /// A verified JSON answer with its `Request-ID`.
    pub(crate) async fn answered<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Answered<T>, MerchantError> {
        let body = body.map(serde_json::to_string).transpose()?;
        let a = self.call(method, path, body).await?;
        let value = serde_json::from_slice(&a.body)
            .map_err(|_| MerchantError::Unknown(format!("HTTP {} answer is not the documented shape", a.status)))?;
        Ok(Answered { value, request_id: a.request_id })
    }

    /// A verified answer without a body (204).
    pub(crate) async fn empty(&self, method: Method, path: &str, body: Option<String>) -> Result<(), MerchantError> {
        self.call(method, path, body).await.map(|_| ())
    }

    /// Encrypts one sensitive value with the key every request names (B0:
    /// [`PlatformKeys::current`]); in certificates mode the certificates are downloaded first.
    pub(crate) async fn encrypt(&self, v: &Secret) -> Result<Secret, MerchantError> {
        if self.keys.current(sign::unix_now()).is_none() {
            self.refresh_certificates().await?;
        }
        let (_, key) = self
            .keys
            .current(sign::unix_now())
            .ok_or_else(|| MerchantError::Key("no platform key to encrypt with".into()))?;
        Ok(Secret::new(sign::oaep_encrypt(&key, v.expose())?))
    }

    /// B1.
    pub async fn tokens(&self, out_user_id: &str, organization_id: &str) -> Result<TokenResponse, MerchantError> {
        let req = TokenRequest {
            scene: "WEBSESSION".into(),
            web_init_data: WebInitData { out_user_id: out_user_id.into(), organization_id: organization_id.into() },
        };
        self.json(Method::POST, "/v3/offlinefacemch/tokens", Some(&req)).await
    }

    /// B2: name and phone are OAEP-encrypted; answers 204.
    pub async fn update_user(
        &self,
        organization_id: &str,
        out_user_id: &str,
        u: &UserUpdate,
    ) -> Result<(), MerchantError> {
        let mut u = u.clone();
        for f in [&mut u.user_name, &mut u.phone].into_iter().flatten() {
            *f = self.encrypt(f).await?;
        }
        let path = format!("/v3/offlinefacemch/organizations/{organization_id}/users/out-user-id/{out_user_id}");
        self.empty(Method::PATCH, &path, Some(serde_json::to_string(&u)?)).await
    }

    /// B3.
    pub async fn authinfo(&self, req: &AuthInfoCall) -> Result<AuthInfoAnswer, MerchantError> {
        self.json(Method::POST, "/v3/offlineface/authinfo", Some(req)).await
    }

    /// B4: identification name, number and phone are OAEP-encrypted (also those of a
    /// chosen bank card).
    pub async fn presign(&self, req: &PresignRequest) -> Result<PresignAnswer, MerchantError> {
        let mut r = req.clone();
        let u = &mut r.facepay_user;
        u.identification_name = self.encrypt(&u.identification_name).await?;
        u.identification.identification_number = self.encrypt(&u.identification.identification_number).await?;
        u.phone = self.encrypt(&u.phone).await?;
        if let Some(c) = &mut r.limit_bank_card {
            c.bank_card_number = self.encrypt(&c.bank_card_number).await?;
            c.identification_name = self.encrypt(&c.identification_name).await?;
            c.identification.identification_number = self.encrypt(&c.identification.identification_number).await?;
            c.phone = self.encrypt(&c.phone).await?;
        }
        self.json(Method::POST, "/v3/offlineface/contracts/presign", Some(&r)).await
    }

    /// B5 deduction.
    pub async fn transaction(&self, req: &TransactionRequest) -> Result<Answered<Transaction>, MerchantError> {
        self.answered(Method::POST, "/v3/offlineface/transactions", Some(req)).await
    }

    /// B5 order query.
    pub async fn query(
        &self,
        out_trade_no: &str,
        sp_mchid: &str,
        sub_mchid: &str,
        business_product_id: u32,
    ) -> Result<Answered<Transaction>, MerchantError> {
        let path = format!(
            "/v3/offlineface/transactions/out-trade-no/{out_trade_no}?sp_mchid={sp_mchid}&sub_mchid={sub_mchid}&business_product_id={business_product_id}"
        );
        self.answered(Method::GET, &path, None::<&()>).await
    }
}

/// An error answer: `{code, message, detail}` with its status and `Request-ID`. A 502 /
/// 503 / 504 without an error body (a gateway's page) is still an API answer of that
/// status (B5.1: retry later); anything else without a body is unknown.
fn api_error(status: u16, body: &[u8], request_id: Option<String>) -> MerchantError {
    match serde_json::from_slice::<ApiErrorBody>(body) {
        Ok(b) => MerchantError::Api {
            status,
            code: b.code,
            message: b.message,
            detail: b.detail.map(|d| d.redacted()),
            request_id,
        },
        Err(_) if matches!(status, 502..=504) => MerchantError::Api {
            status,
            code: format!("HTTP_{status}"),
            message: "gateway answer without an error body".into(),
            detail: None,
            request_id,
        },
        Err(_) => MerchantError::Unknown(format!("HTTP {status} without an error body")),
    }
}
