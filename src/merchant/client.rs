//! The typed WeChat Pay API v3 client for the offline-face endpoints: tokens (B1), user
//! update (B2), authinfo (B3), presign (B4), transactions and the order query (B5), and
//! `/v3/certificates`. Every request is signed and every response verified ([`sign`]);
//! in certificates mode an unknown `Wechatpay-Serial` triggers one refresh. One
//! `reqwest::Client` is reused (connection pooling); base URL and timeout are configurable.
//! A timeout or a dropped connection is [`MerchantError::Unknown`]: the deduction engine
//! queries the order before it retries (B5).

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

pub struct WechatPayClient {
    http: reqwest::Client,
    transport: Option<Arc<dyn Transport>>,
    timeout: Duration,
    base_url: String,
    pub signer: Arc<MerchantSigner>,
    pub keys: Arc<PlatformKeys>,
    mode: PlatformMode,
    last_refresh: Mutex<Option<std::time::Instant>>,
}

/// A verified answer.
struct Answer {
    status: u16,
    body: Vec<u8>,
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
        Ok(WechatPayClient {
            http,
            transport: None,
            timeout,
            base_url: base_url.trim_end_matches('/').to_string(),
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

    /// Downloads and installs the platform certificates (certificates mode).
    pub async fn refresh_certificates(&self) -> Result<usize, MerchantError> {
        let PlatformMode::Certificates { apiv3_key, .. } = &self.mode else {
            return Ok(0);
        };
        // The answer is signed by a key we may not know yet: decrypt first, then verify
        // with the set that includes the new certificates.
        let (status, sig, body) = self.raw(Method::GET, "/v3/certificates", None, None).await?;
        if status != 200 {
            return Err(api_error(status, &body));
        }
        let list: CertificateList = serde_json::from_slice(&body)
            .map_err(|_| MerchantError::Unknown("certificates answer is not the documented shape".into()))?;
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
            staged.insert(&info.serial_hex, info.spki_der.clone());
            fresh.push(info);
        }
        // The listing itself must be signed by one of the keys it (or we) hold.
        if staged.verify(&sig, &body, sign::unix_now()).is_err() {
            self.keys.verify(&sig, &body, sign::unix_now())?;
        }
        let n = fresh.len();
        for info in fresh {
            self.keys.insert(&info.serial_hex, info.spki_der);
        }
        *self.last_refresh.lock() = Some(std::time::Instant::now());
        Ok(n)
    }

    async fn raw(
        &self,
        method: Method,
        path_query: &str,
        body: Option<String>,
        serial: Option<&str>,
    ) -> Result<(u16, ResponseSignature, Vec<u8>), MerchantError> {
        let body = body.unwrap_or_default();
        let auth = self.signer.authorization(method.as_str(), path_query, &body, sign::unix_now(), &sign::nonce());
        if let Some(t) = &self.transport {
            let mut headers = vec![("authorization", auth), ("accept", "application/json".to_string())];
            if !body.is_empty() {
                headers.push(("content-type", "application/json".into()));
            }
            if let Some(s) = serial {
                headers.push(("wechatpay-serial", s.to_string()));
            }
            let req = WireRequest { method, path_query: path_query.into(), headers, body };
            let (status, h, body) = tokio::time::timeout(self.timeout, t.send(req))
                .await
                .map_err(|_| MerchantError::Unknown("timed out".into()))??;
            return Ok((status, ResponseSignature::from_headers(&h), body));
        }
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.base_url, path_query))
            .header("Authorization", auth)
            .header("Accept", "application/json");
        if !body.is_empty() {
            rb = rb.header("Content-Type", "application/json").body(body);
        }
        if let Some(s) = serial {
            rb = rb.header("Wechatpay-Serial", s);
        }
        let resp = rb.send().await.map_err(|e| MerchantError::Unknown(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let sig = ResponseSignature::from_headers(resp.headers());
        let bytes = resp.bytes().await.map_err(|e| MerchantError::Unknown(e.without_url().to_string()))?;
        Ok((status, sig, bytes.to_vec()))
    }

    async fn call(
        &self,
        method: Method,
        path_query: &str,
        body: Option<String>,
        serial: Option<&str>,
    ) -> Result<Answer, MerchantError> {
        if let PlatformMode::Certificates { refresh_every, .. } = &self.mode {
            let due = self.last_refresh.lock().is_none_or(|t| t.elapsed() >= *refresh_every);
            if due {
                self.refresh_certificates().await?;
            }
        }
        let (status, sig, body) = self.raw(method, path_query, body, serial).await?;
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
            return Err(api_error(status, &body));
        }
        Ok(Answer { status, body })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        serial: Option<&str>,
    ) -> Result<T, MerchantError> {
        let body = body.map(serde_json::to_string).transpose()?;
        let a = self.call(method, path, body, serial).await?;
        serde_json::from_slice(&a.body)
            .map_err(|_| MerchantError::Unknown(format!("HTTP {} answer is not the documented shape", a.status)))
    }

    /// Encrypts one sensitive value with the newest platform key; returns it and the serial.
    fn encrypt(&self, v: &Secret) -> Result<(Secret, String), MerchantError> {
        let (serial, key) =
            self.keys.newest().ok_or_else(|| MerchantError::Key("no platform key to encrypt with".into()))?;
        Ok((Secret::new(sign::oaep_encrypt(&key, v.expose())?), serial))
    }

    /// B1.
    pub async fn tokens(&self, out_user_id: &str, organization_id: &str) -> Result<TokenResponse, MerchantError> {
        let req = TokenRequest {
            scene: "WEBSESSION".into(),
            web_init_data: WebInitData { out_user_id: out_user_id.into(), organization_id: organization_id.into() },
        };
        self.json(Method::POST, "/v3/offlinefacemch/tokens", Some(&req), None).await
    }

    /// B2: name and phone are OAEP-encrypted; answers 204.
    pub async fn update_user(
        &self,
        organization_id: &str,
        out_user_id: &str,
        u: &UserUpdate,
    ) -> Result<(), MerchantError> {
        let mut u = u.clone();
        let mut serial = None;
        for f in [&mut u.user_name, &mut u.phone].into_iter().flatten() {
            let (enc, s) = self.encrypt(f)?;
            *f = enc;
            serial = Some(s);
        }
        let path = format!("/v3/offlinefacemch/organizations/{organization_id}/users/out-user-id/{out_user_id}");
        self.call(Method::PATCH, &path, Some(serde_json::to_string(&u)?), serial.as_deref()).await.map(|_| ())
    }

    /// B3.
    pub async fn authinfo(&self, req: &AuthInfoCall) -> Result<AuthInfoAnswer, MerchantError> {
        self.json(Method::POST, "/v3/offlineface/authinfo", Some(req), None).await
    }

    /// B4: identification name, number and phone are OAEP-encrypted.
    pub async fn presign(&self, req: &PresignRequest) -> Result<PresignAnswer, MerchantError> {
        let mut r = req.clone();
        let (n, serial) = self.encrypt(&r.facepay_user.identification_name)?;
        r.facepay_user.identification_name = n;
        r.facepay_user.identification_number = self.encrypt(&r.facepay_user.identification_number)?.0;
        r.facepay_user.phone = self.encrypt(&r.facepay_user.phone)?.0;
        self.json(Method::POST, "/v3/offlineface/contracts/presign", Some(&r), Some(&serial)).await
    }

    /// B5 deduction.
    pub async fn transaction(&self, req: &TransactionRequest) -> Result<Transaction, MerchantError> {
        self.json(Method::POST, "/v3/offlineface/transactions", Some(req), None).await
    }

    /// B5 order query.
    pub async fn query(
        &self,
        out_trade_no: &str,
        sp_mchid: &str,
        sub_mchid: &str,
        business_product_id: u32,
    ) -> Result<Transaction, MerchantError> {
        let path = format!(
            "/v3/offlineface/transactions/out-trade-no/{out_trade_no}?sp_mchid={sp_mchid}&sub_mchid={sub_mchid}&business_product_id={business_product_id}"
        );
        self.json(Method::GET, &path, None::<&()>, None).await
    }
}

/// An error answer: `{code, message}` with its status; anything else is unknown.
fn api_error(status: u16, body: &[u8]) -> MerchantError {
    match serde_json::from_slice::<ApiErrorBody>(body) {
        Ok(b) => MerchantError::Api { status, code: b.code, message: b.message },
        Err(_) => MerchantError::Unknown(format!("HTTP {status} without an error body")),
    }
}
