//! The mock's routes: B1 tokens, B2 user update, B3 authinfo, B4 presign (nested
//! identification, every personal field encrypted for the key `Wechatpay-Serial` names),
//! B5 transactions and the order query, `/v3/certificates`, and the B7 endpoints of
//! [`super::users`]; every route checks the request signature ([`guard`]) and the whole
//! router sits inside [`super::signing`] (B0 checks, answers signed with the named key).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;

use super::{signing, users, MockState, SigFault, Spoil};
use crate::merchant::models::{
    AuthInfoCall, CertificateEntry, CertificateList, EncryptCertificate, PresignRequest, TokenRequest,
    TransactionRequest,
};
use crate::merchant::sign;

type S = State<Arc<MockState>>;

pub(crate) async fn guard(
    s: &MockState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: &Bytes,
) -> Result<(), Response> {
    s.check(&method, &uri, &headers, body)?;
    Ok(())
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(s: &MockState, body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|_| s.error(400, "PARAM_ERROR", "body does not match the documented shape"))
}

async fn h_transactions(State(s): S, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    if let Err(r) = guard(&s, m, u, h, &b).await {
        return r;
    }
    match parse::<TransactionRequest>(&s, &b) {
        Ok(req) => s.transaction(req).await,
        Err(r) => r,
    }
}

async fn h_query(State(s): S, Path(no): Path<String>, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    if let Err(r) = guard(&s, m, u.clone(), h, &b).await {
        return r;
    }
    if !u.query().unwrap_or("").contains(&format!("sp_mchid={}", s.cfg.mchid)) {
        return s.error(400, "PARAM_ERROR", "sp_mchid missing or wrong");
    }
    if let Some((status, code)) = *s.query_error.lock() {
        return s.error(status, code, "scripted");
    }
    let o = s.orders.lock().get(&no).cloned();
    let mut r = match o {
        Some(o) => s.ok(&s.view(&no, &o)),
        None => s.error(404, "ORDER_NOT_EXIST", "order does not exist"),
    };
    if s.forge_queries.load(std::sync::atomic::Ordering::SeqCst) {
        r.extensions_mut().insert(Spoil(SigFault::Forged));
    }
    r
}

async fn h_tokens(State(s): S, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    if let Err(r) = guard(&s, m, u, h, &b).await {
        return r;
    }
    match parse::<TokenRequest>(&s, &b) {
        Ok(r) if r.scene != "WEBSESSION" => s.error(400, "PARAM_ERROR", "scene must be WEBSESSION"),
        Ok(r) if !s.cfg.organizations.contains(&r.web_init_data.organization_id) => {
            s.error(400, "INVALID_REQUEST", "organization does not belong to this merchant")
        }
        Ok(_) => s.ok(&serde_json::json!({"token": format!("tok_{}", sign::nonce())})),
        Err(r) => r,
    }
}

async fn h_user(
    State(s): S,
    Path((org, uid)): Path<(String, String)>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    if let Err(r) = guard(&s, m, u, h.clone(), &b).await {
        return r;
    }
    let v: serde_json::Value = match parse(&s, &b) {
        Ok(v) => v,
        Err(r) => return r,
    };
    for f in ["user_name", "phone"] {
        if let Some(x) = v.get(f).and_then(|x| x.as_str()) {
            if !s.decrypts(&h, x) {
                return s.error(
                    400,
                    "PARAM_ERROR",
                    "sensitive field not encrypted with the key Wechatpay-Serial names",
                );
            }
        }
    }
    if !s.cfg.organizations.contains(&org) {
        return s.error(400, "INVALID_REQUEST", "organization does not belong to this merchant");
    }
    s.user_updates.lock().push((org, uid, v));
    (StatusCode::NO_CONTENT, String::new()).into_response()
}

async fn h_authinfo(State(s): S, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    if let Err(r) = guard(&s, m, u, h, &b).await {
        return r;
    }
    match parse::<AuthInfoCall>(&s, &b) {
        Ok(r) if !s.cfg.organizations.contains(&r.organization_id) => {
            s.error(400, "INVALID_REQUEST", "organization does not belong to this merchant")
        }
        Ok(_) => s.ok(&serde_json::json!({"authinfo": format!("ai_{}", sign::nonce())})),
        Err(r) => r,
    }
}

async fn h_presign(State(s): S, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    if let Err(r) = guard(&s, m, u, h.clone(), &b).await {
        return r;
    }
    match parse::<PresignRequest>(&s, &b) {
        Ok(r) => {
            let f = &r.facepay_user;
            let encrypted = [&f.identification_name, &f.identification.identification_number, &f.phone]
                .into_iter()
                .all(|x| s.decrypts(&h, x.expose()));
            if !encrypted {
                s.error(400, "PARAM_ERROR", "sensitive field not encrypted with the key Wechatpay-Serial names")
            } else if f.identification.identification_type != "IDCARD" {
                s.error(400, "PARAM_ERROR", "identification.identification_type must be IDCARD")
            } else if !s.cfg.organizations.contains(&f.organization_id) {
                s.error(400, "INVALID_REQUEST", "organization does not belong to this merchant")
            } else {
                s.ok(&serde_json::json!({"presign_token": format!("pre_{}", sign::nonce())}))
            }
        }
        Err(r) => r,
    }
}

async fn h_certificates(State(s): S, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    if let Err(r) = guard(&s, m, u, h, &b).await {
        return r;
    }
    let Some(serial) = &s.certificate_serial else {
        return s.error(404, "NOT_FOUND", "this merchant uses the public-key mode");
    };
    let nonce = &sign::nonce()[..12];
    let ct = sign::aes_gcm_encrypt(s.cfg.apiv3_key.as_bytes(), nonce, "certificate", s.cert_pem.as_bytes())
        .expect("32-byte APIv3 key");
    s.ok(&CertificateList {
        data: vec![CertificateEntry {
            serial_no: serial.clone(),
            effective_time: "2025-01-01T00:00:00+08:00".into(),
            expire_time: "2049-12-31T23:59:59+08:00".into(),
            encrypt_certificate: EncryptCertificate {
                algorithm: "AEAD_AES_256_GCM".into(),
                nonce: nonce.into(),
                associated_data: "certificate".into(),
                ciphertext: ct,
            },
        }],
    })
}

pub fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/v3/offlinefacemch/tokens", post(h_tokens))
        .route("/v3/offlinefacemch/organizations/{org}/users/out-user-id/{uid}", patch(h_user).get(users::h_query_user))
        .route(
            "/v3/offlinefacemch/organizations/{org}/users/user-id/{uid}/terminate-contract",
            post(users::h_terminate),
        )
        .route("/v3/offlinefacemch/organizations", get(users::h_organizations))
        .route("/v3/offlineface/contracts/{id}", get(users::h_contract))
        .route("/v3/offlineface/repayment-url", post(users::h_repayment_url))
        .route("/v3/offlineface/face-collections", get(users::h_collections))
        .route("/v3/offlineface/face-collections/{id}", get(users::h_collection))
        .route("/v3/offlineface/authinfo", post(h_authinfo))
        .route("/v3/offlineface/contracts/presign", post(h_presign))
        .route("/v3/offlineface/transactions", post(h_transactions))
        .route("/v3/offlineface/transactions/out-trade-no/{no}", get(h_query))
        .route("/v3/certificates", get(h_certificates))
        .layer(axum::middleware::from_fn_with_state(state.clone(), signing::sign_answers))
        .with_state(state)
}
