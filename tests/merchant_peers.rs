//! Independent implementations against our code (SPEC B, API-NOTES §2): the third-party
//! `wechatpayv3` SDK (PyPI, installed by `scripts/test` into `bench/peers/.venv`) signs
//! its own requests and verifies our mock's responses, in public-key mode and in
//! certificates mode (its `cryptography` X.509 parser reads our certificate). Skipped
//! with a warning when the venv is absent.

use std::path::PathBuf;
use std::time::Duration;

use facepay::sim::wechatpay::{self, KeyMode};
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
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mock = wechatpay_fixture::create(
        dir.path(),
        mode,
        &format!("http://127.0.0.1:{port}"),
        "127.0.0.1:0",
        Duration::from_secs(1),
    )
    .expect("fixture");
    wechatpay::serve(mock.clone(), port).await.expect("serve");
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
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mock = wechatpay_fixture::create(
        dir.path(),
        KeyMode::PublicKey,
        &format!("http://127.0.0.1:{port}"),
        "127.0.0.1:0",
        Duration::from_secs(1),
    )
    .expect("fixture");
    wechatpay::serve(mock.clone(), port).await.expect("serve");
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
