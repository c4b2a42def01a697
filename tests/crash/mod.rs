//! The harness of the outbox kill -9 tests (DESIGN "Nothing is lost", T7.8): the test
//! binary runs itself as a child process (an `#[ignore]`d child test, configured by
//! environment variables) that fills the outbox and delivers it; the parent kills it with
//! SIGKILL mid-delivery, starts it again, and reads the outbox file and the backend.
//! Every wait has a deadline: a test fails instead of hanging.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use facepay::store::{Store, StorePath};
use facepay::terminal::outbox::{OutboxHandle, OutboxState, OutboxTiming};
use facepay::wire::PaymentRequest;
use facepay::Secret;

/// The variables every child reads: the outbox file and whether it enqueues or resumes.
pub const ENV_DB: &str = "FACEPAY_CRASH_DB";
pub const ENV_MODE: &str = "FACEPAY_CRASH_MODE";
/// Payments per run.
pub const N: u64 = 200;

/// The idempotency key of payment `i` of a run named `run`.
pub fn key(run: &str, i: u64) -> String {
    format!("{run}-key-{i:04}")
}

/// Payment `i` of a run: a distinct credential, 17 users, amounts 100 + i fen.
pub fn request(run: &str, i: u64, organization: &str, device: &str) -> PaymentRequest {
    PaymentRequest {
        idempotency_key: key(run, i),
        face_token: Secret::new(format!("face-token-{i}")),
        user_id: format!("user-{}", i % 17),
        out_user_id: format!("stu-{}", i % 17),
        amount_fen: 100 + i,
        organization_id: organization.into(),
        device_id: device.into(),
    }
}

/// The file a child writes once every payment is committed to its outbox.
pub fn marker(db: &Path) -> PathBuf {
    db.with_extension("enqueued")
}

/// Starts this test binary as the child test `child` with the outbox `db`, `mode`
/// ("enqueue" or "resume") and the test's own variables.
pub fn spawn_child(child: &str, db: &Path, mode: &str, env: &[(&str, &OsStr)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary knows its path"));
    cmd.args(["--ignored", "--exact", child, "--nocapture", "--test-threads=1"]).env(ENV_DB, db).env(ENV_MODE, mode);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn the child")
}

/// Polls until `done()` (then `None`) or the child ends (then its status); kills the
/// child and fails the test after `deadline`.
pub fn wait_for(
    child: &mut Child,
    what: &str,
    deadline: Duration,
    mut done: impl FnMut() -> bool,
) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if done() {
            return None;
        }
        if start.elapsed() > deadline {
            child.kill().expect("kill");
            panic!("{what}: no progress within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// SIGKILLs the child and reaps it.
pub fn kill(mut child: Child) {
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
}

/// (entries, open entries, entries still holding a credential) in the outbox file.
pub fn outbox_counts(db: &Path) -> (u64, u64, u64) {
    let s = Store::open(&StorePath::File(db.to_path_buf())).expect("open the outbox file");
    s.conn()
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(state IN ('PENDING','PROCESSING')), 0),
                    COALESCE(SUM(face_token IS NOT NULL), 0) FROM outbox",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)),
        )
        .expect("count")
}

/// The children's delivery timing: fast back-off, four in flight.
pub fn timing() -> OutboxTiming {
    OutboxTiming {
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(200),
        max_in_flight: 4,
    }
}

/// One life of a child: enqueues every payment (a no-op for those already committed),
/// writes the marker after a first enqueue, delivers until nothing is pending, and
/// checks that every entry ended paid.
pub async fn child_life(h: OutboxHandle, db: &Path, mode: &str, run: &str, request: impl Fn(u64) -> PaymentRequest) {
    if mode == "resume" {
        assert!(h.pending().expect("pending") > 0, "there is something to resume");
    }
    // No await in this loop: on a current-thread runtime, delivery starts after it.
    for i in 0..N {
        h.enqueue(request(i)).expect("enqueue");
    }
    if mode == "enqueue" {
        std::fs::write(marker(db), b"1").expect("write the marker");
    }
    while h.pending().expect("pending") > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for i in 0..N {
        let r = h.get(&key(run, i)).expect("get").expect("entry exists");
        assert_eq!(r.state, OutboxState::Paid, "{r:?}");
    }
    h.shutdown().await;
}
