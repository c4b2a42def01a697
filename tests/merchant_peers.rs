//! Independent implementations against our code (SPEC B, API-NOTES §2): the third-party
//! `wechatpayv3` SDK (PyPI, installed by `scripts/test` into `bench/peers/.venv`) signs
//! its own requests and verifies our mock's responses, in public-key mode and in
//! certificates mode (its `cryptography` X.509 parser reads our certificate). Skipped
//! with a warning when the venv is absent.

use std::path::PathBuf;
use std::time::Duration;

use facepay::sim::wechatpay::KeyMode;
use facepay::sim::wechatpay_fixture;

/// The venv's python, if it can import the peer SDK (the venv is shared with other peers,
/// so its existence alone proves nothing).
fn python() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/peers/.venv/bin/python");
    let importable =
        std::process::Command::new(&p).args(["-c", "import wechatpayv3"]).output().is_ok_and(|o| o.status.success());
    importable.then_some(p)
}

async fn interop(mode: KeyMode) {
    let Some(py) = python() else {
        eprintln!(
            "warning: wechatpayv3 is not importable from bench/peers/.venv (scripts/test installs it): skipping the peer SDK check"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (mock, _) = wechatpay_fixture::start(dir.path(), mode, Duration::from_secs(1)).await.expect("mock");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/peers/wechatpayv3_peer.py");
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(py).arg(script).arg("interop").arg("--dir").arg(d).output()
    })
    .await
    .expect("join")
    .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "peer failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"ok\": true"), "{stdout}");
    assert_eq!(*mock.rejected_signatures.lock(), 0, "every request of the peer verified");
    assert_eq!(mock.ledger().len(), 1, "the peer's deduction was charged once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_wechatpayv3_sdk_interoperates_public_key_mode() {
    interop(KeyMode::PublicKey).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_wechatpayv3_sdk_interoperates_certificates_mode() {
    interop(KeyMode::Certificates).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_wechatpay_axios_plugin_sdk_interoperates_public_key_mode() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/peers/node");
    if !root.join("node_modules/wechatpay-axios-plugin").exists() {
        eprintln!(
            "warning: bench/peers/node/node_modules missing (scripts/test installs it): skipping the node peer check"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (mock, _) =
        wechatpay_fixture::start(dir.path(), KeyMode::PublicKey, Duration::from_secs(1)).await.expect("mock");
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(root.join("wechatpay_axios_peer.js"))
            .arg("interop")
            .arg("--dir")
            .arg(d)
            .output()
    })
    .await
    .expect("join");
    let Ok(out) = out else {
        eprintln!("warning: node not found: skipping the node peer check");
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("\"ok\":true"), "peer failed: {stdout}");
    assert_eq!(*mock.rejected_signatures.lock(), 0);
    assert_eq!(mock.ledger().len(), 1);
}

/// The built wechatpay-java peer (`scripts/test` builds it with Maven): its classpath.
fn java_peer() -> Option<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/peers/java/target");
    let deps = std::fs::read_to_string(root.join("classpath.txt")).ok()?;
    let jar = root.join("wechatpay-java-peer-0.1.0.jar");
    jar.exists().then(|| format!("{}:{}", jar.display(), deps.trim()))
}

/// SPEC B0, B7: the official wechatpay-java SDK drives the mock with its own signing,
/// User-Agent, Wechatpay-Serial and answer validation, meets the mock's INVALID_REQUEST
/// for a charged credential, and its NotificationParser accepts the mock's notification.
async fn java_interop(mode: KeyMode) {
    let Some(cp) = java_peer() else {
        eprintln!(
            "warning: bench/peers/java is not built (scripts/test builds it with Maven): skipping the wechatpay-java check"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (mock, _) = wechatpay_fixture::start(dir.path(), mode, Duration::from_secs(1)).await.expect("mock");
    mock.enroll_user(wechatpay_fixture::ORGANIZATION, "ou-java", "TERMINATED");
    let (_, headers, body) = mock.user_state_notification(wechatpay_fixture::ORGANIZATION, "ou-java").expect("user");
    let h: serde_json::Map<String, serde_json::Value> =
        headers.into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
    let note = dir.path().join("notification.json");
    std::fs::write(&note, serde_json::json!({"headers": h, "body": body}).to_string()).expect("write");
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("java")
            .args(["-cp", &cp, "io.facepay.peer.Peer", "interop", "--dir"])
            .arg(d)
            .arg("--notification")
            .arg(note)
            .output()
    })
    .await
    .expect("join");
    let Ok(out) = out else {
        eprintln!("warning: java not found: skipping the wechatpay-java check");
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{mode:?}: peer failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["refused"], "400 INVALID_REQUEST", "a charged credential under another order: {v}");
    assert_eq!(v["notification_out_user_id"], "ou-java", "NotificationParser accepted the mock's notification");
    assert_eq!(*mock.rejected_signatures.lock(), 0, "every request of the SDK verified");
    assert_eq!(mock.ledger().len(), 1, "charged once");
    let want = match mode {
        KeyMode::Certificates => mock.certificate_serial.clone(),
        _ => Some(mock.platform_serial.clone()),
    };
    for r in mock.seen.lock().iter() {
        assert!(r.user_agent.as_deref().is_some_and(|u| u.starts_with("WechatPay-Java/")), "{r:?}");
        assert_eq!(r.serial, want, "the SDK names its key on every request: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b0_b7_wechatpay_java_interoperates_public_key_mode() {
    java_interop(KeyMode::PublicKey).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b0_b7_wechatpay_java_interoperates_certificates_mode() {
    java_interop(KeyMode::Certificates).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b0_b7_wechatpay_java_interoperates_migration_mode() {
    java_interop(KeyMode::Migration).await;
}
