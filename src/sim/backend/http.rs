//! The simulated backend over HTTP (feature `mock`): the same [`SimBackend`] state behind
//! the protocol's three routes, for tests that go through the terminal's real HTTP client.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::{Refusal, SimBackend};
use crate::error::{Error, Result};
use crate::wire::{AuthInfoRequest, ErrorBody, PaymentRequest};

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).expect("refusal statuses are valid HTTP statuses");
        let body = ErrorBody { code: self.code.to_string(), message: format!("simulated backend: {}", self.code) };
        (status, Json(body)).into_response()
    }
}

async fn h_authinfo(State(b): State<Arc<SimBackend>>, Json(req): Json<AuthInfoRequest>) -> Response {
    b.do_authinfo(req).await.map(Json).into_response()
}

async fn h_submit(State(b): State<Arc<SimBackend>>, Json(req): Json<PaymentRequest>) -> Response {
    b.do_submit(&req).await.map(Json).into_response()
}

async fn h_status(State(b): State<Arc<SimBackend>>, Path(id): Path<String>) -> Response {
    b.do_status(id).await.map(Json).into_response()
}

/// Serves `backend` over HTTP at `addr` (port 0 = any free port). Returns the bound
/// address and the server task (abort it to stop).
pub async fn serve(backend: Arc<SimBackend>, addr: SocketAddr) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new()
        .route("/facepay/v1/authinfo", post(h_authinfo))
        .route("/facepay/v1/payments", post(h_submit))
        .route("/facepay/v1/payments/{payment_id}", get(h_status))
        .with_state(backend);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::invalid_config("addr", format!("cannot bind {addr}: {e}")))?;
    let local = listener.local_addr().map_err(|e| Error::Internal(format!("local_addr: {e}")))?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "sim backend server stopped");
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::ErrorCode;
    use crate::sim::backend::tests::{auth, pay};
    use crate::sim::backend::SimBackendConfig;
    use crate::terminal::backend::{AuthInfoSource, PaymentBackend};
    use crate::terminal::backend_http::{is_retryable, HttpBackend};
    use crate::wire::{PaymentState, CODE_IDEMPOTENCY_KEY_REUSED};

    async fn served(cfg: SimBackendConfig) -> (Arc<SimBackend>, HttpBackend, tokio::task::JoinHandle<()>) {
        let b = SimBackend::new(cfg);
        let (addr, task) = serve(b.clone(), "127.0.0.1:0".parse().expect("addr")).await.expect("serve");
        let client = HttpBackend::new(&format!("http://{addr}"), Duration::from_secs(10)).expect("client");
        (b, client, task)
    }

    #[tokio::test]
    async fn http_client_success_paths() {
        let (b, c, task) = served(SimBackendConfig { processing_polls: 1, ..SimBackendConfig::default() }).await;
        let g = c.fetch(auth("org-canteen-1")).await.expect("authinfo");
        assert_eq!(g.expires_in, 3600);
        assert!(!g.authinfo.is_empty());
        let p = c.submit(&pay("k1", 100)).await.expect("submit");
        assert_eq!(p.state, PaymentState::Processing);
        assert_eq!(c.submit(&pay("k1", 100)).await.expect("repeat").payment_id, p.payment_id);
        assert_eq!(c.status(p.payment_id.clone()).await.expect("status").state, PaymentState::Paid);
        let s = b.stats();
        assert_eq!((s.authinfo_fetches, s.payments_created, s.duplicates, s.paid), (1, 1, 1, 1));
        task.abort();
    }

    #[tokio::test]
    async fn http_client_maps_backend_errors() {
        let (b, c, task) = served(SimBackendConfig::default()).await;
        let e = c.fetch(auth("org-elsewhere")).await.expect_err("mismatch");
        assert_eq!(e.code(), ErrorCode::ConfigMismatch);
        assert!(!is_retryable(&e));
        c.submit(&pay("k1", 100)).await.expect("submit");
        let e = c.submit(&pay("k1", 101)).await.expect_err("reuse");
        assert!(matches!(e, Error::Backend { status: 409, ref code } if code == CODE_IDEMPOTENCY_KEY_REUSED));
        let e = c.status("missing".into()).await.expect_err("404");
        assert!(matches!(e, Error::Backend { status: 404, ref code } if code == "NOT_FOUND"));
        b.set_online(false);
        let e = c.submit(&pay("k2", 100)).await.expect_err("offline");
        assert!(matches!(e, Error::Backend { status: 503, .. }), "{e:?}");
        assert!(is_retryable(&e));
        task.abort();
    }

    #[tokio::test]
    async fn http_client_network_error_is_retryable() {
        // Bind then drop a listener: nothing listens on that port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let c = HttpBackend::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5)).expect("client");
        let e = c.submit(&pay("k1", 1)).await.expect_err("refused");
        assert_eq!(e.code(), ErrorCode::Network);
        assert!(is_retryable(&e));
        assert!(!format!("{e}").contains("tok-k1"));
    }
}
