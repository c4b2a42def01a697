//! Errors of the reconciliation module. FaceID answers business errors as HTTP 200 with
//! `Response.Error` (API-NOTES §3); [`ReconError::Api`] carries its code so callers can tell
//! retryable ones (`RequestLimitExceeded*`, `InternalError*`, `FailedOperation.UnKnown`, …) from
//! final ones, and [`ReconError::Uncertain`] marks a call that may have been carried out. No variant ever
//! holds personal data: only codes, field names, dates and counts. Serves R1–R8 as the one
//! error type of every recon operation.

use crate::error::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    /// FaceID answered `Response.Error` (`status` is the HTTP status it came with: 200 for
    /// business errors, 5xx when a gateway or the service failed and still said why).
    #[error("FaceID error {code}: {message} (RequestId {request_id}){}", hint(code))]
    Api { code: String, message: String, request_id: String, status: u16 },
    #[error("network: {0}")]
    Network(String),
    /// The connection could not be opened: the request never left this machine, so a retry
    /// cannot act twice.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A call that creates something (`DetectAuth`) failed in a way that leaves its outcome
    /// unknown: it may have been carried out. Never retried blindly (R1).
    #[error("{action}: outcome unknown ({cause}); it may have been carried out: check before calling it again")]
    Uncertain { action: &'static str, cause: String },
    #[error("HTTP {0} from FaceID")]
    Http(u16),
    /// The answer is not what API-NOTES documents (malformed JSON, a missing required field).
    #[error("malformed FaceID response: {0}")]
    Protocol(String),
    /// A cursor came back a second time: the pull stops, the day stays incomplete.
    #[error("cursor loop: the bill API returned cursor {cursor} twice for {date}; the day is left incomplete")]
    CursorLoop { date: String, cursor: u64 },
    /// A policy refuses the operation now (R5 pull window, bad date, ...).
    #[error("{0}")]
    Refused(String),
    #[error("invalid argument `{field}`: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("{0}")]
    Core(#[from] crate::Error),
}

impl ReconError {
    /// The stable public code (shared with the rest of the crate).
    pub fn code(&self) -> ErrorCode {
        match self {
            ReconError::Api { .. } | ReconError::Http(_) | ReconError::Protocol(_) | ReconError::CursorLoop { .. } => {
                ErrorCode::Backend
            }
            ReconError::Network(_) | ReconError::Connect(_) | ReconError::Uncertain { .. } => ErrorCode::Network,
            ReconError::Refused(_) | ReconError::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            ReconError::Store(_) => ErrorCode::Store,
            ReconError::Core(e) => e.code(),
        }
    }

    /// The FaceID error code, when FaceID answered one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            ReconError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// An API error built in place (tests and fakes): HTTP 200, no RequestId.
    pub fn api(code: &str) -> Self {
        ReconError::Api { code: code.into(), message: String::new(), request_id: String::new(), status: 200 }
    }

    pub fn invalid_arg(field: &'static str, reason: impl Into<String>) -> Self {
        ReconError::InvalidArgument { field, reason: reason.into() }
    }
}

impl From<reqwest::Error> for ReconError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_connect() {
            ReconError::Connect(e.without_url().to_string())
        } else {
            ReconError::Network(e.without_url().to_string())
        }
    }
}

/// What the operator should do about a code that is never retried (shown after the message).
fn hint(code: &str) -> &'static str {
    match code {
        "AuthFailure.TokenFailure" => {
            "; the temporary credentials (TENCENTCLOUD_TOKEN) are invalid or expired: get new ones (not retried)"
        }
        "AuthFailure.SignatureExpire" => "; this machine's clock is more than 5 minutes off: fix it (not retried)",
        "AuthFailure.SecretIdNotFound" | "AuthFailure.SignatureFailure" => {
            "; check TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (not retried)"
        }
        "UnauthorizedOperation.Arrears" => "; the account is in arrears (not retried)",
        _ => "",
    }
}

pub type ReconResult<T> = std::result::Result<T, ReconError>;
