//! The terminal ↔ merchant backend protocol's wire types (DESIGN "Contracts",
//! `docs/merchant-protocol.md`), shared by both sides: the terminal's HTTP client and
//! outbox, the reference backend and the in-process backend double. Also the boxed-future
//! alias every async trait here uses. Part of the shared core: names no product's types.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Secret};

#[cfg(any(feature = "terminal", feature = "merchant"))]
pub mod auth;

/// A boxed, sendable future: the return type of every async trait method here.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Backend code of T3.5: the organisation does not belong to the merchant.
pub const CODE_ORG_MCH_MISMATCH: &str = "ORG_MCH_MISMATCH";
/// Backend code: an idempotency key was reused with a different request body.
pub const CODE_IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
/// Backend code (S2): a field is missing, malformed, out of bounds or not JSON at all.
pub const CODE_PARAM_ERROR: &str = "PARAM_ERROR";
/// Backend code: no such payment (for this device), or no such path.
pub const CODE_NOT_FOUND: &str = "NOT_FOUND";
/// Backend code (S2): the device may not act for this organisation or device id.
pub const CODE_FORBIDDEN: &str = "FORBIDDEN";
/// Backend code: the order number is already used by another payment.
pub const CODE_ORDER_NO_USED: &str = "ORDER_NO_USED";
/// Backend codes of the transport limits (S3).
pub const CODE_METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
pub const CODE_PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
pub const CODE_URI_TOO_LONG: &str = "URI_TOO_LONG";
pub const CODE_UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
pub const CODE_HEADERS_TOO_LARGE: &str = "HEADERS_TOO_LARGE";
pub const CODE_RATELIMIT_EXCEEDED: &str = "RATELIMIT_EXCEEDED";
pub const CODE_REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";

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

/// The state of a payment as the backend reports it. Its one string form ([`as_str`],
/// [`FromStr`]) is used on the wire, in every store and in every summary; an unknown
/// string is an error, never a default.
///
/// [`as_str`]: PaymentState::as_str
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PaymentState {
    /// Accepted, deduction under way (B5 retries happen behind it).
    Processing,
    /// Paid (B5 SUCCESS).
    Paid,
    /// Final failure: the operator must look (B5 PARAM_ERROR / INVALID_REQUEST, …).
    Failed,
}

impl PaymentState {
    pub const ALL: [PaymentState; 3] = [PaymentState::Processing, PaymentState::Paid, PaymentState::Failed];

    pub fn is_final(self) -> bool {
        !matches!(self, PaymentState::Processing)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Processing => "PROCESSING",
            PaymentState::Paid => "PAID",
            PaymentState::Failed => "FAILED",
        }
    }
}

impl fmt::Display for PaymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaymentState {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        PaymentState::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::Internal(format!("unknown payment state {s:?}")))
    }
}

impl Serialize for PaymentState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PaymentState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|_| serde::de::Error::unknown_variant(&s, &["PROCESSING", "PAID", "FAILED"]))
    }
}

/// Stores keep the same string form; an unknown one is a read error, never a default.
impl rusqlite::types::FromSql for PaymentState {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        v.as_str()?.parse().map_err(|e: Error| rusqlite::types::FromSqlError::Other(e.to_string().into()))
    }
}

impl rusqlite::types::ToSql for PaymentState {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// `POST /facepay/v1/payments` and `GET /facepay/v1/payments/{payment_id}` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentStatus {
    pub payment_id: String,
    pub state: PaymentState,
}

/// The error body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// The error for a non-2xx answer with this status and backend code (the terminal's HTTP
/// client and the in-process backend double speak alike through it).
pub fn error_from_answer(status: u16, code: &str) -> Error {
    if status == 400 && code == CODE_ORG_MCH_MISMATCH {
        Error::ConfigMismatch(format!(
            "the organisation does not belong to the merchant ({CODE_ORG_MCH_MISMATCH}): fix organization_id or mch_id"
        ))
    } else {
        Error::Backend { status, code: code.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_state_has_one_string_form_and_refuses_unknown_ones() {
        for s in PaymentState::ALL {
            assert_eq!(s.as_str().parse::<PaymentState>().expect("round trip"), s);
            let json = serde_json::to_string(&s).expect("serialise");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<PaymentState>(&json).expect("deserialise"), s);
        }
        assert!("PENDING".parse::<PaymentState>().is_err());
        assert!("paid".parse::<PaymentState>().is_err());
        assert!(serde_json::from_str::<PaymentState>("\"SOMETHING\"").is_err());
    }
}
