//! The terminal ↔ merchant backend protocol (DESIGN.md "Contracts", documented in
//! `docs/merchant-protocol.md`): the wire types and the two traits the engine uses.
//! The merchant private key never reaches a terminal: authinfo (B3) and payment
//! credentials only go through the merchant backend.

use serde::{Deserialize, Serialize};

use crate::error::{Result, Secret};
use crate::terminal::face_service::BoxFut;

/// `POST /facepay/v1/authinfo` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthInfoRequest {
    pub device_id: String,
    pub raw_data: String,
    pub organization_id: String,
}

/// `POST /facepay/v1/authinfo` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthInfoGrant {
    pub authinfo: Secret,
    /// Seconds; the backend keeps its own TTL (default 3600) since B3 returns none.
    pub expires_in: u64,
}

/// `POST /facepay/v1/payments` request. The same `idempotency_key` always names the same
/// payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequest {
    pub idempotency_key: String,
    pub face_token: Secret,
    pub user_id: String,
    pub out_user_id: String,
    pub amount_fen: u64,
    pub organization_id: String,
    pub device_id: String,
}

/// The state of a payment as the backend reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentState {
    /// Accepted, deduction under way (B5 retries happen behind it).
    Processing,
    /// Paid (B5 SUCCESS).
    Paid,
    /// Final failure: the operator must look (B5 PARAM_ERROR / INVALID_REQUEST, …).
    Failed,
}

impl PaymentState {
    pub fn is_final(self) -> bool {
        !matches!(self, PaymentState::Processing)
    }
}

/// `POST /facepay/v1/payments` and `GET /facepay/v1/payments/{payment_id}` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentStatus {
    pub payment_id: String,
    pub state: PaymentState,
}

/// Where the engine gets authinfo (T3). An error of code `ConfigMismatch` (T3.5) is final:
/// the engine reports it and does not retry.
pub trait AuthInfoSource: Send + Sync + 'static {
    fn fetch(&self, req: AuthInfoRequest) -> BoxFut<'_, Result<AuthInfoGrant>>;
}

/// Where the outbox delivers payment credentials.
pub trait PaymentBackend: Send + Sync + 'static {
    fn submit(&self, req: PaymentRequest) -> BoxFut<'_, Result<PaymentStatus>>;
    fn status(&self, payment_id: String) -> BoxFut<'_, Result<PaymentStatus>>;
}
