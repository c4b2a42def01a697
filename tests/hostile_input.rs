//! The hostile-input suite (SPEC S1–S4): the black-box probes of issue 14 replayed against
//! a real `facepay backend serve` process on 127.0.0.1, in front of the mock WeChat Pay.
//! Unauthenticated and unbounded requests are refused with `{code, message}`; slowloris
//! and idle connections are closed within the header-read / idle timeouts; oversized
//! bodies get 413; bad fields get PARAM_ERROR; a device is rate-limited with 429 and
//! `Retry-After`; and a normal signed request is answered throughout. Every loop is
//! bounded. Also the CLI's configuration hygiene (bad values refused at start, naming the
//! field) and device enrolment through the CLI (credential shown once, revocation at once).

mod link;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use facepay::sim::wechatpay_fixture::ORGANIZATION;
use facepay::wire::auth;
use facepay::Secret;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_TIMEOUT_MS: u64 = 1000;
const IDLE_TIMEOUT_MS: u64 = 2000;

fn facepay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_facepay")).args(args).output().expect("run facepay")
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the backend configuration (plain HTTP on loopback, short timeouts) into `dir`.
async fn config(dir: &Path, port: u16) -> std::path::PathBuf {
    link::mock_and_config(dir).await;
    let path = dir.join("backend.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    v["listen"] = json!(format!("127.0.0.1:{port}"));
    v["link"] = json!({"plain_http": true, "header_read_timeout_ms": HEADER_TIMEOUT_MS,
        "idle_timeout_ms": IDLE_TIMEOUT_MS, "max_connections": 128, "rate_per_s": 5, "rate_burst": 30,
        "max_amount_fen": 100000});
    std::fs::write(&path, v.to_string()).expect("write");
    path
}

fn enrol(cfg: &Path, device: &str) -> Secret {
    let out = facepay(&[
        "backend",
        "devices",
        "--config",
        cfg.to_str().expect("utf8"),
        "add",
        "--device-id",
        device,
        "--organization",
        ORGANIZATION,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json line");
    Secret::new(v["device_credential"].as_str().expect("credential"))
}

async fn start(cfg: &Path, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_facepay"))
        .args(["backend", "serve", "--config", cfg.to_str().expect("utf8")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn backend serve");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    // Owned by `Server` at once: its Drop kills and reaps the child on every path.
    let server = Server { child, addr };
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_ok() {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("backend serve did not come up");
}

/// One raw HTTP/1.1 exchange: `(status, headers, body)`. The answer is read while the
/// request is still being written: a server refuses an oversized body (413) as soon as it
/// sees its length and closes, so the rest of the write may fail with a broken pipe or a
/// reset — as it would for any client — and only the answer counts.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> (u16, String, Value) {
    let s = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = tokio::io::split(s);
    let raw = raw.to_vec();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&raw).await;
        wr
    });
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut buf)).await.expect("answer in time").ok();
    drop(writer.await);
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), serde_json::from_str(body).unwrap_or(Value::Null))
}

fn request(method: &str, path: &str, body: &[u8], extra: &[(&str, String)]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if method == "POST" {
        r.push_str("Content-Type: application/json\r\n");
    }
    r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    for (k, v) in extra {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut b = r.into_bytes();
    b.extend_from_slice(body);
    b
}

fn signed(cred: &Secret, device: &str, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let now = facepay::clock::unix_s(SystemTime::now());
    let a = auth::authorization(cred, device, method, path, body, now, &auth::new_nonce());
    request(method, path, body, &[("Authorization", a)])
}

fn authinfo(device: &str) -> Vec<u8> {
    json!({"device_id": device, "raw_data": "anything", "organization_id": ORGANIZATION}).to_string().into_bytes()
}

fn payment(key: &str, amount: Value) -> Value {
    json!({"idempotency_key": key, "face_token": "ft", "user_id": "u", "out_user_id": "ou",
        "amount_fen": amount, "organization_id": ORGANIZATION, "device_id": "dev1"})
}

/// A legitimate request (device `ok`, never rate-limited here) is answered.
async fn normal(s: &Server, cred: &Secret) {
    let (st, _, b) = exchange(s.addr, &signed(cred, "ok", "POST", "/facepay/v1/authinfo", &authinfo("ok"))).await;
    assert_eq!(st, 200, "a normal request is answered: {b}");
}

fn assert_error_shape(status: u16, head: &str, body: &Value, code: &str) {
    assert!(head.contains("content-type: application/json"), "{status} {code}: {head}");
    assert_eq!(body["code"].as_str(), Some(code), "{status}: {body}");
    assert!(body["message"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_s4_hostile_probes_against_backend_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let cfg = config(dir.path(), port).await;
    let cred = enrol(&cfg, "dev1");
    let ok = enrol(&cfg, "ok");
    let mut s = start(&cfg, port).await;
    let a = s.addr;

    // No authentication at all: refused; a signed request for the device itself works.
    let (st, h, b) = exchange(a, &request("POST", "/facepay/v1/authinfo", &authinfo("dev1"), &[])).await;
    assert_eq!(st, 401);
    assert_error_shape(st, &h, &b, "AUTH_MISSING");
    normal(&s, &ok).await;

    // Unbounded input: amounts, keys, empty and control-character fields.
    let pay = "/facepay/v1/payments";
    let mut bad =
        vec![payment("a1", json!(1u64 << 31)), payment("a2", json!(1u64 << 63)), payment("a3", json!(u64::MAX))];
    bad.push(payment("", json!(100)));
    bad.push(payment("z0", json!(0)));
    for (field, v) in [("face_token", ""), ("user_id", ""), ("device_id", ""), ("out_user_id", "a\u{7}b")] {
        let mut p = payment("f1", json!(100));
        p[field] = json!(v);
        bad.push(p);
    }
    for p in &bad {
        let (st, h, b) = exchange(a, &signed(&cred, "dev1", "POST", pay, p.to_string().as_bytes())).await;
        assert_eq!(st, 400, "{p}");
        assert_error_shape(st, &h, &b, "PARAM_ERROR");
    }
    let (st, h, b) = exchange(a, &signed(&cred, "dev1", "POST", pay, b"{\"idempotency_key\":")).await;
    assert_eq!(st, 400);
    assert_error_shape(st, &h, &b, "PARAM_ERROR");

    // Forty 1 MB bodies: 413 each, before anything is stored.
    let store_size = || {
        ["backend.db", "backend.db-wal"]
            .iter()
            .map(|f| std::fs::metadata(dir.path().join(f)).map(|m| m.len()).unwrap_or(0))
            .sum::<u64>()
    };
    let before = store_size();
    let huge = payment(&"k".repeat(1 << 20), json!(100)).to_string().into_bytes();
    for _ in 0..40 {
        let (st, h, b) = exchange(a, &signed(&cred, "dev1", "POST", pay, &huge)).await;
        assert_eq!(st, 413);
        assert_error_shape(st, &h, &b, "PAYLOAD_TOO_LARGE");
    }
    let after = store_size();
    assert!(after < before + (1 << 20), "the store did not grow by the probes: {before} -> {after}");

    // Framework rejections speak the protocol too.
    let (st, h, b) = exchange(a, &signed(&cred, "dev1", "GET", "/facepay/v1/payments/P-unknown", b"")).await;
    assert_eq!(st, 404);
    assert_error_shape(st, &h, &b, "NOT_FOUND");
    let (st, h, b) = exchange(a, &signed(&cred, "dev1", "GET", "/facepay/v1/authinfo", b"")).await;
    assert_eq!(st, 405);
    assert_error_shape(st, &h, &b, "METHOD_NOT_ALLOWED");
    let long = format!("/facepay/v1/payments/{}", "x".repeat(4000));
    let (st, h, b) = exchange(a, &request("GET", &long, b"", &[])).await;
    assert_eq!(st, 414);
    assert_error_shape(st, &h, &b, "URI_TOO_LONG");
    let (st, h, b) =
        exchange(a, &request("GET", "/facepay/v1/payments/x", b"", &[("X-Fill", "f".repeat(10_000))])).await;
    assert_eq!(st, 431);
    assert_error_shape(st, &h, &b, "HEADERS_TOO_LARGE");
    let mut text = request("POST", pay, b"x=1", &[]);
    let t = String::from_utf8(text.clone()).expect("utf8").replace("application/json", "text/plain");
    text = t.into_bytes();
    let (st, h, b) = exchange(a, &text).await;
    assert_eq!(st, 415);
    assert_error_shape(st, &h, &b, "UNSUPPORTED_MEDIA_TYPE");
    let (st, h, b) = exchange(a, b"GARBAGE\r\n\r\n").await;
    assert!(st == 400 || st == 0, "garbage is refused by the parser: {st} {h} {b}");

    // Rate limit per device: 429 with Retry-After; the other device is not disturbed.
    let mut limited = None;
    for i in 0..60 {
        let (st, h, b) = exchange(a, &signed(&cred, "dev1", "GET", &format!("/facepay/v1/payments/P{i}"), b"")).await;
        if st == 429 {
            limited = Some((h, b));
            break;
        }
    }
    let (h, b) = limited.expect("dev1 is rate-limited within 60 requests");
    assert_error_shape(429, &h, &b, "RATELIMIT_EXCEEDED");
    assert!(h.contains("retry-after: "), "{h}");
    normal(&s, &ok).await;

    // Slowloris: 40 connections trickling a header byte every 200 ms are all closed
    // within the header-read timeout (plus scheduling margin); the server answers meanwhile.
    let started = Instant::now();
    let mut lorises = Vec::new();
    for _ in 0..40 {
        lorises.push(tokio::spawn(async move {
            let mut c = TcpStream::connect(a).await.expect("connect");
            c.write_all(b"POST /facepay/v1/authinfo HTTP/1.1\r\nHost: x\r\n").await.expect("start");
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if c.write_all(b"X").await.is_err() {
                    break;
                }
                let mut buf = [0u8; 256];
                match tokio::time::timeout(Duration::from_millis(1), c.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    _ => {}
                }
            }
            started.elapsed()
        }));
    }
    normal(&s, &ok).await;
    for l in lorises {
        let closed_after = l.await.expect("loris");
        assert!(
            closed_after < Duration::from_millis(HEADER_TIMEOUT_MS + 2000),
            "a slowloris connection stayed open {closed_after:?}"
        );
    }

    // 200 idle connections: closed within the timeouts, a normal request answered at once.
    let started = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(a).await.expect("connect idle"));
    }
    let t = Instant::now();
    normal(&s, &ok).await;
    assert!(t.elapsed() < Duration::from_secs(3), "answered under 200 idle connections: {:?}", t.elapsed());
    let mut closed = 0;
    for mut c in idle {
        let mut buf = [0u8; 64];
        let left = Duration::from_millis(IDLE_TIMEOUT_MS * 3).saturating_sub(started.elapsed());
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(left, c.read(&mut buf)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 200, "every idle connection is closed within {} ms", IDLE_TIMEOUT_MS * 3);

    // Revocation through the CLI is effective at the running server's next request.
    let out = facepay(&["backend", "devices", "--config", cfg.to_str().expect("utf8"), "revoke", "ok"]);
    assert!(out.status.success());
    let (st, h, b) = exchange(a, &signed(&ok, "ok", "POST", "/facepay/v1/authinfo", &authinfo("ok"))).await;
    assert_eq!(st, 401);
    assert_error_shape(st, &h, &b, "AUTH_DEVICE_UNKNOWN");
    assert!(s.child.try_wait().expect("status").is_none(), "the server kept serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_enrolment_shows_the_credential_once_and_refuses_what_cannot_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 9).await;
    let c = cfg.to_str().expect("utf8");
    let cred = enrol(&cfg, "dev1");
    assert!(auth::is_credential(cred.expose()));
    let list = facepay(&["backend", "devices", "--config", c, "list"]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("dev1") && !text.contains(cred.expose()), "{text}");
    let again =
        facepay(&["backend", "devices", "--config", c, "add", "--device-id", "dev1", "--organization", ORGANIZATION]);
    assert!(!again.status.success(), "enrolled twice");
    let other = facepay(&["backend", "devices", "--config", c, "add", "--device-id", "d2", "--organization", "org-x"]);
    assert!(!other.status.success() && String::from_utf8_lossy(&other.stderr).contains("org-x"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("backend.db")).expect("db").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the store holding credentials is owner-only");
        let mode = std::fs::metadata(dir.path().join("merchant_key.pem")).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key file is owner-only");
    }

    // `backend serve` refuses, naming the field, every value that cannot work.
    let base: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).expect("read")).expect("json");
    for (field, value) in [
        ("base_url", json!("not a url")),
        ("timeout_ms", json!(0)),
        ("merchant_serial_no", json!("")),
        ("organizations", json!([""])),
        ("authinfo_ttl_s", json!(0)),
        ("mch_id", json!("abc")),
        ("link", json!({})),
        ("link", json!({"plain_http": true, "header_read_timeout_ms": 0})),
    ] {
        let mut v = base.clone();
        v[field] = value.clone();
        let p = dir.path().join("bad.json");
        std::fs::write(&p, v.to_string()).expect("write");
        let out = facepay(&["backend", "serve", "--config", p.to_str().expect("utf8")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{field}={value} started");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        let named = if field == "link" { "link." } else { field };
        assert!(err.contains(named), "{field}={value}: {err}");
    }
    // The terminal side: check-config refuses a URL without a host and a non-numeric mch_id.
    for (field, value) in [("backend_url", "http://"), ("mch_id", "abc")] {
        let mut t = serde_json::to_value(facepay::terminal::config::TerminalConfig::example("d", "http://127.0.0.1:1"))
            .expect("json");
        t[field] = json!(value);
        let p = dir.path().join("terminal.json");
        std::fs::write(&p, t.to_string()).expect("write");
        let out = facepay(&["check-config", p.to_str().expect("utf8")]);
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains(field), "{field}");
    }
}
