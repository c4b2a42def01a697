//! SPEC B0, B5.1, B5.2 and B7 against the mock WeChat Pay, which refuses what the real
//! service refuses: every request carries User-Agent, Accept and Wechatpay-Serial; the
//! mock refuses a request without the first two; answers are signed with the key the
//! request names (migration mode: the certificate when it names none) and verify; the
//! backup domain takes over when the primary cannot be reached; 503 then paid; charged but
//! answered 500 ends PAID after a query; an unverifiable answer is queried at most once
//! per 5 minutes at the cap (virtual time), reported after an hour and never abandoned;
//! debt_state and Request-ID are recorded; the contract endpoints answer.

use std::sync::Arc;
use std::time::Duration;

use facepay::clock::{unix_s, Clock, ManualClock};
use facepay::merchant::client::{PlatformMode, WechatPayClient};
use facepay::merchant::deduction::UNKNOWN_QUERY_CAP_S;
use facepay::merchant::engine::{AttemptReport, DeductionParams, Engine};
use facepay::merchant::sign::{MerchantSigner, PlatformKeys};
use facepay::merchant::MerchantError;
use facepay::sim::wechatpay::{self, KeyMode, MockConfig, MockState, Step};
use facepay::store::StorePath;
use facepay::wire::{PaymentRequest, PaymentState};
use facepay::Secret;
use parking_lot::Mutex;

const MCH: &str = "1900000100";
const APIV3: &str = "0123456789abcdef0123456789abcdef";

/// Which platform keys the client is configured with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Holds {
    PublicKey,
    Certificates,
    Both,
}

struct Fx {
    mock: Arc<MockState>,
    base: String,
    signer_pem: String,
    client: Arc<WechatPayClient>,
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    log: Arc<Mutex<Vec<AttemptReport>>>,
}

fn mock(mode: KeyMode, signer: &MerchantSigner) -> Arc<MockState> {
    MockState::new(MockConfig {
        mchid: MCH.into(),
        merchant_serial: "MCHSERIAL01".into(),
        merchant_public_key: signer.public_key_der(),
        mode,
        apiv3_key: APIV3.into(),
        organizations: vec!["org1".into()],
        hang: Duration::from_secs(2),
    })
}

fn client_for(mock: &MockState, base: &str, pem: &str, holds: Holds) -> WechatPayClient {
    let signer = MerchantSigner::from_pem(MCH, "MCHSERIAL01", pem).expect("key");
    let keys = PlatformKeys::new();
    if holds != Holds::Certificates {
        keys.insert(&mock.platform_serial, mock.platform_public_key());
    }
    let mode = match holds {
        Holds::PublicKey => PlatformMode::PublicKey,
        _ => PlatformMode::Certificates { apiv3_key: Secret::new(APIV3), refresh_every: Duration::from_secs(3600) },
    };
    WechatPayClient::new(base, signer, keys, mode, Duration::from_millis(400)).expect("client")
}

async fn fx(mode: KeyMode, holds: Holds) -> Fx {
    let pem = facepay::merchant::generate_test_key_pem();
    let signer = MerchantSigner::from_pem(MCH, "MCHSERIAL01", &pem).expect("key");
    let mock = mock(mode, &signer);
    let (addr, _) = wechatpay::serve(mock.clone(), 0).await.expect("bind");
    let base = format!("http://{addr}");
    let client = Arc::new(client_for(&mock, &base, &pem, holds));
    let clock = Arc::new(ManualClock::at_unix_s(1_800_000_000));
    let params = DeductionParams {
        sp_appid: "wx0001".into(),
        sp_mchid: MCH.into(),
        sub_mchid: "1900000109".into(),
        business_product_id: 2,
        business_scene_id: 3,
        description: "lunch".into(),
        device_ip: "10.0.0.7".into(),
        sub_appid: None,
        goods_tag: None,
    };
    let engine = Engine::open(&StorePath::Memory, client.clone(), clock.clone(), params).expect("engine");
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    engine.set_observer(move |a| l.lock().push(a.clone()));
    Fx { mock, base, signer_pem: pem, client, engine, clock, log }
}

fn payment(key: &str, code: &str) -> PaymentRequest {
    PaymentRequest {
        idempotency_key: key.into(),
        face_token: Secret::new(code),
        user_id: "u1".into(),
        out_user_id: "ou1".into(),
        amount_fen: 1250,
        organization_id: "org1".into(),
        device_id: "dev1".into(),
    }
}

impl Fx {
    async fn run(&self, code: &str, steps: Vec<Step>) -> (String, PaymentState, Option<String>) {
        self.mock.script(code, steps);
        let (st, _) = self.engine.record(&payment(&format!("k-{code}"), code)).expect("record");
        let s = self.engine.drive(&st.payment_id).await.expect("drive");
        let (_, reason) = self.engine.status(&st.payment_id).expect("status").expect("exists");
        (st.payment_id, s, reason)
    }
    fn outcomes(&self) -> Vec<String> {
        self.log.lock().iter().map(|a| format!("{}:{}", a.kind, a.outcome)).collect()
    }
}

#[tokio::test]
async fn b0_every_request_carries_user_agent_accept_and_serial() {
    for (mode, holds) in [
        (KeyMode::PublicKey, Holds::PublicKey),
        (KeyMode::Certificates, Holds::Certificates),
        (KeyMode::Migration, Holds::Both),
    ] {
        let f = fx(mode, holds).await;
        f.client.tokens("ou1", "org1").await.expect("B1");
        let (_, s, _) = f.run("c1", vec![Step::ChargeThenHang]).await;
        assert_eq!(s, PaymentState::Paid);
        let seen = f.mock.seen.lock().clone();
        assert!(seen.len() >= 3, "{mode:?}: {seen:?}");
        for r in &seen {
            assert!(
                r.user_agent.as_deref().is_some_and(|u| u.starts_with("facepay/") && u.ends_with("; rust)")),
                "{r:?}"
            );
            assert_eq!(r.accept.as_deref(), Some("application/json"), "{r:?}");
            // The only request that may name no key: the very first certificate download.
            if r.path != "/v3/certificates" || holds != Holds::Certificates {
                let want = if holds == Holds::Certificates {
                    f.mock.certificate_serial.clone()
                } else {
                    Some(f.mock.platform_serial.clone())
                };
                assert_eq!(r.serial, want, "{mode:?} {r:?}");
            }
        }
    }
}

#[tokio::test]
async fn b0_the_mock_refuses_a_request_without_user_agent_or_accept() {
    let f = fx(KeyMode::PublicKey, Holds::PublicKey).await;
    let bare = client_for(&f.mock, &f.base, &f.signer_pem, Holds::PublicKey).with_user_agent("");
    let r = bare.tokens("ou1", "org1").await;
    assert!(matches!(r, Err(MerchantError::Api { status: 400, ref code, .. }) if code == "INVALID_REQUEST"), "{r:?}");
    // No Accept: a plain request (signature is not even looked at).
    let r = reqwest::Client::new()
        .post(format!("{}/v3/offlinefacemch/tokens", f.base))
        .header("User-Agent", "x/1")
        .header("Accept", "text/html")
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<serde_json::Value>().await.expect("json")["code"], "INVALID_REQUEST");
    // Every deduction would end FAILED without them: the engine sees INVALID_REQUEST.
    assert!(f.mock.ledger().is_empty());
}

#[tokio::test]
async fn b0_migration_mode_answers_are_signed_with_the_named_key_and_verify() {
    let f = fx(KeyMode::Migration, Holds::Both).await;
    f.client.tokens("ou1", "org1").await.expect("names the public key: a key-signed answer verifies");
    // A client still on certificates only names the certificate: certificate-signed.
    let certs = client_for(&f.mock, &f.base, &f.signer_pem, Holds::Certificates);
    certs.tokens("ou1", "org1").await.expect("names the certificate: a certificate-signed answer verifies");
    let seen = f.mock.seen.lock().clone();
    let serials: std::collections::HashSet<_> = seen.iter().filter_map(|r| r.serial.clone()).collect();
    assert!(
        serials.contains(&f.mock.platform_serial)
            && serials.contains(f.mock.certificate_serial.as_ref().expect("cert"))
    );
    // The answer is signed with the key the request names, and with the certificate when
    // it names none (even a refusal of an unsigned request is signed that way).
    let answer_serial = |named: Option<String>| {
        let base = f.base.clone();
        async move {
            let mut rb = reqwest::Client::new()
                .get(format!("{base}/v3/certificates"))
                .header("User-Agent", "x/1")
                .header("Accept", "application/json");
            if let Some(n) = named {
                rb = rb.header("Wechatpay-Serial", n);
            }
            let r = rb.send().await.expect("answer");
            r.headers().get("wechatpay-serial").and_then(|v| v.to_str().ok()).map(str::to_string)
        }
    };
    let cert = f.mock.certificate_serial.clone();
    assert_eq!(answer_serial(None).await, cert);
    assert_eq!(answer_serial(cert.clone()).await, cert);
    assert_eq!(answer_serial(Some(f.mock.platform_serial.clone())).await, Some(f.mock.platform_serial.clone()));
    // A serial naming no key of the merchant is refused.
    let keys = PlatformKeys::new();
    keys.insert("PUB_KEY_ID_0000000000000000000000000000009999", f.mock.platform_public_key());
    let signer = MerchantSigner::from_pem(MCH, "MCHSERIAL01", &f.signer_pem).expect("key");
    let wrong =
        WechatPayClient::new(&f.base, signer, keys, PlatformMode::PublicKey, Duration::from_millis(400)).expect("c");
    let r = wrong.tokens("ou1", "org1").await;
    assert!(matches!(r, Err(MerchantError::Api { status: 400, .. }) | Err(MerchantError::UnknownSerial(_))), "{r:?}");
}

#[tokio::test]
async fn b0_the_backup_domain_takes_over_when_the_primary_cannot_be_reached() {
    let f = fx(KeyMode::PublicKey, Holds::PublicKey).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    // Nothing listens there any more: the connection is refused, the request never left.
    let c = client_for(&f.mock, &format!("http://{closed}"), &f.signer_pem, Holds::PublicKey)
        .with_backup_url(Some(&f.base));
    c.tokens("ou1", "org1").await.expect("answered by the backup domain");
    let none = client_for(&f.mock, &format!("http://{closed}"), &f.signer_pem, Holds::PublicKey).with_backup_url(None);
    assert!(matches!(none.tokens("ou1", "org1").await, Err(MerchantError::Unknown(_))));
}

#[tokio::test]
async fn b5_1_503_then_paid_with_the_same_order() {
    let f = fx(KeyMode::PublicKey, Holds::PublicKey).await;
    let steps =
        vec![Step::Gateway(503), Step::Gateway(502), Step::Trade(facepay::merchant::models::TradeState::Success)];
    let (_, s, _) = f.run("c1", steps).await;
    assert_eq!(s, PaymentState::Paid);
    assert_eq!(f.outcomes(), ["pay:UNAVAILABLE", "pay:UNAVAILABLE", "pay:SUCCESS"]);
    let orders: std::collections::HashSet<_> = f.log.lock().iter().map(|a| a.out_trade_no.clone()).collect();
    assert_eq!(orders.len(), 1, "the same order number throughout");
    assert_eq!(f.mock.ledger().len(), 1);
}

#[tokio::test]
async fn b5_1_charged_but_answered_500_ends_paid_after_a_query() {
    let f = fx(KeyMode::PublicKey, Holds::PublicKey).await;
    let (_, s, _) = f.run("c1", vec![Step::ChargeThen500]).await;
    assert_eq!(s, PaymentState::Paid);
    // The retry meets "credential already used and charged": queried, not taken as final.
    assert_eq!(f.outcomes(), ["pay:SYSTEM_ERROR", "pay:INVALID_REQUEST", "query:SUCCESS"]);
    assert_eq!(f.mock.ledger().len(), 1);
    assert_eq!(f.mock.charged_twice(), 0);
}

#[tokio::test]
async fn b5_1_a_first_invalid_request_is_still_final_and_not_queried() {
    let f = fx(KeyMode::PublicKey, Holds::PublicKey).await;
    let (_, s, r) = f.run("c1", vec![Step::Error(400, "INVALID_REQUEST")]).await;
    assert_eq!((s, r.as_deref()), (PaymentState::Failed, Some("INVALID_REQUEST")));
    assert_eq!(f.outcomes(), ["pay:INVALID_REQUEST"]);
}

#[tokio::test]
async fn b5_1_an_unknown_trade_state_is_queried_not_a_parse_failure() {
    let f = fx(KeyMode::PublicKey, Holds::PublicKey).await;
    let steps = vec![Step::UnknownState, Step::Trade(facepay::merchant::models::TradeState::Success)];
    let (_, s, _) = f.run("c1", steps).await;
    assert_eq!(s, PaymentState::Paid);
    assert_eq!(f.outcomes(), ["pay:UNKNOWN", "query:NOTPAY", "pay:SUCCESS"]);
}

#[tokio::test]
async fn b5_1_unverifiable_answers_lead_to_at_most_one_query_per_5_minutes_at_the_cap() {
    let f = fx(KeyMode::PublicKey, Holds::PublicKey).await;
    f.mock.forge_queries(true);
    let (t, m, e) = (f.clock.clone(), f.mock.clone(), f.engine.clone());
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let al = alerts.clone();
    let log = f.log.clone();
    // Six virtual hours of queries that cannot be verified, then a clean answer.
    f.engine.set_observer(move |a| {
        log.lock().push(a.clone());
        al.lock().push((unix_s(t.wall()), e.unresolved(3600).expect("unresolved").len()));
        if unix_s(t.wall()) >= 1_800_000_000 + 6 * 3600 {
            m.forge_queries(false);
        }
    });
    let (id, s, _) = f.run("c1", vec![Step::ChargeBadSignature]).await;
    assert_eq!(s, PaymentState::Paid, "never abandoned: paid once a query verifies");
    assert_eq!(f.mock.ledger().len(), 1, "never charged again");
    let queries: Vec<u64> = f.log.lock().iter().filter(|a| a.kind == "query").map(|a| a.at).collect();
    let gaps: Vec<u64> = queries.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "the back-off never shrinks: {gaps:?}");
    let at_cap = gaps.iter().position(|&g| g == UNKNOWN_QUERY_CAP_S).expect("the cap is reached");
    assert!(gaps[at_cap..].iter().all(|&g| g == UNKNOWN_QUERY_CAP_S), "{gaps:?}");
    assert!(at_cap < 12, "the cap comes within minutes: {gaps:?}");
    let last_hour = queries.iter().filter(|&&q| q + 3600 > *queries.last().expect("queries")).count();
    assert!(last_hour <= 13, "at most one query per 5 minutes: {last_hour} in the last hour");
    // Reported after one hour, not before.
    let a = alerts.lock().clone();
    assert!(a.iter().filter(|(at, _)| *at < 1_800_000_000 + 3600).all(|(_, n)| *n == 0));
    assert!(a.iter().any(|(at, n)| *at >= 1_800_000_000 + 3600 && *n == 1));
    assert!(f.engine.unresolved(3600).expect("list").is_empty(), "resolved now");
    let d = f.engine.details(&id).expect("details").expect("exists");
    assert!(d.last_request_id.is_some(), "the answer's Request-ID is kept");
}

#[tokio::test]
async fn b5_2_a_k12_debt_is_recorded_and_shown() {
    let f = fx(KeyMode::PublicKey, Holds::PublicKey).await;
    let (id, s, _) = f.run("c1", vec![Step::SuccessDebt]).await;
    assert_eq!(s, PaymentState::Paid);
    let d = f.engine.details(&id).expect("details").expect("exists");
    assert_eq!(d.debt_state.as_deref(), Some("DEBT"));
    assert!(d.transaction_id.is_some());
    let (id2, _, _) = f.run("c2", vec![]).await;
    assert_eq!(f.engine.details(&id2).expect("d").expect("e").debt_state.as_deref(), Some("NOT_DEBT"));
    let url = f.client.repayment_url("org1", "ou1").await;
    assert!(matches!(url, Err(MerchantError::Api { status: 404, .. })), "unknown user: {url:?}");
    f.mock.enroll_user("org1", "ou1", "SIGNED");
    assert!(f
        .client
        .repayment_url("org1", "ou1")
        .await
        .expect("B5.2 repayment URL")
        .repayment_url
        .starts_with("https://"));
}

#[tokio::test]
async fn b5_scene_info_device_ip_is_the_terminals_address() {
    let f = fx(KeyMode::PublicKey, Holds::PublicKey).await;
    let (st, _) =
        f.engine.record_from(&payment("k1", "c1"), Some("192.168.7.21".parse().expect("ip"))).expect("record");
    f.engine.drive(&st.payment_id).await.expect("drive");
    let (st2, _) = f.engine.record(&payment("k2", "c2")).expect("record");
    f.engine.drive(&st2.payment_id).await.expect("drive");
    let orders: Vec<String> = f.log.lock().iter().map(|a| a.out_trade_no.clone()).collect();
    let ip = |o: &str| f.mock.order_request(o).expect("order").scene_info.device_ip;
    assert_eq!(ip(&orders[0]), "192.168.7.21");
    assert_eq!(ip(&orders[1]), "10.0.0.7", "the configured device_ip without a terminal");
}

#[tokio::test]
async fn b7_user_contract_organisation_and_face_collection_endpoints() {
    let f = fx(KeyMode::PublicKey, Holds::PublicKey).await;
    let uid = f.mock.enroll_user("org1", "ou1", "SIGNED");
    let u = f.client.query_user("org1", "ou1").await.expect("user query");
    assert_eq!(
        (u.contract_state.as_deref(), u.face_image_ok, u.user_id.as_deref()),
        (Some("SIGNED"), Some(true), Some(uid.as_str()))
    );
    let cid = u.contract_id.clone().expect("contract id");
    let c = f.client.query_contract(&cid, "wx0001").await.expect("contract query");
    assert_eq!(c.contract_state.as_deref(), Some("SIGNED"));
    f.client.terminate_contract("org1", &uid).await.expect("terminate: 204");
    assert_eq!(f.client.query_user("org1", "ou1").await.expect("q").contract_state.as_deref(), Some("TERMINATED"));
    assert!(matches!(f.client.terminate_contract("org1", &uid).await, Err(MerchantError::Api { status: 400, .. })));
    assert!(f.client.query_organization("org1").await.expect("orgs").is_some());
    assert!(f.client.query_organization("org-of-another").await.expect("orgs").is_none());
    let list = f.client.face_collections("org1", 0, 10).await.expect("collections");
    assert_eq!(list.total_count, 1);
    let one = f.client.face_collection("org1", &list.data[0].collection_id).await.expect("collection");
    assert_eq!(one.user_id.as_deref(), Some(uid.as_str()));
    assert!(f.client.query_user("org1", "a/b").await.is_err(), "ids are checked before they reach the path");
}

#[test]
fn b0_a_platform_key_file_missing_or_not_a_key_stops_the_start_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        facepay::sim::wechatpay_fixture::create(
            dir.path(),
            KeyMode::Migration,
            "http://127.0.0.1:9",
            "127.0.0.1:0",
            Duration::from_secs(1),
        )
        .expect("fixture");
    });
    let cfg = dir.path().join("backend.json");
    let good = facepay::merchant::config::BackendConfig::load(&cfg).expect("a config listing both keys is valid");
    good.client().expect("both keys load");
    let text = std::fs::read_to_string(&cfg).expect("config");
    let secret_line = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsecretsecret";
    std::fs::write(
        dir.path().join("junk.pem"),
        format!("-----BEGIN CERTIFICATE-----\n{secret_line}\n-----END CERTIFICATE-----\n"),
    )
    .expect("write");
    for (name, replacement) in [("missing", "nothere.pem"), ("junk", "junk.pem")] {
        let p = dir.path().join(format!("{name}.json"));
        std::fs::write(&p, text.replace("platform_public_key.pem", replacement)).expect("write");
        let e = facepay::merchant::config::BackendConfig::load(&p)
            .and_then(|c| c.client().map(|_| ()))
            .expect_err("refused");
        let m = e.to_string();
        assert!(m.contains("platform.public_key_file"), "{name}: {m}");
        assert!(!m.contains(secret_line) && !m.contains("BEGIN"), "{name}: never the key: {m}");
    }
}

#[tokio::test]
async fn b5_1_a_404_on_the_query_means_no_such_order_only_with_order_not_exist() {
    let f = fx(KeyMode::PublicKey, Holds::PublicKey).await;
    f.mock.fail_queries_with(Some((404, "NOT_FOUND")));
    let (m, log) = (f.mock.clone(), f.log.clone());
    f.engine.set_observer(move |a| {
        log.lock().push(a.clone());
        if log.lock().iter().filter(|a| a.kind == "query").count() >= 3 {
            m.fail_queries_with(None);
        }
    });
    let steps = vec![Step::Hang, Step::Trade(facepay::merchant::models::TradeState::Success)];
    let (_, s, _) = f.run("c1", steps).await;
    assert_eq!(s, PaymentState::Paid);
    assert_eq!(
        f.outcomes(),
        ["pay:UNKNOWN", "query:UNKNOWN", "query:UNKNOWN", "query:UNKNOWN", "query:ORDER_NOT_EXIST", "pay:SUCCESS"],
        "a bare 404 leaves the outcome unknown; only ORDER_NOT_EXIST lets the order be sent again"
    );
    assert_eq!(f.mock.ledger().len(), 1);
}
