//! Tests of the simulated backend, in process (paused clock) and over HTTP through
//! [`HttpBackend`] (real loopback sockets, no sleeps).

use super::*;
use crate::error::ErrorCode;
use crate::store::StorePath;
use crate::terminal::backend_http::is_retryable;
use crate::terminal::outbox::{Outbox, OutboxEvent, OutboxTiming};

pub(super) fn pay(key: &str, amount: u64) -> PaymentRequest {
    PaymentRequest {
        idempotency_key: key.into(),
        face_token: Secret::new(format!("tok-{key}")),
        user_id: "u1".into(),
        out_user_id: "stu-1".into(),
        amount_fen: amount,
        organization_id: "org-canteen-1".into(),
        device_id: "dev-1".into(),
    }
}

pub(super) fn auth(org: &str) -> AuthInfoRequest {
    AuthInfoRequest { device_id: "dev-1".into(), raw_data: "raw".into(), organization_id: org.into() }
}

#[tokio::test(start_paused = true)]
async fn same_key_same_payment_and_reuse_is_refused() {
    let b = SimBackend::new(SimBackendConfig::default());
    let a = b.submit(&pay("k1", 100)).await.expect("first");
    let again = b.submit(&pay("k1", 100)).await.expect("repeat");
    assert_eq!(a, again);
    assert_eq!(a.state, PaymentState::Paid);
    let e = b.submit(&pay("k1", 200)).await.expect_err("other body");
    assert!(matches!(e, Error::Backend { status: 409, ref code } if code == CODE_IDEMPOTENCY_KEY_REUSED));
    let s = b.stats();
    assert_eq!((s.submissions, s.payments_created, s.duplicates, s.paid), (3, 1, 1, 1));
    assert_eq!(s.created_per_key["k1"], 1);
    assert_eq!(s.submissions_per_key["k1"], 3);
}

#[tokio::test(start_paused = true)]
async fn t3_5_unknown_organisation_is_a_config_mismatch() {
    let b = SimBackend::new(SimBackendConfig::default());
    let g = b.fetch(auth("org-canteen-1")).await.expect("own organisation");
    assert_eq!(g.expires_in, 3600);
    let e = b.fetch(auth("org-of-another-merchant")).await.expect_err("foreign organisation");
    assert_eq!(e.code(), ErrorCode::ConfigMismatch);
    assert!(!is_retryable(&e));
    assert_eq!(b.stats().authinfo_fetches, 1);
}

#[tokio::test(start_paused = true)]
async fn processing_then_final_and_failing_amounts() {
    let cfg = SimBackendConfig { processing_polls: 2, fail_amount_over: Some(5_000), ..SimBackendConfig::default() };
    let b = SimBackend::new(cfg);
    let ok = b.submit(&pay("small", 100)).await.expect("submit");
    let big = b.submit(&pay("big", 9_000)).await.expect("submit");
    assert_eq!((ok.state, big.state), (PaymentState::Processing, PaymentState::Processing));
    assert_eq!(b.status(ok.payment_id.clone()).await.expect("poll").state, PaymentState::Processing);
    assert_eq!(b.status(ok.payment_id.clone()).await.expect("poll").state, PaymentState::Paid);
    assert_eq!(b.status(ok.payment_id).await.expect("poll").state, PaymentState::Paid);
    b.status(big.payment_id.clone()).await.expect("poll");
    assert_eq!(b.status(big.payment_id).await.expect("poll").state, PaymentState::Failed);
    let e = b.status("nope".into()).await.expect_err("unknown id");
    assert!(matches!(e, Error::Backend { status: 404, .. }));
    let s = b.stats();
    assert_eq!((s.paid, s.failed, s.status_polls), (1, 1, 6));
}

#[tokio::test(start_paused = true)]
async fn offline_is_a_network_error_in_process() {
    let b = SimBackend::new(SimBackendConfig::default());
    b.set_online(false);
    let e = b.submit(&pay("k1", 1)).await.expect_err("offline");
    assert_eq!(e.code(), ErrorCode::Network);
    assert!(is_retryable(&e));
    b.set_online(true);
    b.submit(&pay("k1", 1)).await.expect("online again");
    let s = b.stats();
    assert_eq!((s.offline_refusals, s.payments_created), (1, 1));
}

/// The outbox against the simulated backend with faults: every payment exactly once.
#[tokio::test(start_paused = true)]
async fn outbox_delivers_each_payment_exactly_once_through_faults() {
    let cfg = SimBackendConfig {
        latency: (Duration::from_millis(5), Duration::from_millis(80)),
        error_rate: 0.3,
        processing_polls: 2,
        fail_amount_over: Some(900),
        seed: 42,
        ..SimBackendConfig::default()
    };
    let b = SimBackend::new(cfg);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let timing = OutboxTiming {
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_secs(5),
        max_in_flight: 4,
    };
    let h =
        Outbox::spawn(StorePath::Memory, b.clone(), timing, Arc::new(crate::clock::SystemClock), tx).expect("spawn");
    let n = 60u64;
    for i in 0..n {
        h.enqueue(pay(&format!("key-{i:03}"), 10 + i * 20)).expect("enqueue");
        if i == 20 {
            b.set_online(false);
        }
    }
    let mut finals = 0;
    let mut retries = 0;
    while finals < n {
        let ev = tokio::time::timeout(Duration::from_secs(3600), rx.recv()).await.expect("progress").expect("open");
        match ev {
            OutboxEvent::Final { .. } => finals += 1,
            OutboxEvent::Retrying { .. } => {
                retries += 1;
                if retries == 40 {
                    b.set_online(true);
                }
            }
            OutboxEvent::Accepted { .. } => {}
        }
    }
    let s = b.stats();
    assert!(s.injected_errors > 0 && s.offline_refusals > 0, "faults happened: {s:?}");
    assert!(s.duplicates > 0, "some answers were lost and the payment was deduplicated: {s:?}");
    assert_eq!(s.payments_created, n);
    assert_eq!(s.created_per_key.len() as u64, n);
    assert!(s.created_per_key.values().all(|c| *c == 1));
    // Amounts above 900 fen fail (i >= 45): 15 failed, 45 paid.
    assert_eq!((s.paid, s.failed), (45, 15));
    assert_eq!(h.pending().expect("pending"), 0);
}
