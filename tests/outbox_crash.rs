//! DESIGN "Nothing is lost", as a process test: a child process fills the payment outbox
//! and delivers it to the simulated merchant backend over HTTP; the parent kills it with
//! SIGKILL in the middle of delivery, restarts it, and checks at the backend that every
//! credential was delivered exactly once per idempotency key and none was lost.
//!
//! The child is this same test binary running the `#[ignore]`d `outbox_crash_child` test,
//! configured through environment variables. Real time (it is a process test), bounded:
//! every wait has a deadline, and the test fails instead of hanging.
#![cfg(feature = "sim")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use facepay::sim::backend::http::serve;
use facepay::sim::backend::{SimBackend, SimBackendConfig};
use facepay::store::StorePath;
use facepay::terminal::backend_http::HttpBackend;
use facepay::terminal::outbox::Outbox;
use rand::Rng;

mod crash;
use crash::{key, marker, outbox_counts, spawn_child, wait_for, ENV_DB, ENV_MODE, N};

const CHILD: &str = "outbox_crash_child";
const RUN: &str = "crash";
const ENV_URL: &str = "FACEPAY_CRASH_URL";
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn kill_9_during_delivery_loses_nothing_and_pays_once() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let backend = SimBackend::new(SimBackendConfig {
        latency: (Duration::from_millis(2), Duration::from_millis(10)),
        error_rate: 0.05,
        processing_polls: 1,
        seed: 7,
        ..SimBackendConfig::default()
    });
    let (addr, server) =
        rt.block_on(serve(backend.clone(), "127.0.0.1:0".parse().expect("addr"))).expect("serve the backend");
    let url = format!("http://{addr}");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("outbox.db");
    let env = [(ENV_URL, url.as_ref())];

    // First life: enqueue N, deliver, and be killed after `kill_after` payments exist.
    let kill_after = rand::rng().random_range(N / 10..=N / 2);
    eprintln!("outbox_crash: killing the child once {kill_after} of {N} payments exist at the backend");
    let mut child = spawn_child(CHILD, &db, "enqueue", &env);
    let first = wait_for(&mut child, "first life", DEADLINE, || {
        marker(&db).exists() && backend.stats().payments_created >= kill_after
    });
    if let Some(status) = first {
        panic!("the child ended before it was killed: {status}");
    }
    crash::kill(child);
    let at_kill = backend.stats();
    let (entries, open, _) = outbox_counts(&db);
    eprintln!("outbox_crash: killed with {open} open entries, {} payments at the backend", at_kill.payments_created);
    assert_eq!(entries, N, "every payment was committed before the kill");
    assert!(open > 0, "the kill happened while payments were still in the outbox");
    assert!(at_kill.payments_created >= kill_after && at_kill.paid < N);

    // Second life: resume only (enqueueing again is a no-op), deliver until all are final.
    let mut child = spawn_child(CHILD, &db, "resume", &env);
    let status = wait_for(&mut child, "second life", DEADLINE, || false).expect("the resumed child ends");
    assert!(status.success(), "the resumed child failed: {status}");

    let s = backend.stats();
    assert_eq!(s.payments_created, N, "one payment per credential: {s:?}");
    assert_eq!(s.paid, N);
    for i in 0..N {
        assert_eq!(s.created_per_key.get(&key(RUN, i)), Some(&1), "key {} created once", key(RUN, i));
        assert!(s.submissions_per_key.get(&key(RUN, i)).is_some_and(|c| *c >= 1));
    }
    assert_eq!(s.created_per_key.len() as u64, N, "no unknown key reached the backend");
    assert_eq!(outbox_counts(&db), (N, 0, 0), "every entry final, every credential erased");
    server.abort();
}

/// The child process of the test above; does nothing when run by hand without its
/// environment.
#[test]
#[ignore = "child process of kill_9_during_delivery_loses_nothing_and_pays_once"]
fn outbox_crash_child() {
    let Ok(db) = std::env::var(ENV_DB) else {
        eprintln!("{CHILD}: no {ENV_DB}; this test only runs as a child process");
        return;
    };
    let db = PathBuf::from(db);
    let url = std::env::var(ENV_URL).expect("backend URL");
    let mode = std::env::var(ENV_MODE).expect("mode");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let backend = Arc::new(HttpBackend::new(&url, Duration::from_secs(5)).expect("client"));
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let timing = crash::timing();
        let h = Outbox::spawn(StorePath::File(db.clone()), backend, timing, Arc::new(facepay::clock::SystemClock), tx)
            .expect("spawn the outbox");
        crash::child_life(h, &db, &mode, RUN, |i| crash::request(RUN, i, "org-canteen-1", "dev-crash")).await;
    });
}
