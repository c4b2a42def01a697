//! SPEC B5 against the mock WeChat Pay server: one test per row of the table, plus the
//! unknown-outcome rule (query before retry), response rejections (forged, expired,
//! unsigned, probe), both platform-key modes, B2/B4 encryption, and the ledger proof
//! "no order charged twice".

use std::sync::Arc;
use std::time::Duration;

use facepay::clock::{unix_s, Clock, ManualClock};
use facepay::merchant::client::{PlatformMode, WechatPayClient};
use facepay::merchant::engine::{AttemptReport, DeductionParams, Engine};
use facepay::merchant::models::{FacepayUser, Identification, PresignRequest, StudentInfo, TradeState, UserUpdate};
use facepay::merchant::sign::{MerchantSigner, PlatformKeys};
use facepay::merchant::users::UserRegistry;
use facepay::merchant::MerchantError;
use facepay::sim::wechatpay::{self, KeyMode, MockConfig, MockState, SigFault, Step};
use facepay::store::Store;
use facepay::store::StorePath;
use facepay::wire::{PaymentRequest, PaymentState};
use facepay::Secret;
use parking_lot::Mutex;

const MCH: &str = "1900000100";
const APIV3: &str = "0123456789abcdef0123456789abcdef";

struct Fx {
    mock: Arc<MockState>,
    client: Arc<WechatPayClient>,
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    log: Arc<Mutex<Vec<AttemptReport>>>,
}

async fn fx(mode: KeyMode) -> Fx {
    let pem = facepay::merchant::generate_test_key_pem();
    let signer = MerchantSigner::from_pem(MCH, "MCHSERIAL01", &pem).expect("key");
    let mock = MockState::new(MockConfig {
        mchid: MCH.into(),
        merchant_serial: "MCHSERIAL01".into(),
        merchant_public_key: signer.public_key_der(),
        mode,
        apiv3_key: APIV3.into(),
        organizations: vec!["org1".into()],
        hang: Duration::from_secs(2),
    });
    let (addr, _) = wechatpay::serve(mock.clone(), 0).await.expect("bind");
    let keys = PlatformKeys::new();
    let pmode = match mode {
        KeyMode::PublicKey => {
            keys.insert(&mock.platform_serial, mock.platform_public_key());
            PlatformMode::PublicKey
        }
        KeyMode::Certificates => {
            PlatformMode::Certificates { apiv3_key: Secret::new(APIV3), refresh_every: Duration::from_secs(3600) }
        }
        KeyMode::Migration => {
            keys.insert(&mock.platform_serial, mock.platform_public_key());
            PlatformMode::Certificates { apiv3_key: Secret::new(APIV3), refresh_every: Duration::from_secs(3600) }
        }
    };
    let client = Arc::new(
        WechatPayClient::new(&format!("http://{addr}"), signer, keys, pmode, Duration::from_millis(400))
            .expect("client"),
    );
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
    Fx { mock, client, engine, clock, log }
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
    async fn run(&self, code: &str, steps: Vec<Step>) -> (PaymentState, Option<String>) {
        self.mock.script(code, steps);
        let (st, _) = self.engine.record(&payment(&format!("k-{code}"), code)).expect("record");
        let s = self.engine.drive(&st.payment_id).await.expect("drive");
        let (_, reason) = self.engine.status(&st.payment_id).expect("status").expect("exists");
        (s, reason)
    }
    fn orders(&self) -> Vec<String> {
        let mut v: Vec<String> = self.log.lock().iter().map(|a| a.out_trade_no.clone()).collect();
        v.dedup();
        v
    }
    fn outcomes(&self) -> Vec<String> {
        self.log.lock().iter().map(|a| format!("{}:{}", a.kind, a.outcome)).collect()
    }
}

#[tokio::test]
async fn b5_success_is_paid_and_charged_once() {
    let f = fx(KeyMode::PublicKey).await;
    assert_eq!(f.run("c1", vec![Step::Trade(TradeState::Success)]).await.0, PaymentState::Paid);
    assert_eq!(f.mock.ledger().len(), 1);
    assert_eq!(f.outcomes(), ["pay:SUCCESS"]);
}

#[tokio::test]
async fn b5_refund_is_final_nothing_to_retry() {
    let f = fx(KeyMode::PublicKey).await;
    assert_eq!(f.run("c1", vec![Step::Trade(TradeState::Refund)]).await.0, PaymentState::Paid);
    assert_eq!(f.outcomes(), ["pay:REFUND"]);
}

#[tokio::test]
async fn b5_notpay_userpaying_retry_same_order_number() {
    let f = fx(KeyMode::PublicKey).await;
    let steps =
        vec![Step::Trade(TradeState::Notpay), Step::Trade(TradeState::Userpaying), Step::Trade(TradeState::Success)];
    assert_eq!(f.run("c1", steps).await.0, PaymentState::Paid);
    assert_eq!(f.outcomes(), ["pay:NOTPAY", "pay:USERPAYING", "pay:SUCCESS"]);
    assert_eq!(f.orders().len(), 1, "same order number throughout");
    assert_eq!(f.mock.ledger().len(), 1);
}

#[tokio::test]
async fn b5_notpay_retries_stop_after_24h() {
    let f = fx(KeyMode::PublicKey).await;
    let t = f.clock.clone();
    f.engine.set_observer(move |_| t.advance(Duration::from_secs(12 * 3600)));
    let (s, reason) = f.run("c1", vec![Step::Trade(TradeState::Notpay); 5]).await;
    assert_eq!((s, reason.as_deref()), (PaymentState::Failed, Some("EXPIRED_24H")));
    assert!(f.mock.ledger().is_empty());
}

#[tokio::test]
async fn b5_closed_revoked_payerror_retry_with_new_order_number() {
    let f = fx(KeyMode::PublicKey).await;
    let steps = vec![
        Step::Trade(TradeState::Closed),
        Step::Trade(TradeState::Revoked),
        Step::Trade(TradeState::Payerror),
        Step::Trade(TradeState::Success),
    ];
    assert_eq!(f.run("c1", steps).await.0, PaymentState::Paid);
    assert_eq!(f.orders().len(), 4, "a new order number after each");
    assert_eq!(f.mock.ledger().len(), 1);
    assert_eq!(f.mock.charged_twice(), 0);
}

#[tokio::test]
async fn b5_system_error_at_most_five_retries_per_order_per_day() {
    let f = fx(KeyMode::PublicKey).await;
    let (s, reason) = f.run("c1", vec![Step::Error(500, "SYSTEM_ERROR"); 8]).await;
    assert_eq!((s, reason.as_deref()), (PaymentState::Failed, Some("SYSTEM_ERROR_LIMIT")));
    assert_eq!(f.outcomes().len(), 6, "the first attempt and five retries, no sixth");
    assert_eq!(f.orders().len(), 1);

    let g = fx(KeyMode::PublicKey).await;
    let mut steps = vec![Step::Error(500, "SYSTEM_ERROR"); 5];
    steps.push(Step::Trade(TradeState::Success));
    assert_eq!(g.run("c2", steps).await.0, PaymentState::Paid);
    assert_eq!(g.orders().len(), 1);
}

#[tokio::test]
async fn b5_ratelimit_backs_off_then_retries() {
    let f = fx(KeyMode::PublicKey).await;
    let t0 = unix_s(f.clock.wall());
    let steps = vec![
        Step::Error(429, "RATELIMIT_EXCEEDED"),
        Step::Error(429, "RATELIMIT_EXCEEDED"),
        Step::Trade(TradeState::Success),
    ];
    assert_eq!(f.run("c1", steps).await.0, PaymentState::Paid);
    assert!(unix_s(f.clock.wall()) >= t0 + 3, "waited 1 s then 2 s");
    assert_eq!(f.orders().len(), 1);
}

#[tokio::test]
async fn b5_param_error_is_not_retried() {
    let f = fx(KeyMode::PublicKey).await;
    let (s, r) = f.run("c1", vec![Step::Error(400, "PARAM_ERROR"), Step::Trade(TradeState::Success)]).await;
    assert_eq!((s, r.as_deref()), (PaymentState::Failed, Some("PARAM_ERROR")));
    assert_eq!(f.outcomes(), ["pay:PARAM_ERROR"]);
}

#[tokio::test]
async fn b5_invalid_request_is_not_retried_and_surfaced() {
    let f = fx(KeyMode::PublicKey).await;
    let (s, r) = f.run("c1", vec![Step::Error(400, "INVALID_REQUEST"), Step::Trade(TradeState::Success)]).await;
    assert_eq!((s, r.as_deref()), (PaymentState::Failed, Some("INVALID_REQUEST")));
    assert_eq!(f.outcomes(), ["pay:INVALID_REQUEST"]);
    assert!(f.mock.ledger().is_empty());
}

#[tokio::test]
async fn b5_lost_answer_is_queried_not_recharged() {
    let f = fx(KeyMode::PublicKey).await;
    assert_eq!(f.run("c1", vec![Step::ChargeThenHang]).await.0, PaymentState::Paid);
    assert_eq!(f.outcomes(), ["pay:UNKNOWN", "query:SUCCESS"]);
    assert_eq!(f.mock.ledger().len(), 1);
}

#[tokio::test]
async fn b5_timeout_before_charge_queries_then_resends_same_order() {
    let f = fx(KeyMode::PublicKey).await;
    assert_eq!(f.run("c1", vec![Step::Hang, Step::Trade(TradeState::Success)]).await.0, PaymentState::Paid);
    assert_eq!(f.outcomes(), ["pay:UNKNOWN", "query:ORDER_NOT_EXIST", "pay:SUCCESS"]);
    assert_eq!(f.orders().len(), 1);
}

#[tokio::test]
async fn b5_forged_answer_is_unknown_and_queried() {
    let f = fx(KeyMode::PublicKey).await;
    assert_eq!(f.run("c1", vec![Step::ChargeBadSignature]).await.0, PaymentState::Paid);
    assert_eq!(f.outcomes(), ["pay:UNKNOWN", "query:SUCCESS"]);
    assert_eq!(f.mock.ledger().len(), 1);
}

#[tokio::test]
async fn b5_same_idempotency_key_is_one_payment() {
    let f = fx(KeyMode::PublicKey).await;
    let (a, new_a) = f.engine.record(&payment("k", "c1")).expect("record");
    let (b, new_b) = f.engine.record(&payment("k", "c1")).expect("record");
    assert_eq!((a.payment_id.clone(), new_a, new_b), (b.payment_id, true, false));
    let mut other = payment("k", "c1");
    other.amount_fen = 1;
    assert!(matches!(f.engine.record(&other), Err(MerchantError::Api { status: 409, .. })));
}

#[tokio::test]
async fn b_forged_expired_unsigned_probe_responses_are_rejected() {
    let f = fx(KeyMode::PublicKey).await;
    f.client.tokens("ou1", "org1").await.expect("a clean answer verifies");
    for fault in [SigFault::Forged, SigFault::Expired, SigFault::Unsigned, SigFault::Probe] {
        f.mock.spoil_next_signature(fault);
        let r = f.client.tokens("ou1", "org1").await;
        assert!(matches!(r, Err(MerchantError::Signature(_))), "{fault:?} must be rejected, got {r:?}");
    }
}

#[tokio::test]
async fn b_certificates_mode_downloads_decrypts_and_verifies() {
    let f = fx(KeyMode::Certificates).await;
    let t = f.client.tokens("ou1", "org1").await.expect("verified with the downloaded certificate");
    assert!(!t.token.is_empty());
    assert_eq!(f.run("c1", vec![Step::Trade(TradeState::Success)]).await.0, PaymentState::Paid);
}

#[tokio::test]
async fn b1_b3_wrong_organisation_is_a_clear_error() {
    let f = fx(KeyMode::PublicKey).await;
    let r = f.client.tokens("ou1", "org-of-another-merchant").await;
    assert!(matches!(r, Err(MerchantError::Api { status: 400, ref code, .. }) if code == "INVALID_REQUEST"));
}

#[tokio::test]
async fn b2_b4_sensitive_fields_are_encrypted_with_the_platform_key() {
    let f = fx(KeyMode::PublicKey).await;
    let u = UserUpdate {
        user_name: Some(Secret::new("张三")),
        phone: Some(Secret::new("13800138000")),
        ..Default::default()
    };
    f.client.update_user("org1", "ou1", &u).await.expect("B2 204");
    let sent = f.mock.user_updates.lock()[0].2.to_string();
    assert!(!sent.contains("13800138000") && !sent.contains("张三"));
    let p = PresignRequest {
        business_name: "canteen".into(),
        facepay_user: FacepayUser {
            out_user_id: "ou1".into(),
            organization_id: "org1".into(),
            identification_name: Secret::new("张三"),
            identification: Identification {
                identification_type: "IDCARD".into(),
                identification_number: Secret::new("110101200001011234"),
            },
            phone: Secret::new("13800138000"),
        },
        limit_bank_card: None,
        contract_mode: Some("LIMIT_NONE".into()),
    };
    assert!(!f.client.presign(&p).await.expect("B4").presign_token.is_empty());
}

#[tokio::test]
async fn b_wrong_merchant_key_is_refused_by_the_mock_without_retry_loop() {
    let f = fx(KeyMode::PublicKey).await;
    let other = MerchantSigner::from_pem(MCH, "MCHSERIAL01", &facepay::merchant::generate_test_key_pem()).expect("key");
    let keys = PlatformKeys::new();
    keys.insert(&f.mock.platform_serial, f.mock.platform_public_key());
    let bad = WechatPayClient::new(&base(&f).await, other, keys, PlatformMode::PublicKey, Duration::from_millis(400))
        .expect("client");
    let r = bad.tokens("ou1", "org1").await;
    assert!(matches!(r, Err(MerchantError::Api { status: 401, ref code, .. }) if code == "SIGN_ERROR"));
    assert_eq!(*f.mock.rejected_signatures.lock(), 1);
}

async fn base(f: &Fx) -> String {
    let (addr, _) = wechatpay::serve(f.mock.clone(), 0).await.expect("bind");
    format!("http://{addr}")
}

#[tokio::test]
async fn b_certificates_mode_refreshes_on_an_unknown_serial() {
    let f = fx(KeyMode::Certificates).await;
    f.client.tokens("ou1", "org1").await.expect("first call downloads the certificates");
    let n0 = *f.mock.requests.lock();
    f.client.keys.clear();
    f.client.tokens("ou1", "org1").await.expect("the unknown serial triggers one refresh");
    assert_eq!(*f.mock.requests.lock(), n0 + 2, "the call and one /v3/certificates download");
}

#[tokio::test]
async fn b2_b6_user_change_is_synced_under_the_one_out_user_id() {
    let f = fx(KeyMode::PublicKey).await;
    let reg = UserRegistry::new(Store::open(&StorePath::Memory).expect("store")).expect("schema");
    let id = reg.out_user_id("org1", "student-7").expect("id");
    let change = UserUpdate {
        student_info: Some(StudentInfo { class_name: "3-2".into() }),
        phone: Some(Secret::new("13800138000")),
        ..Default::default()
    };
    reg.sync(&f.client, "org1", "student-7", &change).await.expect("B2");
    reg.sync(&f.client, "org1", "student-7", &UserUpdate { status: Some("DISABLED".into()), ..Default::default() })
        .await
        .expect("B2");
    let u = f.mock.user_updates.lock();
    assert_eq!(u.len(), 2);
    assert!(u.iter().all(|(org, out, _)| org == "org1" && *out == id), "one out_user_id for the user (B6)");
    assert_eq!(u[0].2["student_info"]["class_name"], "3-2");
    assert_ne!(u[0].2["phone"], "13800138000");
}
