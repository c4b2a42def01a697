//! The reference backend's terminal-facing protocol (DESIGN "Contracts",
//! docs/merchant-protocol.md) in front of the mock WeChat Pay: T3.5 (an organisation of
//! another merchant → 400 ORG_MCH_MISMATCH, no upstream call), the authinfo cache (B3
//! has no TTL: ours), payments by idempotency key (same key → same payment; other body →
//! 409), and the payment reaching PAID through the B5 engine. Every request is signed by
//! an enrolled device (S1; the refusals are in `tests/link_security.rs`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use facepay::clock::ManualClock;
use facepay::merchant::config::BackendConfig;
use facepay::merchant::engine::Engine;
use facepay::merchant::server::{router, Backend};
use facepay::sim::wechatpay::KeyMode;
use facepay::sim::wechatpay_fixture::{self, ORGANIZATION};
use facepay::store::StorePath;
use facepay::wire::auth;
use facepay::Secret;
use tower::ServiceExt;

const NOW: u64 = 1_800_000_000;
static CREDENTIAL: std::sync::OnceLock<Secret> = std::sync::OnceLock::new();

async fn call(app: &axum::Router, method: &str, uri: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    let bytes = if method == "GET" { Vec::new() } else { body.to_string().into_bytes() };
    let cred = CREDENTIAL.get().expect("enrolled");
    let a = auth::authorization(cred, "d1", method, uri, &bytes, NOW, &auth::new_nonce());
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header("authorization", a)
        .body(Body::from(bytes))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("answer");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn t3_5_b3_b5_reference_backend_protocol() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mock, _) =
        wechatpay_fixture::start(dir.path(), KeyMode::PublicKey, Duration::from_secs(1)).await.expect("mock");
    let mut cfg = BackendConfig::load(&dir.path().join("backend.json")).expect("config");
    // The manual clock never refills the rate bucket; this test polls many times.
    cfg.link.rate_burst = 100_000;
    let client = Arc::new(cfg.client().expect("client"));
    let engine =
        Engine::open(&StorePath::Memory, client.clone(), Arc::new(ManualClock::at_unix_s(NOW)), cfg.deduction_params())
            .expect("engine");
    let backend = Backend::new(cfg, client, engine);
    let cred = backend.devices().add("d1", ORGANIZATION, None, NOW).expect("enrol");
    CREDENTIAL.set(cred).expect("once");
    let app = router(backend);

    // T3.5: refused locally, WeChat Pay never asked.
    let before = *mock.requests.lock();
    let (st, body) = call(
        &app,
        "POST",
        "/facepay/v1/authinfo",
        serde_json::json!({"device_id": "d1", "raw_data": "r", "organization_id": "org-other"}),
    )
    .await;
    assert_eq!((st, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("ORG_MCH_MISMATCH")));
    assert_eq!(*mock.requests.lock(), before);

    // B3 through our cache: the second fetch does not reach WeChat Pay.
    let req = serde_json::json!({"device_id": "d1", "raw_data": "r", "organization_id": ORGANIZATION});
    let (st, a) = call(&app, "POST", "/facepay/v1/authinfo", req.clone()).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(a["expires_in"], 3600);
    let n = *mock.requests.lock();
    let (_, b) = call(&app, "POST", "/facepay/v1/authinfo", req).await;
    assert_eq!((a["authinfo"].clone(), *mock.requests.lock()), (b["authinfo"].clone(), n));

    // Payments by idempotency key.
    let pay = serde_json::json!({"idempotency_key": "k1", "face_token": "ft1", "user_id": "u", "out_user_id": "ou",
        "amount_fen": 900, "organization_id": ORGANIZATION, "device_id": "d1"});
    let (st, p1) = call(&app, "POST", "/facepay/v1/payments", pay.clone()).await;
    assert_eq!(st, StatusCode::OK);
    let (_, p2) = call(&app, "POST", "/facepay/v1/payments", pay.clone()).await;
    assert_eq!(p1["payment_id"], p2["payment_id"]);
    let mut other = pay.clone();
    other["amount_fen"] = 1.into();
    let (st, e) = call(&app, "POST", "/facepay/v1/payments", other).await;
    assert_eq!((st, e["code"].as_str()), (StatusCode::CONFLICT, Some("IDEMPOTENCY_KEY_REUSED")));
    let id = p1["payment_id"].as_str().expect("id").to_string();
    let mut state = String::new();
    for _ in 0..200 {
        let (_, s) = call(&app, "GET", &format!("/facepay/v1/payments/{id}"), serde_json::Value::Null).await;
        state = s["state"].as_str().unwrap_or_default().to_string();
        if state != "PROCESSING" {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(state, "PAID");
    assert_eq!(mock.ledger().len(), 1);
    let (st, _) = call(&app, "GET", "/facepay/v1/payments/nope", serde_json::Value::Null).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[test]
fn t3_5_config_errors_name_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        wechatpay_fixture::create(
            dir.path(),
            KeyMode::PublicKey,
            "http://127.0.0.1:9",
            "127.0.0.1:0",
            Duration::from_secs(1),
        )
        .expect("fixture");
    });
    let text = std::fs::read_to_string(dir.path().join("backend.json")).expect("config");
    let write = |name: &str, t: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, t).expect("write");
        p
    };
    let missing = write("a.json", text.replace("merchant_key.pem", "missing.pem"));
    let e = BackendConfig::load(&missing).and_then(|c| c.client().map(|_| ())).expect_err("missing key");
    assert!(e.to_string().contains("merchant_key_file"), "{e}");
    let bad_mch = write("b.json", text.replace("\"mch_id\": \"1900000100\"", "\"mch_id\": \"abc\""));
    assert!(BackendConfig::load(&bad_mch).expect_err("bad mch").to_string().contains("mch_id"));
    let no_org = write("c.json", text.replace(&format!("\"{ORGANIZATION}\""), ""));
    assert!(BackendConfig::load(&no_org).expect_err("no org").to_string().contains("organizations"));
    let cfg = BackendConfig::load(&dir.path().join("backend.json")).expect("good");
    assert!(cfg.check_organization("org-x").expect_err("T3.5").to_string().contains("org-x"));
    let key = std::fs::read_to_string(dir.path().join("merchant_key.pem")).expect("key");
    let body = key.lines().find(|l| !l.starts_with('-') && !l.starts_with('#')).expect("a base64 line");
    assert!(!e.to_string().contains(body));
}
