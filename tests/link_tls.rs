//! SPEC S1 + S3 end to end over real sockets: the reference backend terminates TLS with
//! rustls, the terminal's `HttpBackend` (built from its configuration, as on a device)
//! trusts only the pinned CA and signs every request; a server certificate that does not
//! chain to the pinned CA is refused by the terminal client, and so is plain HTTP to a
//! non-loopback host.

mod link;

use std::sync::Arc;
use std::time::Duration;

use facepay::clock::SystemClock;
use facepay::sim::wechatpay_fixture::ORGANIZATION;
use facepay::terminal::backend::{AuthInfoSource, PaymentBackend};
use facepay::terminal::backend_http::{is_retryable, HttpBackend};
use facepay::terminal::config::TerminalConfig;
use facepay::wire::{AuthInfoRequest, PaymentRequest, PaymentState};
use facepay::{Error, Secret};

fn terminal(url: &str, credential: Option<Secret>, ca: Option<String>) -> HttpBackend {
    let mut cfg = TerminalConfig::example("d1", url);
    cfg.organization_id = ORGANIZATION.into();
    cfg.device_credential = credential;
    cfg.backend_ca_pem = ca;
    cfg.validate().expect("valid terminal config");
    HttpBackend::from_config(&cfg, Arc::new(SystemClock)).expect("client")
}

fn authinfo() -> AuthInfoRequest {
    AuthInfoRequest { device_id: "d1".into(), raw_data: "raw".into(), organization_id: ORGANIZATION.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_tls_with_a_pinned_ca_works_and_an_unpinned_server_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = link::pki(dir.path(), "good");
    let stranger = link::pki(dir.path(), "stranger");
    let s = link::serve(dir.path(), Some(&good), |_| {}).await;
    assert!(s.url.starts_with("https://"));
    let cred = s
        .backend
        .devices()
        .add("d1", ORGANIZATION, None, facepay::clock::unix_s(std::time::SystemTime::now()))
        .expect("enrol");

    // Pinned CA + signed requests: authinfo, then a payment to PAID, then its status.
    let t = terminal(&s.url, Some(cred.clone()), Some(good.ca_pem.clone()));
    let g = t.fetch(authinfo()).await.expect("authinfo over TLS");
    assert!(!g.authinfo.is_empty());
    let req = PaymentRequest {
        idempotency_key: "tls-1".into(),
        face_token: Secret::new("ft-tls-1"),
        user_id: "u1".into(),
        out_user_id: "ou1".into(),
        amount_fen: 300,
        organization_id: ORGANIZATION.into(),
        device_id: "d1".into(),
    };
    let p = t.submit(&req).await.expect("submit");
    let mut state = p.state;
    for _ in 0..100 {
        if state.is_final() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        state = t.status(p.payment_id.clone()).await.expect("status").state;
    }
    assert_eq!(state, PaymentState::Paid);
    assert_eq!(t.submit(&req).await.expect("resubmit").payment_id, p.payment_id, "idempotent over TLS");

    // The server's certificate does not chain to the pinned CA: refused before any byte
    // of the request is sent (a network error, retried later, never a rejection).
    let requests = *s.mock.requests.lock();
    let e = terminal(&s.url, Some(cred.clone()), Some(stranger.ca_pem.clone())).fetch(authinfo()).await.unwrap_err();
    assert!(matches!(e, Error::Network(_)) && is_retryable(&e), "{e:?}");
    assert_eq!(*s.mock.requests.lock(), requests);

    // Unsigned over a good TLS link: 401, retried (S1 answer, not a lost payment).
    let e = terminal(&s.url, None, Some(good.ca_pem.clone())).fetch(authinfo()).await.unwrap_err();
    assert!(matches!(&e, Error::Backend { status: 401, code } if code == "AUTH_MISSING"), "{e:?}");

    // Plain HTTP to the TLS port fails; plain HTTP to a non-loopback host is refused.
    let plain = s.url.replace("https://", "http://");
    assert!(terminal(&plain, Some(cred.clone()), None).fetch(authinfo()).await.is_err());
    let mut cfg = TerminalConfig::example("d1", "http://backend.example.com");
    cfg.device_credential = Some(cred);
    let e = HttpBackend::from_config(&cfg, Arc::new(SystemClock)).unwrap_err();
    assert!(e.to_string().contains("backend_url"), "{e}");
    s.task.abort();
}
