//! Engine behaviour per SPEC rule, with the scripted service and tokio's paused clock (no
//! real sleeps).

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::scripted::{engine_with, ready, FakeBackend, Scripted};
use facepay::error::{ErrorCode, Secret};
use facepay::terminal::config::TerminalConfig;
use facepay::terminal::engine::{Deps, PayRequest, Terminal};
use facepay::terminal::face_service::Surface;
use facepay::terminal::health::EngineEvent;
use facepay::terminal::lifecycle::LinkState;
use facepay::Error;

fn cfg() -> TerminalConfig {
    TerminalConfig::example("dev-1", "http://127.0.0.1:9")
}

fn engine() -> (Terminal, Arc<Scripted>, Arc<FakeBackend>) {
    engine_with(cfg())
}

fn pay() -> PayRequest {
    PayRequest { amount_fen: 1200, out_trade_no: None }
}

#[tokio::test(start_paused = true)]
async fn t2_3_engine_initialises_in_the_background_and_t2_1_init_is_idempotent() {
    let (t, svc, _) = engine();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(svc.init_calls.load(Ordering::SeqCst), 1, "init started without any app call");
    let (a, b) = tokio::join!(t.init(), t.init());
    a.expect("init");
    b.expect("init");
    t.init().await.expect("again");
    assert_eq!(svc.init_calls.load(Ordering::SeqCst), 1);
    assert_eq!(t.health().state, LinkState::Ready);
}

#[tokio::test(start_paused = true)]
async fn t7_full_pay_flow_queues_the_credential() {
    let (t, svc, be) = engine();
    ready(&t).await;
    let paid = t.pay(pay(), &|_| None).await.expect("paid");
    assert_eq!(svc.credential_calls.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(be.submissions.lock().clone(), vec![paid.idempotency_key]);
}

#[tokio::test(start_paused = true)]
async fn t7_3_t7_4_out_of_order_calls_are_refused_locally() {
    let (t, svc, _) = engine();
    ready(&t).await;
    let f = t.start_flow(pay()).await.expect("start");
    let e = t.finish(f).await.expect_err("finish before recognition");
    assert!(matches!(e, Error::OutOfOrder { expected: "Recognition", got: "Finish" }));
    let e = t.credential(f).await.expect_err("credential before finish");
    assert_eq!(e.code(), ErrorCode::OutOfOrder);
    assert!(matches!(t.start_flow(pay()).await, Err(Error::FlowBusy)));
    t.wait_recognition(f).await.expect("recognised");
    t.finish(f).await.expect("finish");
    t.credential(f).await.expect("credential");
    assert_eq!(svc.credential_calls.load(Ordering::SeqCst), 1);
}

/// Collects events until `pred` matches one (bounded: virtual time).
async fn wait_event(
    rx: &mut tokio::sync::broadcast::Receiver<EngineEvent>,
    pred: impl Fn(&EngineEvent) -> bool,
) -> EngineEvent {
    tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            match rx.recv().await {
                Ok(ev) if pred(&ev) => return ev,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream closed: {e}"),
            }
        }
    })
    .await
    .expect("event did not come")
}

#[tokio::test(start_paused = true)]
async fn t1_1_hanging_call_marks_disconnected_and_t1_2_flow_ends_with_clear_error_then_reconnects() {
    let (t, svc, _) = engine();
    ready(&t).await;
    let mut ev = t.subscribe();
    let f = t.start_flow(pay()).await.expect("start");
    t.wait_recognition(f).await.expect("recognised");
    svc.hang.store(true, Ordering::SeqCst); // OTA: the service dies silently
    let e = t.finish(f).await.expect_err("the finish call hangs past its deadline");
    assert_eq!(e.code(), ErrorCode::ServiceDisconnected);
    wait_event(&mut ev, |e| matches!(e, EngineEvent::Disconnected { .. })).await;
    assert_eq!(t.health().state, LinkState::Disconnected);
    assert!(matches!(t.start_flow(pay()).await, Err(Error::ServiceDisconnected)));
    svc.hang.store(false, Ordering::SeqCst); // the service is back
    wait_event(&mut ev, |e| matches!(e, EngineEvent::Reconnected { .. })).await;
    t.init().await.expect("ready again");
    let h = t.health();
    assert_eq!((h.disconnects, h.reconnects), (1, 1), "T1.4 counters");
    assert!(svc.init_calls.load(Ordering::SeqCst) >= 2, "re-initialised by itself");
    t.pay(pay(), &|_| None).await.expect("the next flow succeeds");
}

#[tokio::test(start_paused = true)]
async fn t1_1_no_callback_after_start_marks_disconnected() {
    let (t, svc, _) = engine();
    ready(&t).await;
    svc.silent.store(true, Ordering::SeqCst);
    let f = t.start_flow(pay()).await.expect("start accepted");
    let e = t.wait_recognition(f).await.expect_err("no callback");
    assert_eq!(e.code(), ErrorCode::ServiceDisconnected);
    assert_eq!(t.health().disconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn t1_3_gate_keeps_recognising_across_a_service_restart() {
    let (t, svc, _) = engine();
    ready(&t).await;
    let mut ev = t.subscribe();
    *svc.recognise_after.lock() = Duration::from_millis(300);
    t.start_gate().await.expect("gate");
    wait_event(&mut ev, |e| matches!(e, EngineEvent::GateRecognised { .. })).await;
    svc.hang.store(true, Ordering::SeqCst);
    wait_event(&mut ev, |e| matches!(e, EngineEvent::Disconnected { .. })).await;
    svc.hang.store(false, Ordering::SeqCst);
    wait_event(&mut ev, |e| matches!(e, EngineEvent::Reconnected { .. })).await;
    // No app call: recognition resumes by itself.
    wait_event(&mut ev, |e| matches!(e, EngineEvent::GateRecognised { .. })).await;
    assert!(t.health().gate_running);
    assert!(matches!(t.start_flow(pay()).await, Err(Error::FlowBusy)), "gate owns the camera");
    t.stop_gate().await.expect("stop");
}

#[tokio::test(start_paused = true)]
async fn t2_2_release_is_never_called_on_a_normal_path() {
    let (t, svc, _) = engine();
    ready(&t).await;
    for _ in 0..3 {
        t.pay(pay(), &|_| None).await.expect("paid");
    }
    let mut ev = t.subscribe();
    svc.hang.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(120)).await; // a disconnect and retries
    svc.hang.store(false, Ordering::SeqCst);
    wait_event(&mut ev, |e| matches!(e, EngineEvent::Reconnected { .. })).await;
    t.init().await.expect("back");
    assert_eq!(svc.release_calls.load(Ordering::SeqCst), 0);
    t.release().await.expect("explicit release");
    assert_eq!(t.health().state, LinkState::Uninitialised);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(t.health().state, LinkState::Uninitialised, "no reconnect after an explicit release");
    assert_eq!(svc.release_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn t3_1_flows_reuse_the_cached_authinfo() {
    let (t, svc, be) = engine();
    ready(&t).await;
    for _ in 0..5 {
        t.pay(pay(), &|_| None).await.expect("paid");
    }
    assert_eq!(be.fetches.load(Ordering::SeqCst), 1);
    assert_eq!(svc.raw_data_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn t3_2_refresh_ahead_keeps_authinfo_valid_through_an_outage() {
    let (t, _, be) = engine();
    ready(&t).await;
    tokio::time::sleep(Duration::from_secs(1801)).await;
    assert_eq!(be.fetches.load(Ordering::SeqCst), 2, "refreshed at half life");
    be.offline.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1700)).await;
    assert!(t.health().authinfo_valid_for.expect("cached") > Duration::from_secs(60));
    t.pay(pay(), &|_| None).await.expect("still pays offline");
}

#[tokio::test(start_paused = true)]
async fn t3_3_restart_within_validity_needs_no_network() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = cfg();
    c.store_path = Some(dir.path().join("t.db").to_string_lossy().into_owned());
    let (t, _, be) = engine_with(c.clone());
    ready(&t).await;
    assert_eq!(be.fetches.load(Ordering::SeqCst), 1);
    t.shutdown().await.expect("shutdown");
    let (t2, _, be2) = engine_with(c);
    t2.init().await.expect("init");
    assert!(t2.health().authinfo_valid_for.is_some());
    t2.pay(pay(), &|_| None).await.expect("paid");
    assert_eq!(be2.fetches.load(Ordering::SeqCst), 0, "no fetch after restart");
}

#[tokio::test(start_paused = true)]
async fn t2_3_the_store_is_opened_in_the_background_and_its_failure_answers_init() {
    // `Application#onCreate` runs on the main thread: creating the engine does no store
    // I/O there, so even a store that cannot be opened lets it return at once; init then
    // names the store's problem instead of letting a payment run without its outbox.
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let mut c = cfg();
    c.store_path = Some(file.join("t.db").to_string_lossy().into_owned());
    let (t, _, _) = engine_with(c);
    let e = t.init().await.expect_err("no store");
    assert_eq!(e.code(), ErrorCode::InvalidConfig, "{e}");
    assert!(e.to_string().contains("store_path"), "{e}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let e = t.start_flow(pay()).await.expect_err("no flow without the outbox");
    assert_eq!(e.code(), ErrorCode::InvalidConfig, "{e}");
}

#[tokio::test(start_paused = true)]
async fn t3_5_org_mismatch_is_a_config_error_not_a_retry_loop() {
    let svc = Scripted::new();
    let be = Arc::new(FakeBackend::default());
    be.mismatch.store(true, Ordering::SeqCst);
    let deps = Deps {
        service: svc.clone(),
        auth: be.clone(),
        payments: be.clone(),
        clock: Arc::new(facepay::clock::SystemClock),
    };
    let t = Terminal::spawn(cfg(), deps).expect("engine");
    // T3.6: nothing after rawdata runs without an authinfo, so init answers the mismatch.
    assert_eq!(t.init().await.expect_err("no authinfo").code(), ErrorCode::ConfigMismatch);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(svc.raw_data_calls.load(Ordering::SeqCst), 1, "asked once, never again");
    assert!(t.health().config_mismatch);
    let e = t.start_flow(pay()).await.expect_err("refused");
    assert_eq!(e.code(), ErrorCode::ConfigMismatch);
}

#[tokio::test(start_paused = true)]
async fn t4_1_t4_4_verify_waits_for_the_first_feature_update() {
    let (t, svc, _) = engine();
    tokio::time::sleep(Duration::from_millis(50)).await; // init done, update (200 ms) running
    assert_eq!(svc.update_calls.load(Ordering::SeqCst), 1, "update right after init");
    let e = t.start_flow(pay()).await.expect_err("features not updated yet");
    assert_eq!(e.code(), ErrorCode::FeaturesNotReady);
    ready(&t).await;
    t.pay(pay(), &|_| None).await.expect("paid after the update answered");
}

#[tokio::test(start_paused = true)]
async fn t4_2_t4_3_periodic_check_raises_features_stale() {
    let (t, _, _) = engine();
    ready(&t).await;
    let mut ev = t.subscribe();
    let start = tokio::time::Instant::now();
    // The scripted service never refreshes by itself: after our own first update, the
    // library ages until a periodic check (every 60 s) finds it older than 10 minutes.
    let e = wait_event(&mut ev, |e| matches!(e, EngineEvent::FeaturesStale { .. })).await;
    let waited = start.elapsed();
    assert!(waited > Duration::from_secs(600) && waited <= Duration::from_secs(660), "{waited:?}");
    assert!(matches!(e, EngineEvent::FeaturesStale { age: Some(a) } if a > Duration::from_secs(600)));
    // The engine asks for an update at once; it succeeds, so the alert clears.
    wait_event(&mut ev, |e| matches!(e, EngineEvent::FeaturesFresh)).await;
}

#[tokio::test(start_paused = true)]
async fn t6_preview_bound_when_settled_and_rebound_after_recreate() {
    let (t, svc, _) = engine();
    ready(&t).await;
    let s = Surface { id: 42, width: 480, height: 640 };
    t.surface_changed(s).await.expect("surface");
    assert_eq!(svc.preview_binds.load(Ordering::SeqCst), 0, "not before the size settled");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(svc.preview_binds.load(Ordering::SeqCst), 1);
    t.surface_destroyed().await.expect("destroyed");
    t.surface_changed(s).await.expect("recreated");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(svc.preview_binds.load(Ordering::SeqCst), 2, "T6.1 bound again");
    assert!(t.health().preview_bound);
    let e = t.surface_changed(Surface { id: 0, width: 1, height: 1 }).await.expect_err("null");
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
}

#[tokio::test(start_paused = true)]
async fn t6_a_refused_preview_bind_is_retried_with_back_off_not_every_settle_period() {
    let (t, svc, _) = engine();
    ready(&t).await;
    svc.refuse_preview.store(true, Ordering::SeqCst);
    let tries = || svc.ops().iter().filter(|op| **op == facepay::terminal::face_service::Op::SetPreview).count();
    t.surface_changed(Surface { id: 42, width: 480, height: 640 }).await.expect("surface");
    tokio::time::sleep(Duration::from_secs(60)).await;
    // Settle 0.3 s, then waits of 0.3, 0.6, 1.2, … s capped at 30 s: 8 tries in a minute
    // (every 300 ms for ever would have been 200).
    let n = tries();
    assert!((7..=9).contains(&n), "binds tried in 60 s: {n}");
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(tries() - n <= 5, "capped at one try per 30 s: {}", tries() - n);
    assert!(!t.health().preview_bound);
    // The service takes the bind again: the next try (within the cap) binds.
    svc.refuse_preview.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(t.health().preview_bound);
    assert_eq!(svc.preview_binds.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn t7_2_flow_timeout_ends_with_a_clear_error() {
    let (t, svc, _) = engine();
    ready(&t).await;
    *svc.recognise_after.lock() = Duration::from_secs(300);
    let f = t.start_flow(pay()).await.expect("start");
    let e = t.wait_recognition(f).await.expect_err("times out");
    assert_eq!(e.code(), ErrorCode::FlowTimeout);
    assert_eq!(t.health().disconnects, 0, "a timeout is not a disconnect");
    let e = t.wait_recognition(f).await.expect_err("still timed out");
    assert_eq!(e.code(), ErrorCode::FlowTimeout, "asking again tells how the flow ended");
    let e = t.credential(f).await.expect_err("T7.5: nothing after a timeout");
    assert!(matches!(e, Error::OutOfOrder { expected: "Ended", got: "Credential" }));
}

#[tokio::test(start_paused = true)]
async fn t7_6_ext_verify_is_required_when_asked() {
    let (t, svc, _) = engine();
    ready(&t).await;
    svc.need_ext.store(true, Ordering::SeqCst);
    let f = t.start_flow(pay()).await.expect("start");
    assert!(t.wait_recognition(f).await.expect("recognised").need_ext_verify);
    let e = t.finish(f).await.expect_err("ext verify first");
    assert!(matches!(e, Error::OutOfOrder { expected: "ExtVerify", got: "Finish" }));
    t.ext_verify(f, Secret::new("0000")).await.expect("ext");
    t.finish(f).await.expect("finish");
    t.stop(f).await.expect("cancel after finish");
    assert_eq!(svc.credential_calls.load(Ordering::SeqCst), 0, "T7.5");
}

#[tokio::test(start_paused = true)]
async fn t8_restart_is_planned_and_announced() {
    let (t, _, _) = engine();
    ready(&t).await;
    let at = t.health().next_restart_unix_ms.expect("planned");
    // 01:00 Beijing time is 17:00 UTC.
    assert_eq!((at / 1000 + 8 * 3600) % 86_400, 3600);
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_refused_with_typed_errors() {
    let (t, _, _) = engine();
    ready(&t).await;
    let e = t.start_flow(PayRequest { amount_fen: 0, out_trade_no: None }).await.expect_err("zero");
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    let e = t.start_flow(PayRequest { amount_fen: 1, out_trade_no: Some("x".repeat(33)) }).await.expect_err("long");
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    let e = t.finish(facepay::terminal::verify::FlowId(99)).await.expect_err("unknown flow");
    assert_eq!(e.code(), ErrorCode::NoSuchFlow);
    let mut c = cfg();
    c.organization_id = String::new();
    let deps = Deps::new(Scripted::new(), Arc::new(FakeBackend::default()), Arc::new(FakeBackend::default()));
    let e = Terminal::spawn(c, deps).err().expect("bad config");
    assert_eq!(e.code(), ErrorCode::InvalidConfig);
}

#[tokio::test(start_paused = true)]
async fn t1_3_gate_started_while_disconnected_waits_without_spinning_and_resumes() {
    let (t, svc, _) = engine();
    ready(&t).await;
    let mut ev = t.subscribe();
    svc.hang.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(120)).await; // the heartbeat finds the service dead
    assert_eq!(t.health().state, LinkState::Disconnected);
    *svc.recognise_after.lock() = Duration::from_millis(300);
    t.start_gate().await.expect("a gate may be asked for while reconnecting");
    // Virtual time only advances when the engine is idle: a busy loop would hang here.
    tokio::time::sleep(Duration::from_secs(60)).await;
    svc.hang.store(false, Ordering::SeqCst);
    wait_event(&mut ev, |e| matches!(e, EngineEvent::GateRecognised { .. })).await;
}
