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
