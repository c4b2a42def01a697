//! DESIGN "Nothing is lost" over the real link (SPEC S1, S3): the outbox kill -9 test of
//! `tests/outbox_crash.rs`, but the child delivers to the reference backend (`merchant`
//! router on the `listener` connection loop) over TLS pinned to a run-time CA, signing
//! every request — retries after the restart included — with its enrolled credential.
//! The parent kills the child with SIGKILL mid-delivery, restarts it, and checks that the
//! backend holds exactly one payment per key, each PAID and charged once at the mock
//! WeChat Pay, none lost. Real time (a process test), every wait bounded.

mod link;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use facepay::sim::wechatpay_fixture::ORGANIZATION;
use facepay::store::StorePath;
use facepay::terminal::backend_http::{HttpBackend, LinkOptions};
use facepay::terminal::link_sign::DeviceSigner;
use facepay::terminal::outbox::Outbox;
use facepay::wire::PaymentState;
use facepay::Secret;
use rand::Rng;

mod crash;
use crash::{key, marker, outbox_counts, spawn_child, wait_for, ENV_DB, ENV_MODE, N};

const CHILD: &str = "outbox_crash_tls_child";
const RUN: &str = "tls-crash";
const ENV_URL: &str = "FACEPAY_CRASH_URL";
const ENV_CA: &str = "FACEPAY_CRASH_CA";
const ENV_CRED: &str = "FACEPAY_CRASH_CREDENTIAL";
const DEVICE: &str = "dev-crash";
const DEADLINE: Duration = Duration::from_secs(90);

fn child(db: &Path, url: &str, ca: &Path, cred: &Secret, mode: &str) -> std::process::Child {
    let env = [(ENV_URL, OsStr::new(url)), (ENV_CA, ca.as_os_str()), (ENV_CRED, OsStr::new(cred.expose()))];
    spawn_child(CHILD, db, mode, &env)
}

#[test]
fn s1_s3_kill_9_over_the_authenticated_tls_link_loses_nothing_and_pays_once() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = link::pki(dir.path(), "backend");
    // A delivery burst of one device is far above the default 20/s: this test is about
    // durability over the link, the rate limit has its own tests.
    let s = rt.block_on(link::serve(dir.path(), Some(&pki), |c| {
        c.link.rate_per_s = 5_000;
        c.link.rate_burst = 5_000;
    }));
    let now = facepay::clock::unix_s(std::time::SystemTime::now());
    let cred = s.backend.devices().add(DEVICE, ORGANIZATION, None, now).expect("enrol");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).expect("write ca");
    let db = dir.path().join("outbox.db");
    let payments = || s.backend.engine.payment_states().expect("states");

    let kill_after = rand::rng().random_range(N / 10..=N / 2) as usize;
    eprintln!("outbox_crash_tls: killing the child once {kill_after} of {N} payments exist at the backend");
    let mut first = child(&db, &s.url, &ca, &cred, "enqueue");
    let done = || marker(&db).exists() && payments().len() >= kill_after;
    if let Some(st) = wait_for(&mut first, "first life", DEADLINE, done) {
        panic!("the child ended before it was killed: {st}");
    }
    crash::kill(first);
    let (entries, open, _) = outbox_counts(&db);
    eprintln!("outbox_crash_tls: killed with {open} open entries, {} payments at the backend", payments().len());
    assert_eq!(entries, N, "every payment was committed before the kill");
    assert!(open > 0, "the kill happened while payments were still in the outbox");

    let mut second = child(&db, &s.url, &ca, &cred, "resume");
    let status = wait_for(&mut second, "second life", DEADLINE, || false).expect("the resumed child ends");
    assert!(status.success(), "the resumed child failed: {status}");

    let states = payments();
    assert_eq!(states.len() as u64, N, "one payment per credential");
    assert!(states.iter().all(|(_, st)| *st == PaymentState::Paid), "every payment PAID");
    for i in 0..N {
        assert!(
            s.backend.engine.payment_for_key(&key(RUN, i)).expect("lookup").is_some(),
            "key {i} reached the backend"
        );
    }
    assert_eq!(s.mock.ledger().len() as u64, N, "charged once each at WeChat Pay");
    assert_eq!(s.mock.charged_twice(), 0);
    assert_eq!(outbox_counts(&db), (N, 0, 0), "every entry final, every credential erased");
    s.task.abort();
}

/// The child process of the test above; does nothing when run by hand without its
/// environment.
#[test]
#[ignore = "child process of s1_s3_kill_9_over_the_authenticated_tls_link_loses_nothing_and_pays_once"]
fn outbox_crash_tls_child() {
    let Ok(db) = std::env::var(ENV_DB) else {
        eprintln!("{CHILD}: no {ENV_DB}; this test only runs as a child process");
        return;
    };
    let db = PathBuf::from(db);
    let url = std::env::var(ENV_URL).expect("backend URL");
    let ca = std::fs::read_to_string(std::env::var(ENV_CA).expect("CA path")).expect("CA");
    let cred = Secret::new(std::env::var(ENV_CRED).expect("credential"));
    let mode = std::env::var(ENV_MODE).expect("mode");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let clock = Arc::new(facepay::clock::SystemClock);
        let signer = Arc::new(DeviceSigner::new(DEVICE, cred, clock.clone()).expect("signer"));
        let opts = LinkOptions { ca_pem: Some(ca), allow_plain_http: false, signer: Some(signer) };
        let backend = Arc::new(HttpBackend::with_options(&url, Duration::from_secs(5), opts).expect("client"));
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let timing = crash::timing();
        let h = Outbox::spawn(StorePath::File(db.clone()), backend, timing, clock, tx).expect("spawn the outbox");
        crash::child_life(h, &db, &mode, RUN, |i| crash::request(RUN, i, ORGANIZATION, DEVICE)).await;
    });
}
