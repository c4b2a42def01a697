//! The reference merchant backend: the terminal ↔ backend protocol of DESIGN.md
//! "Contracts" (`docs/merchant-protocol.md`) on top of the client and the engine.
//! `POST /facepay/v1/authinfo` proxies B3 with its own cache and TTL (B3 gives none) and
//! the T3.5 check (an organisation of another merchant → 400 `ORG_MCH_MISMATCH`);
//! `POST /facepay/v1/payments` records the payment by idempotency key and deducts
//! asynchronously (B4/B5); `GET /facepay/v1/payments/{id}` answers its state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::client::WechatPayClient;
use super::config::BackendConfig;
use super::devices::Registry;
use super::engine::Engine;
use super::link_auth::{error_answer, gate, AuthedDevice, Gate, VerifiedBody};
use super::link_checks::{check_authinfo, check_payment};
use super::models::AuthInfoCall;
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
}

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
        Arc::new(Backend { cfg, client, engine, gate, cache: Mutex::new(HashMap::new()) })
    }

    /// The enrolled devices (S1).
    pub fn devices(&self) -> &Registry {
        &self.gate.registry
    }
    /// B3 through the cache; T3.5 first.
    pub async fn authinfo(&self, req: &AuthInfoRequest) -> Result<AuthInfoGrant, MerchantError> {
        self.cfg.check_organization(&req.organization_id)?;
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
fn scope(b: &Backend, dev: &AuthedDevice, device_id: &str, org: &str) -> Result<(), Box<Response>> {
    if let Err(e) = b.cfg.check_organization(org) {
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
    if let Err(r) = scope(&b, &dev, &req.device_id, &req.organization_id) {
        return *r;
    }
    match b.authinfo(&req).await {
        Ok(g) => Json(g).into_response(),
        Err(e) => map_err(e),
    }
}

async fn h_pay(
    State(b): State<Arc<Backend>>,
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
    if let Err(r) = scope(&b, &dev, &req.device_id, &req.organization_id) {
        return *r;
    }
    match b.engine.submit(&req) {
        Ok(s) => Json(s).into_response(),
        Err(e) => {
            if matches!(e, MerchantError::Api { status: 409, .. }) {
                tracing::warn!(request_id = %dev.request_id, device_id = %dev.device.device_id, code = CODE_IDEMPOTENCY_KEY_REUSED, "request refused");
            }
            map_err(e)
        }
    }
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
    match b.engine.status(&id) {
        Ok(Some((s, _))) => Json(s).into_response(),
        Ok(None) => refused(&dev, StatusCode::NOT_FOUND, CODE_NOT_FOUND, "no such payment".into()),
        Err(e) => map_err(e),
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
    Router::new().merge(terminal_router(b)).fallback(h_not_found).method_not_allowed_fallback(h_method_not_allowed)
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
    let link = cfg.link.clone();
    let backend = Backend::with_devices(cfg, client, engine, registry);
    super::listener::serve(listener, router(backend), link, tls).await;
    Ok(())
}
