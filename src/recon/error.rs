//! Errors of the reconciliation module. FaceID answers business errors as HTTP 200 with
//! `Response.Error` (API-NOTES §3); [`ReconError::Api`] carries its code so callers can tell
//! retryable ones (`RequestLimitExceeded*`, `InternalError`) from final ones. No variant ever
//! holds personal data: only codes, field names, dates and counts. Serves R1–R8 as the one
//! error type of every recon operation.

use crate::error::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    /// FaceID answered `Response.Error`.
    #[error("FaceID error {code}: {message} (RequestId {request_id})")]
    Api { code: String, message: String, request_id: String },
    #[error("network: {0}")]
    Network(String),
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
            ReconError::Network(_) => ErrorCode::Network,
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

    pub fn invalid_arg(field: &'static str, reason: impl Into<String>) -> Self {
        ReconError::InvalidArgument { field, reason: reason.into() }
    }
}

impl From<reqwest::Error> for ReconError {
    fn from(e: reqwest::Error) -> Self {
        ReconError::Network(e.without_url().to_string())
    }
}

pub type ReconResult<T> = std::result::Result<T, ReconError>;
