//! The reference backend's gate in front of every terminal route (SPEC S1, S3, S4): it
//! bounds the request (URI 414, headers 431, media type 415, body 413), authenticates the
//! device (the signed `Authorization` header of `wire::auth`: window ±300 s, enrolled and
//! not revoked, constant-time signature check, nonce new within the window), applies the
//! per-device rate limit (429 with `Retry-After`) and hands the handler the
//! [`AuthedDevice`] and the body bytes. Every refusal answers `{code, message}` and is
//! logged with the device id (when known), the code and the request id — never the
//! header, a credential or the body.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use parking_lot::Mutex;

use super::devices::{Device, Lookup, Registry};
use super::link_config::LinkConfig;
use crate::clock::{unix_s, Clock};
use crate::wire::auth::{self, Refusal};
use crate::wire::{
    ErrorBody, CODE_HEADERS_TOO_LARGE, CODE_PAYLOAD_TOO_LARGE, CODE_RATELIMIT_EXCEEDED, CODE_REQUEST_TIMEOUT,
    CODE_UNSUPPORTED_MEDIA_TYPE, CODE_URI_TOO_LONG,
};

/// Remembered nonces beyond this many are refused as a flood (503) rather than grown.
const MAX_NONCES: usize = 1_000_000;

/// The authenticated device of one request, for the handlers (S2 scoping).
#[derive(Debug, Clone)]
pub struct AuthedDevice {
    pub device: Device,
    pub request_id: String,
}

/// The request id of one request (also on refused ones), for log lines and `Request-ID`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The verified body bytes.
#[derive(Debug, Clone)]
pub struct VerifiedBody(pub Bytes);

pub struct Gate {
    pub registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    limits: LinkConfig,
    nonces: Mutex<HashMap<(String, String), u64>>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    seq: AtomicU64,
}

/// The one error shape of every non-2xx answer (`docs/merchant-protocol.md` "Errors").
pub fn error_answer(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(ErrorBody { code: code.into(), message: message.into() })).into_response()
}

impl Gate {
    pub fn new(registry: Arc<Registry>, clock: Arc<dyn Clock>, limits: LinkConfig) -> Arc<Gate> {
        Arc::new(Gate {
            registry,
            clock,
            limits,
            nonces: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
        })
    }

    pub fn limits(&self) -> &LinkConfig {
        &self.limits
    }

    fn request_id(&self) -> String {
        format!("req-{:08x}", self.seq.fetch_add(1, Ordering::Relaxed))
    }

    /// S1 on the parsed header and body: window, device, signature, then the nonce (only
    /// a verified request may spend one, so a forger cannot fill the table).
    fn authenticate(
        &self,
        header: Option<&str>,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<Device, (Refusal, Option<String>)> {
        let header = header.ok_or((Refusal::Missing, None))?;
        let s = auth::parse(header).map_err(|r| (r, None))?;
        let who = Some(s.device_id.clone());
        let now = unix_s(self.clock.wall());
        if !auth::within_window(s.timestamp, now) {
            return Err((Refusal::Expired, who));
        }
        let (device, credential) = match self.registry.lookup(&s.device_id) {
            Ok(Lookup::Active(d, c)) => (d, c),
            Ok(Lookup::Revoked) => return Err((Refusal::Revoked, who)),
            Ok(Lookup::Unknown) => return Err((Refusal::UnknownDevice, who)),
            Err(e) => {
                tracing::error!(error = %e, "device registry unreadable");
                return Err((Refusal::UnknownDevice, who));
            }
        };
        if !auth::verify(&credential, &s, method, path_and_query, body) {
            return Err((Refusal::BadSignature, who));
        }
        let mut nonces = self.nonces.lock();
        if nonces.len() >= MAX_NONCES / 2 {
            nonces.retain(|_, exp| *exp >= now);
        }
        if nonces.len() >= MAX_NONCES {
            return Err((Refusal::Replayed, who));
        }
        let expires = s.timestamp + auth::WINDOW_S;
        if nonces.insert((s.device_id, s.nonce), expires).is_some_and(|old| old >= now) {
            return Err((Refusal::Replayed, who));
        }
        Ok(device)
    }

    /// Token bucket per device; `Err(seconds to wait)` when empty.
    fn take_token(&self, device_id: &str) -> Result<(), u64> {
        let now = self.clock.now();
        let rate = f64::from(self.limits.rate_per_s);
        let burst = f64::from(self.limits.rate_burst);
        let mut b = self.buckets.lock();
        let (tokens, at) = b.entry(device_id.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

fn refuse(status: StatusCode, code: &str, message: &str, request_id: &str, device_id: Option<&str>) -> Response {
    tracing::warn!(request_id, device_id = device_id.unwrap_or("-"), code, status = status.as_u16(), "request refused");
    let mut r = error_answer(status, code, message);
    if let Ok(v) = HeaderValue::from_str(request_id) {
        r.headers_mut().insert("request-id", v);
    }
    r
}

/// The middleware of every terminal route (S1, S3): see the module comment.
pub async fn gate(State(g): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    let rid = g.request_id();
    let (mut parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    if pq.len() > g.limits.max_uri_bytes {
        return refuse(StatusCode::URI_TOO_LONG, CODE_URI_TOO_LONG, "request target too long", &rid, None);
    }
    let header_bytes: usize = parts.headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if header_bytes > g.limits.max_header_bytes {
        return refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            CODE_HEADERS_TOO_LARGE,
            "request headers too large",
            &rid,
            None,
        );
    }
    if parts.method == Method::POST {
        let json =
            parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                CODE_UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
                &rid,
                None,
            );
        }
    }
    let limit = g.limits.max_body_bytes;
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, CODE_PAYLOAD_TOO_LARGE, "request body too large", &rid, None);
    }
    // A body trickled in byte by byte gets as long as headers do (S3).
    let bytes = match tokio::time::timeout(g.limits.header_read_timeout(), axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, CODE_PAYLOAD_TOO_LARGE, "request body too large", &rid, None)
        }
        Err(_) => {
            return refuse(StatusCode::REQUEST_TIMEOUT, CODE_REQUEST_TIMEOUT, "request body too slow", &rid, None)
        }
    };
    let header = parts.headers.get(auth::HEADER).map(|v| v.to_str().unwrap_or(""));
    let device = match g.authenticate(header, parts.method.as_str(), &pq, &bytes) {
        Ok(d) => d,
        Err((r, who)) => {
            tracing::warn!(request_id = %rid, device_id = who.as_deref().unwrap_or("-"), reason = r.reason(), "authentication failed");
            return refuse(StatusCode::UNAUTHORIZED, r.code(), "request not authenticated", &rid, who.as_deref());
        }
    };
    if let Err(wait) = g.take_token(&device.device_id) {
        let mut r = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            CODE_RATELIMIT_EXCEEDED,
            "too many requests from this device",
            &rid,
            Some(&device.device_id),
        );
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return r;
    }
    parts.extensions.insert(AuthedDevice { device, request_id: rid.clone() });
    parts.extensions.insert(VerifiedBody(bytes.clone()));
    let mut resp = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("request-id", v);
    }
    resp
}

/// The wait a rate-limited client is told, for tests and docs.
pub fn retry_after(resp: &Response) -> Option<Duration> {
    resp.headers().get(header::RETRY_AFTER)?.to_str().ok()?.parse().ok().map(Duration::from_secs)
}
