//! The mock's answer signing and the B0 transport checks, as one layer around every
//! route: it records the B0 headers of each request ([`super::SeenRequest`]), refuses a
//! request without `User-Agent` or an `Accept` that admits JSON (400 `INVALID_REQUEST`,
//! "Http头缺少Accept或User-Agent", as WeChat Pay does) and one whose `Wechatpay-Serial`
//! names no key of the merchant (400 `PARAM_ERROR`: the real wording is not published, so
//! the mock is strict), and signs every answer with the key the request names (SPEC B0).
//! Handlers mark an answer [`Spoil`] (a scripted bad signature) or [`Gateway`] (an
//! unsigned gateway page) through response extensions.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{MockState, PlatformKey, SeenRequest};
use crate::merchant::sign;

/// Ways to spoil a response signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigFault {
    Forged,
    Expired,
    Unsigned,
    Probe,
}

/// Response extension: sign this answer with the given fault.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spoil(pub SigFault);

/// Response extension: a gateway's page, passed on unsigned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gateway;

fn accepts_json(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .any(|t| matches!(t.split(';').next().unwrap_or("").trim(), "application/json" | "application/*" | "*/*"))
    })
}

pub(crate) async fn sign_answers(State(s): State<Arc<MockState>>, req: Request, next: Next) -> Response {
    let h = req.headers();
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let seen = SeenRequest {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        user_agent: get("user-agent"),
        accept: get("accept"),
        serial: get("wechatpay-serial"),
    };
    s.seen.lock().push(seen.clone());
    let default = s.key_for(None).expect("the mock holds a key");
    if seen.user_agent.as_deref().is_none_or(|u| u.trim().is_empty()) || !accepts_json(seen.accept.as_deref()) {
        *s.requests.lock() += 1;
        let body = serde_json::json!({"code": "INVALID_REQUEST", "message": "Http头缺少Accept或User-Agent"});
        return signed(default, StatusCode::BAD_REQUEST, body.to_string().into_bytes(), None);
    }
    let Some(key) = s.key_for(seen.serial.as_deref()) else {
        *s.requests.lock() += 1;
        let body = serde_json::json!({"code": "PARAM_ERROR", "message": "Wechatpay-Serial names no platform key or certificate of this merchant"});
        return signed(default, StatusCode::BAD_REQUEST, body.to_string().into_bytes(), None);
    };
    let resp = next.run(req).await;
    if resp.extensions().get::<Gateway>().is_some() {
        return resp;
    }
    let fault = resp.extensions().get::<Spoil>().map(|f| f.0).or_else(|| s.next_signature.lock().pop_front());
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.map(|b| b.to_vec()).unwrap_or_default();
    signed(key, status, body, fault)
}

fn signed(key: &PlatformKey, status: StatusCode, body: Vec<u8>, fault: Option<SigFault>) -> Response {
    let mut ts = sign::unix_now();
    let nonce = sign::nonce();
    if fault == Some(SigFault::Expired) {
        ts -= 301;
    }
    let mut msg = format!("{ts}\n{nonce}\n").into_bytes();
    msg.extend_from_slice(&body);
    msg.push(b'\n');
    let mut sig = key.signer.sign(&msg);
    match fault {
        Some(SigFault::Forged) => sig = key.signer.sign(b"something else"),
        Some(SigFault::Probe) => sig = format!("{}{sig}", sign::PROBE_PREFIX),
        _ => {}
    }
    let empty = body.is_empty();
    let mut r = (status, Body::from(body)).into_response();
    let h = r.headers_mut();
    if !empty {
        h.insert("content-type", "application/json".parse().expect("static"));
    }
    h.insert("request-id", format!("08{}", &sign::nonce()[..24]).parse().expect("hex"));
    if fault != Some(SigFault::Unsigned) {
        h.insert("wechatpay-timestamp", ts.to_string().parse().expect("digits"));
        h.insert("wechatpay-nonce", nonce.parse().expect("hex"));
        h.insert("wechatpay-serial", key.signer.serial_no.parse().expect("ascii"));
        h.insert("wechatpay-signature", sig.parse().expect("base64"));
        h.insert("wechatpay-signature-type", sign::SCHEME.parse().expect("static"));
    }
    r
}
