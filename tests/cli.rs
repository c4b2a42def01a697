//! The CLI contract: `--help` on every command, a one-line error and a non-zero exit on
//! bad input.

use std::process::Command;

fn facepay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_facepay")).args(args).output().expect("run facepay")
}

#[test]
fn every_command_explains_its_flags() {
    let out = facepay(&["demo", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--terminals", "--gates", "--hours", "--seed", "--report"] {
        assert!(text.contains(flag), "demo --help lacks {flag}: {text}");
    }
    for args in [&["bench", "--help"][..], &["bench", "flow", "--help"], &["bench", "startup", "--help"]] {
        let out = facepay(args);
        assert!(out.status.success(), "{args:?}");
    }
}

#[test]
fn bad_input_is_one_line_and_non_zero() {
    let out = facepay(&["demo", "--terminals", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("facepay: error:") && err.contains("terminals"), "{err}");
    let out = facepay(&["check-config", "/nonexistent/config.json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("facepay: error: cannot read"));
}

#[test]
fn demo_report_is_written_as_json() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.json");
    let out = facepay(&["demo", "--hours", "2", "--terminals", "1", "--report", path.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("charged twice: 0 / lost: 0"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("report")).expect("json");
    assert_eq!(v["lost"], 0);
    assert!(v["customers"].as_u64().expect("customers") > 0);
}

#[test]
fn deduct_with_a_bad_order_number_records_no_payment() {
    let dir = tempfile::tempdir().expect("tmp");
    // The mock is never reached: the number is refused before anything is recorded.
    let mock = "http://127.0.0.1:9";
    facepay::sim::wechatpay_fixture::create(
        dir.path(),
        facepay::sim::wechatpay::KeyMode::PublicKey,
        mock,
        "127.0.0.1:0",
        std::time::Duration::ZERO,
    )
    .expect("fixture");
    let config = dir.path().join("backend.json");
    let out = facepay(&[
        "backend",
        "deduct",
        "--config",
        config.to_str().expect("utf8"),
        "--auth-code",
        "face-code-1",
        "--amount",
        "100",
        "--out-trade-no",
        "no spaces allowed",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--out-trade-no"), "{err}");
    let db = dir.path().join("backend.db");
    let payments: i64 = if db.exists() {
        rusqlite::Connection::open(&db)
            .expect("db")
            .query_row("SELECT COUNT(*) FROM mch_payments", [], |r| r.get(0))
            .unwrap_or(0)
    } else {
        0
    };
    assert_eq!(payments, 0, "a refused deduction left a payment for `backend serve` to resume");
}

/// A full disk (`/dev/full`) or a closed pipe on stdout ends the command with a one-line
/// error and exit 1 — never a panic (exit 101, backtrace).
#[test]
fn a_closed_or_full_stdout_is_a_one_line_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("t.json");
    let t = facepay::terminal::config::TerminalConfig::example("d", "http://127.0.0.1:1");
    std::fs::write(&cfg, serde_json::to_string(&t).expect("json")).expect("write");
    let args = ["check-config", cfg.to_str().expect("utf8")];
    let check = |out: std::process::Output, what: &str| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
        assert!(
            err.starts_with("facepay: error: cannot write to stdout") && !err.contains("panicked"),
            "{what}: {err}"
        );
    };
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let out = Command::new(env!("CARGO_BIN_EXE_facepay")).args(args).stdout(full).output().expect("run");
        check(out, "/dev/full");
    }
    // A pipe whose reading end is already closed: every write is EPIPE.
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is the read end we own; closing it once.
    unsafe { libc::close(fds[0]) };
    // SAFETY: fds[1] is a fresh descriptor we own; the File takes it over.
    let write_end = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let out = Command::new(env!("CARGO_BIN_EXE_facepay")).args(args).stdout(write_end).output().expect("run");
    check(out, "closed pipe");
}
