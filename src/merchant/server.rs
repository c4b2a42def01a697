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
use axum::{Json, Router};
use parking_lot::Mutex;

use super::client::WechatPayClient;
use super::config::BackendConfig;
use super::engine::Engine;
use super::models::AuthInfoCall;
use super::MerchantError;
use crate::error::Secret;
use crate::wire::{
    AuthInfoGrant, AuthInfoRequest, ErrorBody, PaymentRequest, CODE_IDEMPOTENCY_KEY_REUSED, CODE_ORG_MCH_MISMATCH,
};

pub struct Backend {
    pub cfg: BackendConfig,
    pub client: Arc<WechatPayClient>,
    pub engine: Arc<Engine>,
    cache: Mutex<HashMap<(String, String), (Secret, Instant)>>,
}

impl Backend {
    pub fn new(cfg: BackendConfig, client: Arc<WechatPayClient>, engine: Arc<Engine>) -> Arc<Self> {
        Arc::new(Backend { cfg, client, engine, cache: Mutex::new(HashMap::new()) })
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
    (status, Json(ErrorBody { code: code.into(), message })).into_response()
}

fn map_err(e: MerchantError) -> Response {
    match e {
        MerchantError::Mismatch(m) => err(StatusCode::BAD_REQUEST, CODE_ORG_MCH_MISMATCH, m),
        MerchantError::Api { status: 409, .. } => {
            err(StatusCode::CONFLICT, CODE_IDEMPOTENCY_KEY_REUSED, "same key, other payment".into())
        }
        MerchantError::Api { code, .. } => err(StatusCode::BAD_GATEWAY, &code, "WeChat Pay refused the call".into()),
        other => err(StatusCode::SERVICE_UNAVAILABLE, "UPSTREAM_UNAVAILABLE", other.to_string()),
    }
}

async fn h_authinfo(State(b): State<Arc<Backend>>, Json(req): Json<AuthInfoRequest>) -> Response {
    match b.authinfo(&req).await {
        Ok(g) => Json(g).into_response(),
        Err(e) => map_err(e),
    }
}

async fn h_pay(State(b): State<Arc<Backend>>, Json(req): Json<PaymentRequest>) -> Response {
    if let Err(e) = b.cfg.check_organization(&req.organization_id) {
        return map_err(e);
    }
    if req.amount_fen == 0 {
        return err(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "amount_fen must be positive".into());
    }
    match b.engine.submit(&req) {
        Ok(s) => Json(s).into_response(),
        Err(e) => map_err(e),
    }
}

async fn h_status(State(b): State<Arc<Backend>>, Path(id): Path<String>) -> Response {
    match b.engine.status(&id) {
        Ok(Some((s, _))) => Json(s).into_response(),
        Ok(None) => err(StatusCode::NOT_FOUND, "NO_SUCH_PAYMENT", "no such payment".into()),
        Err(e) => map_err(e),
    }
}

pub fn router(b: Arc<Backend>) -> Router {
    Router::new()
        .route("/facepay/v1/authinfo", post(h_authinfo))
        .route("/facepay/v1/payments", post(h_pay))
        .route("/facepay/v1/payments/{id}", get(h_status))
        .with_state(b)
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
    let resumed = engine.resume_all()?;
    tracing::info!(resumed, listen = %cfg.listen, "reference backend up");
    let backend = Backend::new(cfg, client, engine);
    axum::serve(listener, router(backend)).await.map_err(|e| MerchantError::Config(format!("serve: {e}")))
}
