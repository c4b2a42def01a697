//! The engine and its store (SPEC T7.8, DESIGN "Nothing is lost"): a credential is
//! durable before the app hears of it, and the commit — on a file store, an fsync that can
//! take up to a second on a terminal's eMMC — never runs on the engine's actor, which
//! keeps answering meanwhile. A slow disk is stood in for by SQLite's own write lock,
//! held by a second connection: the outbox's insert waits on it exactly as on a disk
//! that has not finished. Real time (SQLite's busy handler sleeps in real time).

mod common;

use std::time::Duration;

use common::scripted::{engine_with, ready};
use facepay::error::ErrorCode;
use facepay::store::{Store, StorePath};
use facepay::terminal::config::TerminalConfig;
use facepay::terminal::engine::PayRequest;
use facepay::terminal::health::EngineEvent;

#[tokio::test]
async fn t7_8_a_slow_commit_never_stalls_the_actor_and_the_credential_waits_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("terminal.db");
    let mut cfg = TerminalConfig::example("dev-store", "http://127.0.0.1:9");
    cfg.store_path = Some(file.display().to_string());
    let (t, _svc, be) = engine_with(cfg);
    ready(&t).await;
    let mut events = t.subscribe();
    let flow = t.start_flow(PayRequest { amount_fen: 300, out_trade_no: None }).await.expect("start");
    t.wait_recognition(flow).await.expect("recognised");
    t.finish(flow).await.expect("finished");

    // The disk is busy: every write to the store waits until this transaction ends.
    let disk = Store::open(&StorePath::File(file.clone())).expect("second connection");
    disk.conn().execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let credential = {
        let t = t.clone();
        tokio::spawn(async move { t.credential(flow).await })
    };
    // The actor answers at once while the commit waits on the disk: a second flow (or a
    // gate) is refused as busy — the payment is not over until its credential is durable.
    let busy = tokio::time::timeout(Duration::from_secs(5), t.start_gate())
        .await
        .expect("the actor answers while the commit waits on the disk");
    assert_eq!(busy.unwrap_err().code(), ErrorCode::FlowBusy);
    let again =
        tokio::time::timeout(Duration::from_secs(5), t.start_flow(PayRequest { amount_fen: 1, out_trade_no: None }))
            .await
            .expect("the actor answers again");
    assert_eq!(again.unwrap_err().code(), ErrorCode::FlowBusy);
    assert!(!credential.is_finished(), "T7.8: the app does not hear of the payment before it is durable");
    while let Ok(ev) = events.try_recv() {
        assert!(
            !matches!(ev, EngineEvent::PaymentQueued { .. } | EngineEvent::FlowEnded(_)),
            "nothing ends early: {ev:?}"
        );
    }

    disk.conn().execute_batch("COMMIT").expect("the disk is done");
    let key = credential.await.expect("task").expect("committed");
    let row: String = disk
        .conn()
        .query_row("SELECT state FROM outbox WHERE idempotency_key = ?1", [&key], |r| r.get(0))
        .expect("the credential is in the store");
    assert!(["PENDING", "PROCESSING", "PAID"].contains(&row.as_str()), "state {row}");
    // Then, in this order: queued, the flow's end; and the payment is delivered.
    let mut order = Vec::new();
    while order.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await.expect("events").expect("open") {
            EngineEvent::PaymentQueued { idempotency_key, .. } => order.push(format!("queued {idempotency_key}")),
            EngineEvent::FlowEnded(r) => order.push(format!("ended {}", r.outcome.label())),
            _ => {}
        }
    }
    assert_eq!(order, [format!("queued {key}"), "ended paid".to_string()]);
    for _ in 0..500 {
        if be.submissions.lock().contains(&key) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(be.submissions.lock().contains(&key), "delivered to the backend");
    t.shutdown().await.expect("shutdown");
}
