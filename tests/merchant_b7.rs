//! SPEC B7 through the reference backend (`backend serve`'s router on 127.0.0.1) and the
//! mock WeChat Pay, which sends `FACEPAY.USER_STATE_CHANGE` signed with its platform key
//! and encrypted with the APIv3 key: a notification is applied once (a replay, or the
//! fault "sent twice", changes nothing and asks nothing upstream); a deduction for a user
//! known to be terminated is refused before it is sent (403 CONTRACT_TERMINATED, no
//! request reaches WeChat Pay), while a user whose state is not known pays; bad
//! notifications are refused with a clear status and change nothing. The terminal is an
//! enrolled device signing its requests (S1); notifications are signed by WeChat Pay.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use facepay::clock::ManualClock;
use facepay::merchant::config::BackendConfig;
use facepay::merchant::contracts;
use facepay::merchant::engine::Engine;
use facepay::merchant::server::{router, Backend};
use facepay::sim::wechatpay::{KeyMode, MockState};
use facepay::sim::wechatpay_fixture::{self, ORGANIZATION};
use facepay::store::StorePath;
use facepay::wire::PaymentState;

struct Fx {
    mock: Arc<MockState>,
    backend: Arc<Backend>,
    url: String,
    credential: facepay::Secret,
    _dir: tempfile::TempDir,
}

/// The engine's (and so the gate's) manual wall clock.
const NOW: u64 = 1_800_000_000;

async fn fx(mode: KeyMode, apiv3_override: Option<&str>) -> Fx {
    fx_with(mode, apiv3_override, None).await
}

/// `orgs`: replaces the configured organisations and turns `query_organizations` on.
async fn fx_with(mode: KeyMode, apiv3_override: Option<&str>, orgs: Option<&str>) -> Fx {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mock, _) = wechatpay_fixture::start(dir.path(), mode, Duration::from_secs(1)).await.expect("mock");
    let path = dir.path().join("backend.json");
    if let Some(k) = apiv3_override {
        let text = std::fs::read_to_string(&path).expect("config");
        std::fs::write(&path, text.replace(wechatpay_fixture::APIV3_KEY, k)).expect("config");
    }
    if let Some(o) = orgs {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("config")).expect("json");
        v["organizations"] = serde_json::json!([o]);
        v["query_organizations"] = true.into();
        std::fs::write(&path, v.to_string()).expect("config");
    }
    let cfg = BackendConfig::load(&path).expect("config");
    let client = Arc::new(cfg.client().expect("client"));
    let engine =
        Engine::open(&StorePath::Memory, client.clone(), Arc::new(ManualClock::at_unix_s(NOW)), cfg.deduction_params())
            .expect("engine");
    let notify_path = cfg.notify_path.clone();
    let backend = Backend::new(cfg, client, engine);
    let credential = backend.devices().add("d1", ORGANIZATION, None, NOW).expect("enrol d1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(backend.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    mock.set_notify_url(&format!("http://{addr}{notify_path}"));
    Fx { mock, backend, url: format!("http://{addr}"), credential, _dir: dir }
}

impl Fx {
    fn state(&self, out: &str) -> Option<String> {
        self.backend.engine.with_store(|s| contracts::state(s.conn(), ORGANIZATION, out)).expect("registry")
    }
    fn upstream(&self, path_part: &str) -> usize {
        self.mock.seen.lock().iter().filter(|r| r.path.contains(path_part)).count()
    }
    fn applied_count(&self) -> usize {
        self.backend.engine.with_store(|s| contracts::list(s.conn())).expect("list").len()
    }
    async fn post(&self, headers: &[(&'static str, String)], body: &str) -> u16 {
        let mut rb =
            reqwest::Client::new().post(format!("{}/facepay/v1/wechatpay/notify", self.url)).body(body.to_string());
        for (k, v) in headers {
            rb = rb.header(*k, v);
        }
        rb.send().await.expect("answer").status().as_u16()
    }
    /// A payment submission of device d1, signed (S1).
    async fn submit(&self, body: &serde_json::Value) -> reqwest::Response {
        use facepay::wire::auth;
        let bytes = body.to_string().into_bytes();
        let a = auth::authorization(
            &self.credential,
            "d1",
            "POST",
            "/facepay/v1/payments",
            &bytes,
            NOW,
            &auth::new_nonce(),
        );
        reqwest::Client::new()
            .post(format!("{}/facepay/v1/payments", self.url))
            .header("authorization", a)
            .header("content-type", "application/json")
            .body(bytes)
            .send()
            .await
            .expect("answer")
    }
    async fn pay(&self, key: &str, out_user_id: &str) -> (u16, serde_json::Value) {
        let body = serde_json::json!({"idempotency_key": key, "face_token": format!("ft-{key}"), "user_id": "u",
            "out_user_id": out_user_id, "amount_fen": 700, "organization_id": ORGANIZATION, "device_id": "d1"});
        let r = self.submit(&body).await;
        (r.status().as_u16(), r.json().await.unwrap_or(serde_json::Value::Null))
    }
}

#[tokio::test]
async fn b7_a_notification_is_applied_once_under_replay_and_sent_twice() {
    for mode in [KeyMode::PublicKey, KeyMode::Migration] {
        let f = fx(mode, None).await;
        f.mock.enroll_user(ORGANIZATION, "ou1", "SIGNED");
        // The fault "notification sent twice": one id, two deliveries, both answered 2xx.
        let statuses = f.mock.change_contract(ORGANIZATION, "ou1", "TERMINATED", 2).await;
        assert_eq!(statuses, [204, 204], "{mode:?}");
        assert_eq!(f.state("ou1").as_deref(), Some("TERMINATED"));
        assert_eq!(f.upstream("/users/out-user-id/ou1"), 1, "the second copy asked nothing upstream");
        // Signed again, then the old notification replayed: nothing changes.
        let (_, old_h, old_b) = f.mock.user_state_notification(ORGANIZATION, "ou1").expect("user");
        assert_eq!(f.post(&old_h, &old_b).await, 204);
        f.mock.change_contract(ORGANIZATION, "ou1", "SIGNED", 1).await;
        assert_eq!(f.state("ou1").as_deref(), Some("SIGNED"));
        let asked = f.upstream("/users/out-user-id/ou1");
        assert_eq!(f.post(&old_h, &old_b).await, 204, "a replay is acknowledged");
        assert_eq!(f.state("ou1").as_deref(), Some("SIGNED"), "a replay changes nothing");
        assert_eq!(f.upstream("/users/out-user-id/ou1"), asked, "and asks nothing");
    }
}

#[tokio::test]
async fn b7_a_terminated_user_is_refused_before_sending() {
    let f = fx(KeyMode::PublicKey, None).await;
    f.mock.enroll_user(ORGANIZATION, "ou1", "SIGNED");
    // A payment recorded before the termination, deducted after it.
    let early = facepay::wire::PaymentRequest {
        idempotency_key: "early".into(),
        face_token: facepay::Secret::new("ft-early"),
        user_id: "u".into(),
        out_user_id: "ou1".into(),
        amount_fen: 700,
        organization_id: ORGANIZATION.into(),
        device_id: "d1".into(),
    };
    let (st, _) = f.backend.engine.record(&early).expect("record");
    assert_eq!(f.mock.change_contract(ORGANIZATION, "ou1", "TERMINATED", 1).await, [204]);
    let before = f.upstream("/v3/offlineface/transactions");
    let (status, body) = f.pay("k1", "ou1").await;
    assert_eq!((status, body["code"].as_str()), (403, Some(contracts::CODE_CONTRACT_TERMINATED)));
    assert_eq!(f.backend.engine.drive(&st.payment_id).await.expect("drive"), PaymentState::Failed);
    let (_, reason) = f.backend.engine.status(&st.payment_id).expect("status").expect("exists");
    assert_eq!(reason.as_deref(), Some(contracts::CODE_CONTRACT_TERMINATED));
    assert_eq!(f.upstream("/v3/offlineface/transactions"), before, "nothing was sent to WeChat Pay");
    assert!(f.mock.ledger().is_empty());
    // The payment recorded before the termination, sent again by its terminal, answers its
    // own state, not a refusal.
    let again = serde_json::json!({"idempotency_key": "early", "face_token": "ft-early", "user_id": "u",
        "out_user_id": "ou1", "amount_fen": 700, "organization_id": ORGANIZATION, "device_id": "d1"});
    let r = f.submit(&again).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.expect("json")["payment_id"], st.payment_id.as_str());
    // A state not known is no reason to refuse.
    let (status, _) = f.pay("k2", "ou-unknown").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn b7_bad_notifications_are_refused_and_change_nothing() {
    let f = fx(KeyMode::PublicKey, None).await;
    f.mock.enroll_user(ORGANIZATION, "ou1", "TERMINATED");
    let (_, h, b) = f.mock.user_state_notification(ORGANIZATION, "ou1").expect("user");
    // Bad signature: the body changed after signing.
    assert_eq!(f.post(&h, &b.replace("EV-", "EX-")).await, 401);
    // Unsigned, malformed.
    assert_eq!(f.post(&[], "{not json").await, 401);
    // A stale timestamp (the signature covers it, so it also no longer verifies).
    let stale: Vec<_> = h
        .iter()
        .map(|(k, v)| {
            if *k == "wechatpay-timestamp" {
                (*k, (v.parse::<u64>().expect("ts") - 400).to_string())
            } else {
                (*k, v.clone())
            }
        })
        .collect();
    assert_eq!(f.post(&stale, &b).await, 401);
    assert_eq!(f.applied_count(), 0, "the registry is unchanged");
    assert_eq!(f.upstream("/users/out-user-id/"), 0);
    // A backend configured with another APIv3 key cannot decrypt: 400, nothing applied.
    let g = fx(KeyMode::PublicKey, Some("ffffffffffffffffffffffffffffffff")).await;
    g.mock.enroll_user(ORGANIZATION, "ou1", "TERMINATED");
    let (_, h, b) = g.mock.user_state_notification(ORGANIZATION, "ou1").expect("user");
    // g's mock signs with its own key; g's backend trusts it: only the APIv3 key is wrong.
    assert_eq!(g.post(&h, &b).await, 400);
    assert_eq!(g.applied_count(), 0);
}

#[tokio::test]
async fn t3_5_the_organisations_query_admits_an_unlisted_organisation_once_cached() {
    // The configured list names another organisation; WeChat Pay knows ORGANIZATION.
    let f = fx_with(KeyMode::PublicKey, None, Some("org-listed")).await;
    let (status, _) = f.pay("k1", "ou1").await;
    assert_eq!(status, 200, "known to WeChat Pay under this merchant");
    let (status, _) = f.pay("k2", "ou1").await;
    assert_eq!(status, 200);
    assert_eq!(f.upstream("/v3/offlinefacemch/organizations"), 1, "cached: asked once");
    let body = serde_json::json!({"idempotency_key": "k3", "face_token": "ft-k3", "user_id": "u", "out_user_id": "ou1",
        "amount_fen": 700, "organization_id": "org-of-another", "device_id": "d1"});
    let r = f.submit(&body).await;
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<serde_json::Value>().await.expect("json")["code"], "ORG_MCH_MISMATCH");
}
