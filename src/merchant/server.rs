//! The reference merchant backend: the terminal ↔ backend protocol of DESIGN.md
//! "Contracts" (`docs/merchant-protocol.md`) on top of the client and the engine.
//! `POST /facepay/v1/authinfo` proxies B3 with its own cache and TTL (B3 gives none) and
//! the T3.5 check (an organisation of another merchant → 400 `ORG_MCH_MISMATCH`; the
//! configured list decides, and with `query_organizations` an organisation not in it is
//! asked of WeChat Pay's organisations query, cached for an hour); `POST /facepay/v1/payments` records the
//! payment by idempotency key with the terminal's address as `scene_info.device_ip` (the
//! TCP peer as the backend sees it) and deducts asynchronously (B4/B5), refusing a user
//! whose contract is known to be terminated (403 `CONTRACT_TERMINATED`, B7);
//! `GET /facepay/v1/payments/{id}` answers its state and `debt_state` (B5.2). On
//! `notify_path` it receives `FACEPAY.USER_STATE_CHANGE` (B7): verified with the platform
//! keys, decrypted with the APIv3 key, applied once per notification id; a refusal answers
//! `{code: FAIL}` with a 4xx/5xx so that WeChat Pay sends it again, and is logged without
//! personal data. Every terminal route sits behind the gate of `link_auth` (S1–S4: a
//! signed request of an enrolled device, bounded, rate-limited), answers only within the
//! device's own organisation and payments (S2), checks every field (`link_checks`), and
//! speaks `{code, message}` on every non-2xx answer, fallbacks included.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::client::WechatPayClient;
use super::config::BackendConfig;
use super::contracts::{self, ContractRecord, CODE_CONTRACT_TERMINATED, STATE_TERMINATED};
use super::devices::Registry;
use super::engine::Engine;
use super::link_auth::{error_answer, gate, AuthedDevice, Gate, VerifiedBody};
use super::link_checks::{check_authinfo, check_payment};
use super::models::AuthInfoCall;
use super::notify::{self, NotifyError};
use super::sign::{self, ResponseSignature};
use super::MerchantError;
use crate::error::Secret;
use crate::store::StorePath;
use crate::wire::{
    AuthInfoGrant, AuthInfoRequest, PaymentRequest, CODE_FORBIDDEN, CODE_IDEMPOTENCY_KEY_REUSED,
    CODE_METHOD_NOT_ALLOWED, CODE_NOT_FOUND, CODE_ORG_MCH_MISMATCH, CODE_PARAM_ERROR,
};

pub struct Backend {
    pub cfg: BackendConfig,
    pub client: Arc<WechatPayClient>,
    pub engine: Arc<Engine>,
    /// S1: enrolled devices and the gate in front of every terminal route.
    pub gate: Arc<Gate>,
    cache: Mutex<HashMap<(String, String), (Secret, Instant)>>,
    /// T3.5 answers of the organisations query: organisation → (belongs, when asked).
    orgs: Mutex<HashMap<String, (bool, Instant)>>,
}

/// How long an organisations-query answer is trusted.
const ORG_CACHE: Duration = Duration::from_secs(3600);

impl Backend {
    /// A backend whose device registry is in memory and empty (tests enrol through
    /// [`Backend::devices`]); every unenrolled request is refused.
    pub fn new(cfg: BackendConfig, client: Arc<WechatPayClient>, engine: Arc<Engine>) -> Arc<Self> {
        let registry = Arc::new(Registry::open(&StorePath::Memory).expect("in-memory SQLite opens"));
        Self::with_devices(cfg, client, engine, registry)
    }

    /// A backend checking terminals against `registry` (S1).
    pub fn with_devices(
        cfg: BackendConfig,
        client: Arc<WechatPayClient>,
        engine: Arc<Engine>,
        registry: Arc<Registry>,
    ) -> Arc<Self> {
        let gate = Gate::new(registry, engine.clock().clone(), cfg.link.clone());
        Arc::new(Backend {
            cfg,
            client,
            engine,
            gate,
            cache: Mutex::new(HashMap::new()),
            orgs: Mutex::new(HashMap::new()),
        })
    }

    /// The enrolled devices (S1).
    pub fn devices(&self) -> &Registry {
        &self.gate.registry
    }

    /// T3.5: the configured list decides; with `query_organizations` an organisation not
    /// in it is asked of WeChat Pay (cached). A query that fails is not a mismatch: the
    /// caller may retry.
    pub async fn check_organization(&self, org: &str) -> Result<(), MerchantError> {
        if self.cfg.check_organization(org).is_ok() || !self.cfg.query_organizations {
            return self.cfg.check_organization(org);
        }
        let cached = self.orgs.lock().get(org).filter(|(_, at)| at.elapsed() < ORG_CACHE).map(|(b, _)| *b);
        let belongs = match cached {
            Some(b) => b,
            None => {
                let b = self
                    .client
                    .query_organization(org)
                    .await
                    .map_err(|_| MerchantError::Unknown("the organisations query failed; try again".into()))?;
                let b = b.is_some_and(|o| o.organization_id == org);
                self.orgs.lock().insert(org.to_string(), (b, Instant::now()));
                b
            }
        };
        if belongs {
            Ok(())
        } else {
            self.cfg.check_organization(org)
        }
    }

    /// B7: whether the user's contract is known to be terminated.
    pub fn terminated(&self, organization_id: &str, out_user_id: &str) -> Result<bool, MerchantError> {
        let st = self.engine.with_store(|s| contracts::state(s.conn(), organization_id, out_user_id))?;
        Ok(st.as_deref() == Some(STATE_TERMINATED))
    }

    /// B7: one notification, verified, decrypted and applied once. `Ok(false)`: a replay.
    pub async fn notification(&self, headers: &HeaderMap, body: &[u8]) -> Result<bool, NotificationRefused> {
        let key = self.cfg.platform.apiv3_key().ok_or(NotificationRefused::NotConfigured)?;
        let sig = ResponseSignature::from_headers(headers);
        let key = key.expose().as_bytes();
        let mut opened = notify::open(&self.client.keys, key, &sig, body, sign::unix_now());
        if opened == Err(NotifyError::UnknownSerial) && self.client.refresh_certificates().await.is_ok_and(|n| n > 0) {
            opened = notify::open(&self.client.keys, key, &sig, body, sign::unix_now());
        }
        let (env, change) = opened.map_err(NotificationRefused::Refused)?;
        if self.engine.with_store(|s| contracts::applied(s.conn(), &env.id))? {
            return Ok(false);
        }
        // The documented resource names the user, not the new state: read it (B7).
        let state = match change.contract_state {
            Some(s) => s,
            None => self
                .client
                .query_user(&change.organization_id, &change.out_user_id)
                .await
                .map_err(|_| NotificationRefused::Later)?
                .contract_state
                .ok_or(NotificationRefused::Later)?,
        };
        let rec = ContractRecord {
            organization_id: change.organization_id,
            out_user_id: change.out_user_id,
            user_id: Some(change.user_id),
            contract_id: (!change.contract_id.is_empty()).then_some(change.contract_id),
            contract_state: state,
            updated_at: sign::unix_now(),
        };
        Ok(self.engine.with_store(|s| contracts::apply_once(s.conn_mut(), &env.id, &env.event_type, &rec))?)
    }

    /// B3 through the cache; T3.5 first.
    pub async fn authinfo(&self, req: &AuthInfoRequest) -> Result<AuthInfoGrant, MerchantError> {
        self.check_organization(&req.organization_id).await?;
        let key = (req.device_id.clone(), req.organization_id.clone());
        let ttl = Duration::from_secs(self.cfg.authinfo_ttl_s);
        let now = self.engine.clock().now();
        if let Some((a, at)) = self.cache.lock().get(&key) {
            let left = ttl.saturating_sub(now.saturating_duration_since(*at));
            // A terminal refreshes at half life (T3.2): past half its TTL the cached
            // authinfo is fetched anew, so each refresh gets a full TTL (handing out the
            // remainder would halve every refresh interval until it ran out).
            if left > ttl / 2 {
                return Ok(AuthInfoGrant { authinfo: a.clone(), expires_in: left.as_secs() });
            }
        }
        let call = AuthInfoCall {
            sp_appid: self.cfg.sp_appid.clone(),
            sub_mchid: self.cfg.sub_mchid.clone(),
            device_id: req.device_id.clone(),
            raw_data: req.raw_data.clone(),
            organization_id: req.organization_id.clone(),
            sub_appid: None,
        };
        let a = self.client.authinfo(&call).await?;
        self.cache.lock().insert(key, (a.authinfo.clone(), self.engine.clock().now()));
        Ok(AuthInfoGrant { authinfo: a.authinfo, expires_in: ttl.as_secs() })
    }
}

/// Why a notification was not applied.
#[derive(Debug)]
pub enum NotificationRefused {
    /// Bad signature, stale, wrong APIv3 key, malformed, unknown event.
    Refused(NotifyError),
    /// No APIv3 key configured (`platform.apiv3_key`).
    NotConfigured,
    /// The user's state could not be read now, or the store failed: send it again.
    Later,
}

impl From<MerchantError> for NotificationRefused {
    fn from(_: MerchantError) -> Self {
        NotificationRefused::Later
    }
}

fn err(status: StatusCode, code: &str, message: String) -> Response {
    error_answer(status, code, message)
}

fn map_err(e: MerchantError) -> Response {
    match e {
        MerchantError::Mismatch(m) => err(StatusCode::BAD_REQUEST, CODE_ORG_MCH_MISMATCH, m),
        MerchantError::Api { status: 409, .. } => {
            err(StatusCode::CONFLICT, CODE_IDEMPOTENCY_KEY_REUSED, "same key, other payment".into())
        }
        MerchantError::Api { code, .. } => err(StatusCode::BAD_GATEWAY, &code, "WeChat Pay refused the call".into()),
        other => {
            tracing::warn!(error = %other, "upstream or store trouble");
            err(StatusCode::SERVICE_UNAVAILABLE, "UPSTREAM_UNAVAILABLE", "try again later".into())
        }
    }
}

/// A refusal of a handler (S4: logged with device, code and request id, nothing else).
fn refused(dev: &AuthedDevice, status: StatusCode, code: &str, message: String) -> Response {
    tracing::warn!(request_id = %dev.request_id, device_id = %dev.device.device_id, code, status = status.as_u16(), "request refused");
    err(status, code, message)
}

/// The body as JSON, or `PARAM_ERROR` (never the framework's text/plain rejection).
fn parse<T: DeserializeOwned>(dev: &AuthedDevice, body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "a field is missing or has the wrong type",
            _ => "the body is not valid JSON",
        };
        Box::new(refused(dev, StatusCode::BAD_REQUEST, CODE_PARAM_ERROR, what.into()))
    })
}

/// The device's organisation, after T3.5 (S2).
async fn scope(b: &Backend, dev: &AuthedDevice, device_id: &str, org: &str) -> Result<(), Box<Response>> {
    if let Err(e) = b.check_organization(org).await {
        tracing::warn!(request_id = %dev.request_id, device_id = %dev.device.device_id, code = CODE_ORG_MCH_MISMATCH, "request refused");
        return Err(Box::new(map_err(e)));
    }
    if device_id != dev.device.device_id || org != dev.device.organization_id {
        return Err(Box::new(refused(
            dev,
            StatusCode::FORBIDDEN,
            CODE_FORBIDDEN,
            "a device acts only with its own device_id and organisation".into(),
        )));
    }
    Ok(())
}

async fn h_authinfo(
    State(b): State<Arc<Backend>>,
    Extension(dev): Extension<AuthedDevice>,
    Extension(VerifiedBody(body)): Extension<VerifiedBody>,
) -> Response {
    let req: AuthInfoRequest = match parse(&dev, &body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    if let Err(m) = check_authinfo(&req) {
        return refused(&dev, StatusCode::BAD_REQUEST, CODE_PARAM_ERROR, m);
    }
    if let Err(r) = scope(&b, &dev, &req.device_id, &req.organization_id).await {
        return *r;
    }
    match b.authinfo(&req).await {
        Ok(g) => Json(g).into_response(),
        Err(e) => map_err(e),
    }
}

async fn h_pay(
    State(b): State<Arc<Backend>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(dev): Extension<AuthedDevice>,
    Extension(VerifiedBody(body)): Extension<VerifiedBody>,
) -> Response {
    let req: PaymentRequest = match parse(&dev, &body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let max = dev.device.max_amount_fen.unwrap_or(b.cfg.link.max_amount_fen);
    if let Err(m) = check_payment(&req, max) {
        return refused(&dev, StatusCode::BAD_REQUEST, CODE_PARAM_ERROR, m);
    }
    if let Err(r) = scope(&b, &dev, &req.device_id, &req.organization_id).await {
        return *r;
    }
    // A payment already recorded answers its own state (a terminal resending after a lost
    // answer must learn PAID, not a refusal); only a new one is refused.
    let known = match b.engine.knows_key(&req.idempotency_key) {
        Ok(k) => k,
        Err(e) => return map_err(e),
    };
    match b.terminated(&req.organization_id, &req.out_user_id).map(|t| t && !known) {
        Ok(true) => {
            return refused(
                &dev,
                StatusCode::FORBIDDEN,
                CODE_CONTRACT_TERMINATED,
                "the user's contract is terminated (B7)".into(),
            );
        }
        Ok(false) => {}
        Err(e) => return map_err(e),
    }
    match b.engine.submit_from(&req, peer.map(|p| p.0 .0.ip())) {
        Ok(s) => Json(s).into_response(),
        Err(e) => {
            if matches!(e, MerchantError::Api { status: 409, .. }) {
                tracing::warn!(request_id = %dev.request_id, device_id = %dev.device.device_id, code = CODE_IDEMPOTENCY_KEY_REUSED, "request refused");
            }
            map_err(e)
        }
    }
}

/// The payment's state, and its `debt_state` once paid (B5.2).
#[derive(serde::Serialize)]
struct StatusAnswer {
    #[serde(flatten)]
    status: crate::wire::PaymentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    debt_state: Option<String>,
}

async fn h_status(
    State(b): State<Arc<Backend>>,
    Extension(dev): Extension<AuthedDevice>,
    Path(id): Path<String>,
) -> Response {
    // S2: another device's payment is as unknown as a payment that does not exist.
    match b.engine.owner(&id) {
        Ok(Some(owner)) if owner == dev.device.device_id => {}
        Ok(_) => return refused(&dev, StatusCode::NOT_FOUND, CODE_NOT_FOUND, "no such payment".into()),
        Err(e) => return map_err(e),
    }
    match b.engine.details(&id) {
        Ok(Some(d)) => Json(StatusAnswer {
            status: crate::wire::PaymentStatus { payment_id: d.payment_id, state: d.state },
            debt_state: d.debt_state,
        })
        .into_response(),
        Ok(None) => refused(&dev, StatusCode::NOT_FOUND, CODE_NOT_FOUND, "no such payment".into()),
        Err(e) => map_err(e),
    }
}

/// B7: WeChat Pay retries a notification until it gets a 2xx; a refusal answers the
/// documented `{code: "FAIL", message}`.
async fn h_notify(State(b): State<Arc<Backend>>, headers: HeaderMap, body: Bytes) -> Response {
    let fail =
        |status: StatusCode, m: &str| (status, Json(serde_json::json!({"code": "FAIL", "message": m}))).into_response();
    match b.notification(&headers, &body).await {
        Ok(fresh) => {
            tracing::info!(fresh, "contract notification handled (B7)");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(NotificationRefused::Refused(e)) => {
            // The reason only: never a field of the resource.
            tracing::warn!(reason = %e, "notification refused (B7)");
            let status = match e {
                NotifyError::Signature(_) | NotifyError::UnknownSerial => StatusCode::UNAUTHORIZED,
                _ => StatusCode::BAD_REQUEST,
            };
            fail(status, &e.to_string())
        }
        Err(NotificationRefused::NotConfigured) => {
            tracing::warn!("notification refused: platform.apiv3_key is not configured (B7)");
            fail(StatusCode::INTERNAL_SERVER_ERROR, "notifications are not configured")
        }
        Err(NotificationRefused::Later) => {
            tracing::warn!("notification not applied now (user query or store failed): WeChat Pay will send it again");
            fail(StatusCode::INTERNAL_SERVER_ERROR, "try again later")
        }
    }
}

async fn h_not_found() -> Response {
    err(StatusCode::NOT_FOUND, CODE_NOT_FOUND, "no such path".into())
}

async fn h_method_not_allowed() -> Response {
    err(StatusCode::METHOD_NOT_ALLOWED, CODE_METHOD_NOT_ALLOWED, "method not allowed on this path".into())
}

/// The terminal routes, each behind the gate (S1–S3).
pub fn terminal_router(b: Arc<Backend>) -> Router {
    Router::new()
        .route("/facepay/v1/authinfo", post(h_authinfo))
        .route("/facepay/v1/payments", post(h_pay))
        .route("/facepay/v1/payments/{id}", get(h_status))
        .route_layer(axum::middleware::from_fn_with_state(b.gate.clone(), gate))
        .with_state(b)
}

/// The terminal routes with the gate replaced by one that trusts every request as from
/// `device` (no signature, window, nonce or rate check): for `facepay bench link`'s
/// "authentication off" figure only, never served (feature `mock`, not `backend serve`).
#[cfg(feature = "mock")]
pub fn trusting_router_for_bench(b: Arc<Backend>, device: super::devices::Device) -> Router {
    let trust = move |req: axum::extract::Request, next: axum::middleware::Next| {
        let device = device.clone();
        async move {
            let (mut parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            parts.extensions.insert(AuthedDevice { device, request_id: "bench".into() });
            parts.extensions.insert(VerifiedBody(bytes.clone()));
            next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
        }
    };
    Router::new()
        .route("/facepay/v1/authinfo", post(h_authinfo))
        .route("/facepay/v1/payments", post(h_pay))
        .route("/facepay/v1/payments/{id}", get(h_status))
        .route_layer(axum::middleware::from_fn(trust))
        .with_state(b)
}

/// Every route of the reference backend; unknown paths and methods answer `{code, message}`.
pub fn router(b: Arc<Backend>) -> Router {
    // B7: WeChat Pay signs its notifications itself (verified in `notification`): not
    // behind the terminal gate.
    let notify = Router::new().route(&b.cfg.notify_path, post(h_notify)).with_state(b.clone());
    Router::new()
        .merge(terminal_router(b))
        .merge(notify)
        .fallback(h_not_found)
        .method_not_allowed_fallback(h_method_not_allowed)
}

/// `facepay backend serve`: loads the config, resumes every open payment (B5 after a
/// crash: unanswered attempts are queried first) and serves until killed.
pub async fn serve(config: &std::path::Path) -> Result<(), MerchantError> {
    let cfg = BackendConfig::load(config)?;
    let client = Arc::new(cfg.client()?);
    let clock = Arc::new(crate::clock::ScaledClock { ms_per_s: cfg.retry_delay_ms_per_s });
    let engine = Engine::open(
        &crate::store::StorePath::File(cfg.db_path.clone()),
        client.clone(),
        clock,
        cfg.deduction_params(),
    )?;
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| MerchantError::Config(format!("listen {}: {e}", cfg.listen)))?;
    let registry = Arc::new(Registry::open(&StorePath::File(cfg.db_path.clone()))?);
    let tls = match &cfg.link.tls {
        Some(t) => Some(super::listener::tls_acceptor(&t.cert_file, &t.key_file)?),
        None => None,
    };
    let resumed = engine.resume_all()?;
    if tls.is_none() {
        let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
        tracing::warn!(
            listen = %cfg.listen,
            loopback,
            "plain HTTP (link.plain_http): only for a loopback listener or behind a TLS-terminating proxy (S3)"
        );
    }
    tracing::info!(resumed, listen = %cfg.listen, tls = tls.is_some(), "reference backend up");
    if cfg.platform.apiv3_key().is_none() {
        tracing::warn!(path = %cfg.notify_path, "platform.apiv3_key is not set: contract notifications (B7) will be refused");
    }
    let link = cfg.link.clone();
    let backend = Backend::with_devices(cfg, client, engine, registry);
    super::listener::serve(listener, router(backend), link, tls).await;
    Ok(())
}
