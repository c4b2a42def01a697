//! SPEC B5 "never lost, never charged twice" under `kill -9`: 200 scripted deductions go
//! through `facepay backend serve` (a child process) into the in-process mock WeChat Pay;
//! the backend is killed with SIGKILL at random points and restarted. At the end every
//! payment is in exactly one final state, the mock's ledger shows no order or payment
//! charged twice, every PAID payment has exactly one charge and no FAILED one has any.
//! The terminal side is an enrolled device signing every request (SPEC S1).
//! Mid-run, WeChat Pay sends a `FACEPAY.USER_STATE_CHANGE` twice (B7) while the backend is
//! being killed: the deliveries that fail are sent again, as WeChat Pay does, and the
//! contract state ends applied exactly once.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use facepay::sim::wechatpay::{self, KeyMode};
use facepay::sim::wechatpay_fixture::{self, parse_step, ORGANIZATION};
use facepay::wire::{auth, PaymentState, PaymentStatus};
use facepay::Secret;
use rand::{Rng, SeedableRng};

/// Enrols device `d1` through the CLI, as an operator does (S1).
fn enrol(config: &std::path::Path) -> Secret {
    let out = Command::new(env!("CARGO_BIN_EXE_facepay"))
        .args(["backend", "devices", "--config"])
        .arg(config)
        .args(["add", "--device-id", "d1", "--organization", ORGANIZATION])
        .output()
        .expect("enrol");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    Secret::new(v["device_credential"].as_str().expect("credential"))
}

/// A request of device `d1`, signed now.
fn signed(
    http: &reqwest::Client,
    cred: &Secret,
    method: reqwest::Method,
    url: &str,
    body: &[u8],
) -> reqwest::RequestBuilder {
    let u = reqwest::Url::parse(url).expect("url");
    let now = facepay::clock::unix_s(std::time::SystemTime::now());
    let a = auth::authorization(cred, "d1", method.as_str(), u.path(), body, now, &auth::new_nonce());
    let rb = http.request(method, u).header("authorization", a);
    if body.is_empty() {
        rb
    } else {
        rb.header("content-type", "application/json").body(body.to_vec())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn start(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_facepay"))
        .args(["backend", "serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the backend")
}

const SCRIPTS: &[&[&str]] = &[
    &["SUCCESS"],
    &["NOTPAY", "SUCCESS"],
    &["USERPAYING", "NOTPAY", "SUCCESS"],
    &["SYSTEM_ERROR", "SUCCESS"],
    &["SYSTEM_ERROR", "SYSTEM_ERROR", "SUCCESS"],
    &["RATELIMIT_EXCEEDED", "SUCCESS"],
    &["CLOSED", "SUCCESS"],
    &["PAYERROR", "SUCCESS"],
    &["CHARGE_THEN_HANG"],
    &["HANG", "SUCCESS"],
    &["CHARGE_BAD_SIGNATURE"],
    &["PARAM_ERROR"],
    &["INVALID_REQUEST"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b5_kill9_during_200_deductions_loses_nothing_and_charges_nothing_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mock_port = free_port();
    let be_port = free_port();
    let mock = wechatpay_fixture::create(
        dir.path(),
        KeyMode::PublicKey,
        &format!("http://127.0.0.1:{mock_port}"),
        &format!("127.0.0.1:{be_port}"),
        Duration::from_millis(600),
    )
    .expect("fixture");
    let cfg_path = dir.path().join("backend.json");
    let cfg = std::fs::read_to_string(&cfg_path).expect("config");
    std::fs::write(
        &cfg_path,
        cfg.replace("\"retry_delay_ms_per_s\": 1000", "\"retry_delay_ms_per_s\": 20")
            .replace("\"timeout_ms\": 1000", "\"timeout_ms\": 300")
            // One device submits and polls 200 payments as fast as it can: no rate limit here.
            .replace("\"plain_http\": true", "\"plain_http\": true, \"rate_per_s\": 100000, \"rate_burst\": 100000"),
    )
    .expect("config");
    let cred = enrol(&cfg_path);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut expected = HashMap::new();
    for i in 0..200 {
        let s = SCRIPTS[rng.random_range(0..SCRIPTS.len())];
        let code = format!("face{i:03}");
        mock.script(&code, s.iter().map(|x| parse_step(x).expect("known step")));
        expected.insert(code, s);
    }
    wechatpay::serve(mock.clone(), mock_port).await.expect("mock");
    mock.enroll_user(ORGANIZATION, "ou-notify", "SIGNED");
    mock.set_notify_url(&format!("http://127.0.0.1:{be_port}/facepay/v1/wechatpay/notify"));

    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("client");
    let base = format!("http://127.0.0.1:{be_port}/facepay/v1");
    let mut child = start(&cfg_path);
    let mut kills = 0;
    let mut next_kill = Instant::now() + Duration::from_millis(rng.random_range(100..500));
    let mut ids: HashMap<String, String> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    // Submit all 200 (idempotent by key: a submit lost in a crash is simply sent again).
    let codes: Vec<String> = {
        let mut v: Vec<_> = expected.keys().cloned().collect();
        v.sort();
        v
    };
    let mut i = 0;
    while i < codes.len() {
        assert!(Instant::now() < deadline, "submissions did not finish");
        if Instant::now() >= next_kill && kills < 8 {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
            kills += 1;
            child = start(&cfg_path);
            next_kill = Instant::now() + Duration::from_millis(rng.random_range(200..900));
        }
        let body = serde_json::json!({
            "idempotency_key": format!("key-{}", codes[i]), "face_token": codes[i], "user_id": "u", "out_user_id": "ou",
            "amount_fen": 800, "organization_id": ORGANIZATION, "device_id": "d1",
        });
        let bytes = body.to_string().into_bytes();
        match signed(&http, &cred, reqwest::Method::POST, &format!("{base}/payments"), &bytes).send().await {
            Ok(r) if r.status().is_success() => {
                let st: PaymentStatus = r.json().await.expect("status body");
                if let Some(prev) = ids.insert(codes[i].clone(), st.payment_id.clone()) {
                    assert_eq!(prev, st.payment_id, "same key, same payment");
                }
                i += 1;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    // Keep killing a few more times while deductions run, then let it finish. A contract
    // notification arrives (twice) in the middle of it, racing the kills.
    let m = mock.clone();
    let notification = tokio::spawn(async move { m.change_contract(ORGANIZATION, "ou-notify", "TERMINATED", 2).await });
    while kills < 11 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..700))).await;
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        kills += 1;
        child = start(&cfg_path);
    }
    let mut notified = notification.await.expect("notification task");
    // WeChat Pay sends a notification again until it is answered 2xx.
    let mut tries = 0;
    while !notified.iter().any(|s| (200..300).contains(s)) {
        assert!(Instant::now() < deadline, "the notification was never accepted: {notified:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        tries += 1;
        notified = mock.redeliver_last().await;
    }
    let mut states: HashMap<String, PaymentState> = HashMap::new();
    while states.len() < ids.len() {
        assert!(Instant::now() < deadline, "payments not final in time: {} of {}", states.len(), ids.len());
        for (code, id) in &ids {
            if states.contains_key(code) {
                continue;
            }
            if let Ok(r) =
                signed(&http, &cred, reqwest::Method::GET, &format!("{base}/payments/{id}"), b"").send().await
            {
                if let Ok(st) = r.json::<PaymentStatus>().await {
                    if st.state.is_final() {
                        states.insert(code.clone(), st.state);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().expect("stop");
    child.wait().expect("reap");

    let ledger = mock.ledger();
    assert_eq!(mock.charged_twice(), 0, "no order and no payment charged twice");
    let mut charges: HashMap<&str, usize> = HashMap::new();
    for c in &ledger {
        *charges.entry(c.payment.as_str()).or_default() += 1;
    }
    let mut paid = 0;
    for (code, id) in &ids {
        let n = charges.get(id.as_str()).copied().unwrap_or(0);
        let script = expected[code];
        let should_pay = !matches!(script[0], "PARAM_ERROR" | "INVALID_REQUEST");
        match states[code] {
            PaymentState::Paid => {
                paid += 1;
                assert_eq!(n, 1, "{code}: a PAID payment has exactly one charge");
            }
            PaymentState::Failed => assert_eq!(n, 0, "{code}: a FAILED payment has no charge"),
            PaymentState::Processing => unreachable!("only final states are collected"),
        }
        // A refused first attempt whose answer was lost in a crash is, correctly, queried
        // (no order) and sent again under the same order number, so it may end paid.
        if should_pay {
            assert_eq!(states[code], PaymentState::Paid, "{code}: {script:?} must end paid");
        }
    }
    assert_eq!(ledger.len(), paid, "every charge belongs to a PAID payment: none lost");
    let store =
        facepay::store::Store::open(&facepay::store::StorePath::File(dir.path().join("backend.db"))).expect("db");
    let state = facepay::merchant::contracts::state(store.conn(), ORGANIZATION, "ou-notify").expect("registry");
    assert_eq!(state.as_deref(), Some("TERMINATED"), "the contract notification was applied");
    let deliveries = mock.deliveries();
    let notes: std::collections::HashSet<&str> = deliveries.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(notes.len(), 1, "one notification, delivered {} times", deliveries.len());
    let note = notes.into_iter().next().expect("one id");
    assert!(facepay::merchant::contracts::applied(store.conn(), note).expect("applied"));
    let n: i64 = store.conn().query_row("SELECT COUNT(*) FROM mch_notifications", [], |r| r.get(0)).expect("count");
    assert_eq!(n, 1, "applied once");
    eprintln!("notification: {} deliveries ({tries} resends): {deliveries:?}", deliveries.len());
    eprintln!("crash test: {} payments, {paid} paid, {kills} kill -9", ids.len());
}
