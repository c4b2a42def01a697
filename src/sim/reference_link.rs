//! One demo terminal's link to the reference backend (SPEC S1, S2): the terminal is
//! enrolled ([`ReferenceStack::enrol`], as an operator does with `facepay backend devices
//! add`) and every request it makes is an HTTP request signed with its credential on the
//! demo's virtual clock, served by the very router `facepay backend serve` runs (the gate,
//! the scoping, the field checks) — in process, since the demo runs under tokio's paused
//! clock and cannot use sockets. Answers map onto errors as `HttpBackend` maps them.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::sim::reference_stack::ReferenceStack;
use crate::terminal::backend::{AuthInfoSource, PaymentBackend};
use crate::terminal::link_sign::DeviceSigner;
use crate::wire::{
    error_from_answer, AuthInfoGrant, AuthInfoRequest, BoxFut, ErrorBody, PaymentRequest, PaymentStatus,
};

pub struct ReferenceLink {
    stack: Arc<ReferenceStack>,
    signer: DeviceSigner,
}

impl ReferenceLink {
    /// Enrols `device_id` in `organization_id` and returns its signed link.
    pub fn enrol(
        stack: &Arc<ReferenceStack>,
        device_id: &str,
        organization_id: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<ReferenceLink>> {
        let now = crate::clock::unix_s(clock.wall());
        let credential = stack.backend.devices().add(device_id, organization_id, None, now)?;
        let signer = DeviceSigner::new(device_id, credential, clock)?;
        Ok(Arc::new(ReferenceLink { stack: stack.clone(), signer }))
    }

    async fn call<T: DeserializeOwned>(&self, method: &str, path: &str, body: Vec<u8>) -> Result<T> {
        self.stack.hop().await?;
        let auth = self.signer.authorization(method, path, &body);
        let mut req = Request::builder().method(method).uri(path).header(crate::wire::auth::HEADER, auth);
        if method == "POST" {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Body::from(body)).map_err(|e| Error::Internal(e.to_string()))?;
        let resp = self.stack.router().oneshot(req).await.map_err(|e| Error::Internal(e.to_string()))?;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.map_err(|e| Error::Network(e.to_string()))?;
        if status.is_success() {
            return Ok(serde_json::from_slice(&bytes)?);
        }
        let code = serde_json::from_slice::<ErrorBody>(&bytes).map(|b| b.code).unwrap_or_default();
        Err(error_from_answer(status.as_u16(), &code))
    }
}

impl AuthInfoSource for ReferenceLink {
    fn fetch(&self, req: AuthInfoRequest) -> BoxFut<'_, Result<AuthInfoGrant>> {
        Box::pin(async move {
            let g = self.call("POST", "/facepay/v1/authinfo", serde_json::to_vec(&req)?).await?;
            self.stack.count_authinfo();
            Ok(g)
        })
    }
}

impl PaymentBackend for ReferenceLink {
    fn submit<'a>(&'a self, req: &'a PaymentRequest) -> BoxFut<'a, Result<PaymentStatus>> {
        Box::pin(async move {
            let st: PaymentStatus = self.call("POST", "/facepay/v1/payments", serde_json::to_vec(&req)?).await?;
            self.stack.count_submission(&req.idempotency_key, &st.payment_id);
            Ok(st)
        })
    }

    fn status(&self, payment_id: String) -> BoxFut<'_, Result<PaymentStatus>> {
        Box::pin(async move {
            if payment_id.is_empty() || !payment_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(Error::invalid_arg("payment_id", "not a payment id of this backend"));
            }
            let st = self.call("GET", &format!("/facepay/v1/payments/{payment_id}"), Vec::new()).await?;
            self.stack.count_poll();
            Ok(st)
        })
    }
}
