//! Errors, in two layers. [`Error`] is the detailed internal error with `#[from]`
//! conversions; [`Error::code`] maps it onto the stable public [`ErrorCode`] that crosses
//! JNI and the CLI. `Display` never carries personal data (phone, id number, name,
//! authinfo, face token): variants hold codes, operation names and field names only.
//!
//! This is the shared core: it names no product's types. A vendor operation or a verify
//! step travels as its name (`Op::name()`, `Step::name()` in the terminal), not as a type.

use std::time::Duration;

/// Stable numeric error codes. Never renumber: integrators switch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[repr(u32)]
pub enum ErrorCode {
    InvalidArgument = 100,
    InvalidConfig = 101,
    /// T3.5: organisation and merchant do not belong together.
    ConfigMismatch = 102,
    NotInitialised = 200,
    ServiceDisconnected = 201,
    CallTimeout = 202,
    /// T4.4: no feature update answered since init.
    FeaturesNotReady = 203,
    Closed = 204,
    /// T7: a call out of the only legal order.
    OutOfOrder = 300,
    FlowBusy = 301,
    FlowTimeout = 302,
    FlowCancelled = 303,
    NoSuchFlow = 304,
    AuthInfoUnavailable = 400,
    Network = 401,
    Backend = 402,
    Store = 500,
    /// The vendor face service answered with an error code.
    Vendor = 600,
    Internal = 900,
}

impl ErrorCode {
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument `{field}`: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("invalid configuration `{field}`: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    #[error("configuration mismatch: {0}")]
    ConfigMismatch(String),
    #[error("the face service is not initialised: call init first")]
    NotInitialised,
    #[error("the face service is disconnected; reconnecting")]
    ServiceDisconnected,
    /// `op`: the vendor operation's name.
    #[error("face service call {op} did not answer within {after:?}")]
    CallTimeout { op: &'static str, after: Duration },
    #[error("features were not updated since init: verification is refused until the first update answers")]
    FeaturesNotReady,
    #[error("the engine is closed")]
    Closed,
    /// T7: the names of the verify steps expected and called.
    #[error("out of order: expected {expected}, got {got}")]
    OutOfOrder { expected: &'static str, got: &'static str },
    #[error("a flow is already running")]
    FlowBusy,
    #[error("the flow timed out after {0:?}")]
    FlowTimeout(Duration),
    #[error("the flow was cancelled")]
    FlowCancelled,
    #[error("no such flow: {0}")]
    NoSuchFlow(u64),
    #[error("authinfo unavailable: {0}")]
    AuthInfoUnavailable(String),
    #[error("network: {0}")]
    Network(String),
    #[error("backend answered HTTP {status}: {code}")]
    Backend { status: u16, code: String },
    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),
    /// `op`: the vendor operation's name.
    #[error("face service {op} failed: {return_code} err_code={err_code}")]
    Vendor { op: &'static str, return_code: String, err_code: i64 },
    /// A vendor answer with a missing or ill-typed key (never its value: it may be personal).
    #[error("face service {op} answered with a missing or ill-typed `{key}`")]
    BadAnswer { op: &'static str, key: &'static str },
    #[error("internal: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable public code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            Error::InvalidConfig { .. } => ErrorCode::InvalidConfig,
            Error::ConfigMismatch(_) => ErrorCode::ConfigMismatch,
            Error::NotInitialised => ErrorCode::NotInitialised,
            Error::ServiceDisconnected => ErrorCode::ServiceDisconnected,
            Error::CallTimeout { .. } => ErrorCode::CallTimeout,
            Error::FeaturesNotReady => ErrorCode::FeaturesNotReady,
            Error::Closed => ErrorCode::Closed,
            Error::OutOfOrder { .. } => ErrorCode::OutOfOrder,
            Error::FlowBusy => ErrorCode::FlowBusy,
            Error::FlowTimeout(_) => ErrorCode::FlowTimeout,
            Error::FlowCancelled => ErrorCode::FlowCancelled,
            Error::NoSuchFlow(_) => ErrorCode::NoSuchFlow,
            Error::AuthInfoUnavailable(_) => ErrorCode::AuthInfoUnavailable,
            Error::Network(_) => ErrorCode::Network,
            Error::Backend { .. } => ErrorCode::Backend,
            Error::Store(_) => ErrorCode::Store,
            Error::Vendor { .. } | Error::BadAnswer { .. } => ErrorCode::Vendor,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn invalid_arg(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { field, reason: reason.into() }
    }

    pub fn invalid_config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig { field, reason: reason.into() }
    }
}

#[cfg(feature = "http")]
impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        // reqwest's Display may carry the URL but never a body: no personal data.
        Error::Network(e.without_url().to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        // serde_json's message names the position and the expected type, never the value.
        Error::Internal(format!("json: {e}"))
    }
}

/// A secret or personal string (authinfo, face token, phone, name). `Debug` and
/// `Display` print a fixed mask, so it can never reach a log line by accident.
#[derive(Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The raw value: only for the wire and the store, never for logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(***{})", self.0.len())
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("13800138000");
        assert!(!format!("{s:?} {s}").contains("1380"));
        assert_eq!(s.expose(), "13800138000");
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(Error::FlowBusy.code().as_u32(), 301);
        let e = Error::OutOfOrder { expected: "Recognition", got: "Finish" };
        assert_eq!(e.code(), ErrorCode::OutOfOrder);
        assert_eq!(e.to_string(), "out of order: expected Recognition, got Finish");
    }
}
