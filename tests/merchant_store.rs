//! Store concurrency of the merchant backend: one `facepay backend serve` and sixteen
//! `facepay backend deduct` processes started at once on one SQLite store (plus
//! payments submitted to the running server and operator commands alongside): every
//! payment ends, each is charged exactly once, and no process fails with "database is
//! locked". Then the operator verbs (`backend payments`, `user show|terminate`,
//! `repayment-url`) against the same store. The server's terminal is enrolled (while the
//! deductions run) and signs its requests (S1).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use facepay::sim::wechatpay::{self, KeyMode};
use facepay::sim::wechatpay_fixture::{self, parse_step, ORGANIZATION};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn facepay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_facepay"))
}

/// A request of device `d`, signed now (S1).
fn signed(
    http: &reqwest::Client,
    cred: &facepay::Secret,
    method: &str,
    url: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    use facepay::wire::auth;
    let u = reqwest::Url::parse(url).expect("url");
    let now = facepay::clock::unix_s(std::time::SystemTime::now());
    let a = auth::authorization(cred, "d", method, u.path(), &body, now, &auth::new_nonce());
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let rb = http.request(m, u).header("authorization", a);
    if body.is_empty() {
        rb
    } else {
        rb.header("content-type", "application/json").body(body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b5_sixteen_deduct_processes_and_serve_share_one_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mock_port, be_port) = (free_port(), free_port());
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
    std::fs::write(&cfg_path, cfg.replace("\"retry_delay_ms_per_s\": 1000", "\"retry_delay_ms_per_s\": 20"))
        .expect("config");
    for i in 0..16 {
        let steps: &[&str] = if i % 2 == 0 { &["SYSTEM_ERROR", "SUCCESS"] } else { &["NOTPAY", "SUCCESS"] };
        mock.script(&format!("cli{i:02}"), steps.iter().map(|s| parse_step(s).expect("step")));
    }
    wechatpay::serve(mock.clone(), mock_port).await.expect("mock");
    // Sixteen deductions and the server started at once on a store that does not exist
    // yet: all of them create it, its WAL and its tables concurrently.
    let deducts: Vec<_> = (0..16)
        .map(|i| {
            facepay()
                .args(["backend", "deduct", "--config"])
                .arg(&cfg_path)
                .args(["--auth-code", &format!("cli{i:02}"), "--amount", "300"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("deduct")
        })
        .collect();
    let mut serve = facepay()
        .args(["backend", "serve", "--config"])
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("client");
    let base = format!("http://127.0.0.1:{be_port}/facepay/v1");
    let up = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/payments/none")).send().await.is_err() {
        assert!(Instant::now() < up, "backend did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Meanwhile an operator enrols the terminal, the server takes its payments and an
    // operator lists them.
    let enrol = facepay()
        .args(["backend", "devices", "--config"])
        .arg(&cfg_path)
        .args(["add", "--device-id", "d", "--organization", ORGANIZATION])
        .output()
        .expect("enrol");
    assert!(enrol.status.success(), "{}", String::from_utf8_lossy(&enrol.stderr));
    let v: serde_json::Value = serde_json::from_slice(&enrol.stdout).expect("json");
    let cred = facepay::Secret::new(v["device_credential"].as_str().expect("credential"));
    let mut ids = Vec::new();
    for i in 0..16 {
        let body = serde_json::json!({"idempotency_key": format!("srv{i}"), "face_token": format!("srv{i:02}"),
            "user_id": "u", "out_user_id": "ou", "amount_fen": 200, "organization_id": ORGANIZATION, "device_id": "d"});
        let r = signed(&http, &cred, "POST", &format!("{base}/payments"), body.to_string().into_bytes())
            .send()
            .await
            .expect("submit");
        assert!(r.status().is_success(), "{}", r.status());
        ids.push(r.json::<serde_json::Value>().await.expect("json")["payment_id"].as_str().expect("id").to_string());
    }
    let listing = facepay().args(["backend", "payments", "--config"]).arg(&cfg_path).output().expect("payments");
    assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
    let mut failures = Vec::new();
    for (i, c) in deducts.into_iter().enumerate() {
        let out = c.wait_with_output().expect("deduct ends");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(!err.contains("locked") && !stdout.contains("locked"), "deduct {i}: {err}");
        if !out.status.success() {
            failures.push(format!("deduct {i}: {err}"));
        }
        let last: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("a final line")).expect("json");
        assert_eq!(last["state"], "PAID", "deduct {i}: {stdout}");
    }
    assert!(failures.is_empty(), "{failures:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &ids {
        loop {
            let s: serde_json::Value = signed(&http, &cred, "GET", &format!("{base}/payments/{id}"), Vec::new())
                .send()
                .await
                .expect("status")
                .json()
                .await
                .expect("json");
            if s["state"] == "PAID" {
                break;
            }
            assert!(Instant::now() < deadline, "{id} not paid: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    serve.kill().expect("stop");
    let out = serve.wait_with_output().expect("reap");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("locked"));
    assert_eq!(mock.ledger().len(), 32, "every payment charged once");
    assert_eq!(mock.charged_twice(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b7_b5_operator_verbs_show_terminate_repayment_and_unresolved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mock_port = free_port();
    let mock = wechatpay_fixture::create(
        dir.path(),
        KeyMode::PublicKey,
        &format!("http://127.0.0.1:{mock_port}"),
        "127.0.0.1:0",
        Duration::from_millis(600),
    )
    .expect("fixture");
    wechatpay::serve(mock.clone(), mock_port).await.expect("mock");
    let cfg = dir.path().join("backend.json");
    let uid = mock.enroll_user(ORGANIZATION, "ou7", "SIGNED");
    let run = |args: &[&str]| {
        let out = facepay().args(args).arg("--config").arg(&cfg).output().expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, out, err) = run(&["backend", "user", "show", "--organization-id", ORGANIZATION, "--out-user-id", "ou7"]);
    assert!(ok, "{err}");
    let u: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!((u["contract_state"].as_str(), u["user_id"].as_str()), (Some("SIGNED"), Some(uid.as_str())));
    let (ok, out, err) = run(&["backend", "user", "terminate", "--organization-id", ORGANIZATION, "--user-id", &uid]);
    assert!(ok && out.contains("\"registry_updated\":true"), "{out} {err}");
    assert_eq!(mock.user(ORGANIZATION, "ou7").expect("user").contract_state, "TERMINATED");
    // The registry refuses the user's next deduction before anything is sent.
    let (ok, out, _) = run(&["backend", "deduct", "--auth-code", "x1", "--amount", "5"]);
    assert!(!ok || out.contains("PAID"), "a CLI deduction has no user: it is not refused");
    let (ok, out, err) = run(&["backend", "repayment-url", "--organization-id", ORGANIZATION, "--out-user-id", "ou7"]);
    assert!(ok && out.contains("repayment_url"), "{out} {err}");
    let (ok, out, err) = run(&["backend", "payments", "--unresolved"]);
    assert!(ok && out.trim().is_empty(), "nothing unresolved: {out} {err}");
    let (ok, _, err) = run(&["backend", "user", "show", "--organization-id", "org-other", "--out-user-id", "ou7"]);
    assert!(!ok && err.contains("org-other"), "T3.5 first: {err}");
}
