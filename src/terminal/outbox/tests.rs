//! Unit tests of the outbox (kept beside it so `outbox.rs` stays under 600 lines). All run
//! on tokio's paused clock: backoff delays pass in virtual time, nothing sleeps for real.

use std::collections::{HashMap, VecDeque};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::worker::backoff_delay;
use super::*;
use crate::terminal::backend::PaymentStatus;

/// A scripted backend: each call pops the next scripted answer (default: success).
#[derive(Default)]
struct Fake {
    inner: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    submits: VecDeque<Result<PaymentStatus>>,
    statuses: VecDeque<Result<PaymentStatus>>,
    /// Submissions per idempotency key, with the credential each carried.
    seen: HashMap<String, Vec<String>>,
    status_calls: u32,
    /// When set, every call fails as a network error.
    offline: bool,
}

impl Fake {
    fn new() -> Arc<Fake> {
        Arc::new(Fake::default())
    }
    fn script_submit(&self, r: Result<PaymentStatus>) {
        self.inner.lock().submits.push_back(r);
    }
    fn script_status(&self, r: Result<PaymentStatus>) {
        self.inner.lock().statuses.push_back(r);
    }
    fn submits_for(&self, key: &str) -> usize {
        self.inner.lock().seen.get(key).map_or(0, Vec::len)
    }
}

fn status(id: &str, state: PaymentState) -> Result<PaymentStatus> {
    Ok(PaymentStatus { payment_id: id.into(), state })
}

impl PaymentBackend for Fake {
    fn submit<'a>(
        &'a self,
        req: &'a PaymentRequest,
    ) -> crate::terminal::face_service::BoxFut<'a, Result<PaymentStatus>> {
        Box::pin(async move {
            let mut g = self.inner.lock();
            if g.offline {
                return Err(Error::Network("offline".into()));
            }
            g.seen.entry(req.idempotency_key.clone()).or_default().push(req.face_token.expose().to_string());
            let id = format!("pay-{}", req.idempotency_key);
            g.submits.pop_front().unwrap_or(status(&id, PaymentState::Paid))
        })
    }
    fn status(&self, payment_id: String) -> crate::terminal::face_service::BoxFut<'_, Result<PaymentStatus>> {
        Box::pin(async move {
            let mut g = self.inner.lock();
            if g.offline {
                return Err(Error::Network("offline".into()));
            }
            g.status_calls += 1;
            g.statuses.pop_front().unwrap_or(status(&payment_id, PaymentState::Paid))
        })
    }
}

fn timing() -> OutboxTiming {
    OutboxTiming { backoff_initial: Duration::from_secs(1), backoff_max: Duration::from_secs(60), max_in_flight: 2 }
}

fn req(key: &str, amount: u64) -> PaymentRequest {
    PaymentRequest {
        idempotency_key: key.into(),
        face_token: Secret::new(format!("tok-{key}")),
        user_id: "u1".into(),
        out_user_id: "stu-1".into(),
        amount_fen: amount,
        organization_id: "org-1".into(),
        device_id: "dev-1".into(),
    }
}

fn spawn(path: &StorePath, fake: &Arc<Fake>) -> (OutboxHandle, UnboundedReceiver<OutboxEvent>) {
    let (tx, rx) = unbounded_channel();
    let h =
        Outbox::spawn(path.clone(), fake.clone(), timing(), Arc::new(crate::clock::SystemClock), tx).expect("spawn");
    (h, rx)
}

/// Next event, failing (in virtual time) instead of hanging.
async fn next(rx: &mut UnboundedReceiver<OutboxEvent>) -> OutboxEvent {
    tokio::time::timeout(Duration::from_secs(24 * 3600), rx.recv())
        .await
        .expect("an event within a virtual day")
        .expect("channel open")
}

async fn until_final(rx: &mut UnboundedReceiver<OutboxEvent>) -> (Vec<OutboxEvent>, OutboxEvent) {
    let mut seen = Vec::new();
    loop {
        let ev = next(rx).await;
        if matches!(ev, OutboxEvent::Final { .. }) {
            return (seen, ev);
        }
        seen.push(ev);
    }
}

fn raw_token(path: &std::path::Path, key: &str) -> Option<String> {
    let s = Store::open(&StorePath::File(path.to_path_buf())).expect("open");
    s.conn()
        .query_row("SELECT face_token FROM outbox WHERE idempotency_key = ?1", [key], |r| r.get(0))
        .expect("row exists")
}

#[tokio::test(start_paused = true)]
async fn enqueue_is_committed_before_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("o.db");
    let fake = Fake::new();
    fake.inner.lock().offline = true;
    let (h, _rx) = spawn(&StorePath::File(file.clone()), &fake);
    h.enqueue(req("k1", 100)).expect("enqueue");
    // Another connection (as after a crash) sees the entry and its credential at once,
    // before the worker has even run.
    assert_eq!(raw_token(&file, "k1").as_deref(), Some("tok-k1"));
    let r = h.get("k1").expect("get").expect("present");
    assert_eq!((r.state, r.amount_fen, r.payment_id.as_deref()), (OutboxState::Pending, 100, None));
    assert!(!format!("{r:?}").contains("tok-k1"));
    assert_eq!(h.pending().expect("pending"), 1);
    h.shutdown().await;
    assert_eq!(h.enqueue(req("k2", 1)).unwrap_err().code(), crate::error::ErrorCode::Closed);
}

#[tokio::test(start_paused = true)]
async fn duplicate_key_is_a_no_op() {
    let fake = Fake::new();
    let (h, mut rx) = spawn(&StorePath::Memory, &fake);
    h.enqueue(req("k1", 100)).expect("enqueue");
    h.enqueue(req("k1", 100)).expect("same key again is fine");
    assert_eq!(h.pending().expect("pending"), 1);
    let err = h.enqueue(req("k1", 999)).expect_err("same key, other amount");
    assert_eq!(err.code(), crate::error::ErrorCode::InvalidArgument);
    let (_, fin) = until_final(&mut rx).await;
    assert!(matches!(fin, OutboxEvent::Final { state: PaymentState::Paid, .. }));
    // Enqueued again after it is final: still a no-op, nothing is sent again.
    h.enqueue(req("k1", 100)).expect("again");
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(fake.submits_for("k1"), 1);
    assert_eq!(h.pending().expect("pending"), 0);
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_back_off_then_succeed() {
    let fake = Fake::new();
    fake.script_submit(Err(Error::Backend { status: 500, code: "SYSTEM_ERROR".into() }));
    fake.script_submit(Err(Error::Network("reset".into())));
    fake.script_submit(Err(Error::Backend { status: 429, code: "RATELIMIT_EXCEEDED".into() }));
    let (h, mut rx) = spawn(&StorePath::Memory, &fake);
    let t0 = tokio::time::Instant::now();
    h.enqueue(req("k1", 100)).expect("enqueue");
    let (before, fin) = until_final(&mut rx).await;
    let delays: Vec<Duration> = before
        .iter()
        .filter_map(|e| match e {
            OutboxEvent::Retrying { attempt, delay, .. } => Some((*attempt, *delay)),
            _ => None,
        })
        .enumerate()
        .map(|(i, (attempt, d))| {
            assert_eq!(attempt as usize, i + 1);
            d
        })
        .collect();
    assert_eq!(delays.len(), 3);
    // Equal jitter: the n-th delay lies in [2^(n-1)/2, 2^(n-1)] s, never below the initial 1 s.
    for (n, d) in delays.iter().enumerate() {
        let cap = Duration::from_secs(1 << n);
        assert!(*d >= Duration::from_secs(1).max(cap / 2) && *d <= cap, "delay {n}: {d:?}");
    }
    assert!(t0.elapsed() >= delays.iter().sum::<Duration>());
    assert!(matches!(fin, OutboxEvent::Final { state: PaymentState::Paid, .. }));
    let r = h.get("k1").expect("get").expect("present");
    assert_eq!((r.state, r.attempts), (OutboxState::Paid, 4));
    assert_eq!(fake.submits_for("k1"), 4, "three failed submissions, then one that succeeded");
}

#[tokio::test(start_paused = true)]
async fn offline_backend_is_retried_until_it_comes_back() {
    let fake = Fake::new();
    fake.inner.lock().offline = true;
    let (h, mut rx) = spawn(&StorePath::Memory, &fake);
    h.enqueue(req("k1", 100)).expect("enqueue");
    for _ in 0..5 {
        assert!(matches!(next(&mut rx).await, OutboxEvent::Retrying { .. }));
    }
    let r = h.get("k1").expect("get").expect("present");
    assert_eq!((r.state, r.attempts, r.last_error.as_deref()), (OutboxState::Pending, 5, Some("Network")));
    fake.inner.lock().offline = false;
    let (_, fin) = until_final(&mut rx).await;
    assert!(matches!(fin, OutboxEvent::Final { state: PaymentState::Paid, .. }));
    assert_eq!(fake.submits_for("k1"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_4xx_rejection_is_final_and_not_retried() {
    let fake = Fake::new();
    fake.script_submit(Err(Error::Backend { status: 400, code: "PARAM_ERROR".into() }));
    let (h, mut rx) = spawn(&StorePath::Memory, &fake);
    h.enqueue(req("k1", 100)).expect("enqueue");
    let (before, fin) = until_final(&mut rx).await;
    assert!(before.is_empty(), "no retry before the rejection: {before:?}");
    assert_eq!(
        fin,
        OutboxEvent::Final {
            key: "k1".into(),
            payment_id: None,
            state: PaymentState::Failed,
            error: Some("PARAM_ERROR".into())
        }
    );
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(fake.submits_for("k1"), 1);
    let r = h.get("k1").expect("get").expect("present");
    assert_eq!((r.state, r.last_error.as_deref()), (OutboxState::Failed, Some("PARAM_ERROR")));
}

#[tokio::test(start_paused = true)]
async fn processing_is_polled_until_paid() {
    let fake = Fake::new();
    fake.script_submit(status("p-1", PaymentState::Processing));
    fake.script_status(status("p-1", PaymentState::Processing));
    fake.script_status(Err(Error::Backend { status: 503, code: "UNAVAILABLE".into() }));
    fake.script_status(status("p-1", PaymentState::Processing));
    fake.script_status(status("p-1", PaymentState::Paid));
    let (h, mut rx) = spawn(&StorePath::Memory, &fake);
    h.enqueue(req("k1", 100)).expect("enqueue");
    assert_eq!(next(&mut rx).await, OutboxEvent::Accepted { key: "k1".into(), payment_id: "p-1".into() });
    let r = h.get("k1").expect("get").expect("present");
    assert_eq!((r.state, r.payment_id.as_deref()), (OutboxState::Processing, Some("p-1")));
    let (before, fin) = until_final(&mut rx).await;
    assert!(matches!(before.as_slice(), [OutboxEvent::Retrying { error, .. }] if error == "UNAVAILABLE"));
    assert_eq!(
        fin,
        OutboxEvent::Final { key: "k1".into(), payment_id: Some("p-1".into()), state: PaymentState::Paid, error: None }
    );
    let r = h.get("k1").expect("get").expect("present");
    assert_eq!((r.state, r.attempts, r.polls), (OutboxState::Paid, 1, 4));
    assert_eq!(fake.inner.lock().status_calls, 4);
}

#[tokio::test(start_paused = true)]
async fn processing_can_end_failed() {
    let fake = Fake::new();
    fake.script_submit(status("p-9", PaymentState::Processing));
    fake.script_status(status("p-9", PaymentState::Failed));
    let (h, mut rx) = spawn(&StorePath::Memory, &fake);
    h.enqueue(req("k9", 100)).expect("enqueue");
    let (_, fin) = until_final(&mut rx).await;
    assert!(
        matches!(fin, OutboxEvent::Final { state: PaymentState::Failed, payment_id: Some(ref p), .. } if p == "p-9")
    );
    assert_eq!(h.get("k9").expect("get").expect("present").state, OutboxState::Failed);
}

#[tokio::test(start_paused = true)]
async fn face_token_is_erased_once_final() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("o.db");
    let fake = Fake::new();
    fake.script_submit(status("p-1", PaymentState::Processing));
    fake.script_submit(Err(Error::Backend { status: 409, code: "IDEMPOTENCY_KEY_REUSED".into() }));
    let (h, mut rx) = spawn(&StorePath::File(file.clone()), &fake);
    h.enqueue(req("paid", 100)).expect("enqueue");
    assert!(matches!(next(&mut rx).await, OutboxEvent::Accepted { .. }));
    assert_eq!(raw_token(&file, "paid").as_deref(), Some("tok-paid"), "kept while processing");
    until_final(&mut rx).await;
    assert_eq!(raw_token(&file, "paid"), None);
    h.enqueue(req("rejected", 100)).expect("enqueue");
    let (_, fin) = until_final(&mut rx).await;
    assert!(matches!(fin, OutboxEvent::Final { error: Some(ref c), .. } if c == "IDEMPOTENCY_KEY_REUSED"));
    assert_eq!(raw_token(&file, "rejected"), None);
    // The credential really went out before it was erased.
    assert_eq!(fake.inner.lock().seen["paid"], vec!["tok-paid".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn a_reopened_store_resumes_every_open_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = StorePath::File(dir.path().join("o.db"));
    // First life: p1 gets accepted (Processing), p2 and p3 never get through.
    let fake = Fake::new();
    fake.script_submit(status("pay-p1", PaymentState::Processing));
    fake.script_status(Err(Error::Network("down".into())));
    {
        let (h, mut rx) = spawn(&path, &fake);
        h.enqueue(req("p1", 1)).expect("enqueue");
        assert!(matches!(next(&mut rx).await, OutboxEvent::Accepted { .. }));
        fake.inner.lock().offline = true;
        h.enqueue(req("p2", 2)).expect("enqueue");
        h.enqueue(req("p3", 3)).expect("enqueue");
        // Two in flight (p1 polling, p2 submitting); p3 waits its turn, oldest first.
        let mut p2_retried = false;
        for _ in 0..50 {
            if matches!(next(&mut rx).await, OutboxEvent::Retrying { ref key, .. } if key == "p2") {
                p2_retried = true;
                break;
            }
        }
        assert!(p2_retried, "p2 is being retried while the backend is offline");
        assert_eq!(h.pending().expect("pending"), 3);
        h.shutdown().await; // as good as a crash: nothing more is written after this.
    }
    // Second life, same file, backend back.
    let fake2 = Fake::new();
    let (h, mut rx) = spawn(&path, &fake2);
    let mut finals = HashMap::new();
    while finals.len() < 3 {
        if let OutboxEvent::Final { key, payment_id, state, .. } = next(&mut rx).await {
            finals.insert(key, (payment_id, state));
        }
    }
    assert_eq!(finals["p1"], (Some("pay-p1".into()), PaymentState::Paid));
    assert_eq!(fake2.submits_for("p1"), 0, "an accepted entry is polled, not submitted again");
    assert_eq!((fake2.submits_for("p2"), fake2.submits_for("p3")), (1, 1));
    assert_eq!(fake2.inner.lock().seen["p2"], vec!["tok-p2".to_string()], "the credential survived the restart");
    assert_eq!(h.pending().expect("pending"), 0);
}

#[tokio::test(start_paused = true)]
async fn leftovers_and_new_entries_are_each_submitted_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = StorePath::File(dir.path().join("o.db"));
    let offline = Fake::new();
    offline.inner.lock().offline = true;
    {
        let (h, _rx) = spawn(&path, &offline);
        for i in 0..7 {
            h.enqueue(req(&format!("old{i}"), 1)).expect("enqueue");
        }
        h.shutdown().await;
    }
    // The new worker scans the store for the 7 leftovers, two at a time; entries enqueued
    // meanwhile are found by that scan, later ones are handed over in memory.
    let fake = Fake::new();
    let (h, mut rx) = spawn(&path, &fake);
    let mut keys: Vec<String> = (0..7).map(|i| format!("old{i}")).collect();
    for i in 0..5 {
        keys.push(format!("mid{i}"));
        h.enqueue(req(&format!("mid{i}"), 2)).expect("enqueue");
    }
    let mut finals = HashSet::new();
    while finals.len() < 6 {
        if let OutboxEvent::Final { key, .. } = next(&mut rx).await {
            finals.insert(key);
        }
    }
    for i in 0..5 {
        keys.push(format!("new{i}"));
        h.enqueue(req(&format!("new{i}"), 3)).expect("enqueue");
    }
    while finals.len() < keys.len() {
        if let OutboxEvent::Final { key, state, .. } = next(&mut rx).await {
            assert_eq!(state, PaymentState::Paid);
            assert!(finals.insert(key), "one final state per entry");
        }
    }
    for k in &keys {
        assert_eq!(fake.submits_for(k), 1, "{k} submitted once");
        let r = h.get(k).expect("get").expect("present");
        assert_eq!((r.state, r.attempts), (OutboxState::Paid, 1), "{k}");
    }
    assert_eq!(h.pending().expect("pending"), 0);
}

#[test]
fn backoff_stays_within_bounds() {
    let t =
        OutboxTiming { backoff_initial: Duration::from_millis(100), backoff_max: Duration::from_secs(5), ..timing() };
    let mut rng = 7;
    for n in 1..40 {
        let d = backoff_delay(&t, n, &mut rng);
        assert!(d >= t.backoff_initial && d <= t.backoff_max, "n={n}: {d:?}");
    }
    let late: Vec<_> = (0..20).map(|_| backoff_delay(&t, 30, &mut rng)).collect();
    assert!(late.iter().all(|d| *d >= Duration::from_millis(2500)));
    assert!(late.iter().any(|d| *d != late[0]), "jitter varies the delay");
}
