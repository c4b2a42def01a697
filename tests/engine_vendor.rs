//! The engine against the vendor library's real call sequence and maps (SPEC T2.4, T3.6,
//! T4.1, T5, T7.10, T9), with the scripted service (which logs every call with the authinfo
//! it carried and counts calls outstanding) and tokio's paused clock.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::scripted::{engine_with, FakeBackend, Scripted};
use facepay::error::{ErrorCode, Secret};
use facepay::terminal::config::TerminalConfig;
use facepay::terminal::engine::{Deps, PayRequest, Terminal};
use facepay::terminal::face_service::{Op, RecogMode, ERR_USER_STATUS_ABNORMAL};
use facepay::terminal::health::EngineEvent;
use facepay::Error;

fn engine() -> (Terminal, Arc<Scripted>, Arc<FakeBackend>) {
    engine_with(TerminalConfig::example("dev-1", "http://127.0.0.1:9"))
}

fn pay() -> PayRequest {
    PayRequest { amount_fen: 1200, out_trade_no: None }
}

/// The first index of `op` in the log at or after `from`.
fn pos(ops: &[Op], op: Op, from: usize) -> usize {
    from + ops[from..].iter().position(|o| *o == op).unwrap_or_else(|| panic!("{op:?} after {from}: {ops:?}"))
}

async fn wait_event(rx: &mut tokio::sync::broadcast::Receiver<EngineEvent>, pred: impl Fn(&EngineEvent) -> bool) {
    tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            match rx.recv().await {
                Ok(ev) if pred(&ev) => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream closed: {e}"),
            }
        }
    })
    .await
    .expect("event did not come")
}

#[tokio::test(start_paused = true)]
async fn t2_4_init_is_the_two_argument_call_and_only_a_proxy_goes_into_its_map() {
    let (t, svc, _) = engine();
    t.init().await.expect("init");
    assert_eq!(svc.last_init.lock().clone().expect("init").proxy, None, "2-argument init");
    let mut cfg = TerminalConfig::example("dev-2", "http://127.0.0.1:9");
    cfg.proxy = Some([("ip".to_string(), "10.0.0.1".to_string()), ("port".to_string(), "3128".to_string())].into());
    let (t, svc, _) = engine_with(cfg);
    t.init().await.expect("init");
    let proxy = svc.last_init.lock().clone().expect("init").proxy.expect("3-argument init");
    assert_eq!(proxy, vec![("ip".to_string(), "10.0.0.1".to_string()), ("port".to_string(), "3128".to_string())]);
}

#[tokio::test(start_paused = true)]
async fn t3_6_t4_1_t5_sequence_is_init_rawdata_authinfo_preload_update_sdkinfo_then_verification() {
    let (t, svc, be) = engine();
    t.init().await.expect("init answers when verification opens");
    let ops = svc.ops();
    assert_eq!(ops[..5], [Op::Init, Op::RawData, Op::Preload, Op::UpdateFeatures, Op::SdkInfo], "{ops:?}");
    assert_eq!(be.fetches.load(Ordering::SeqCst), 1, "authinfo between rawdata and preload");
    t.pay(pay(), &|_| None).await.expect("paid");
    // T3.6: every call after rawdata carries the authed map with the authinfo.
    let log = svc.log.lock().clone();
    let after_raw = &log[pos(&svc.ops(), Op::RawData, 0) + 1..];
    assert!(after_raw.len() >= 6, "{log:?}");
    assert!(after_raw.iter().all(|(_, a)| a.as_deref() == Some("ai0")), "{log:?}");
}

#[tokio::test(start_paused = true)]
async fn t3_6_verification_stays_closed_until_the_sequence_answered() {
    let (t, svc, _) = engine();
    // The update takes 200 ms in the scripted service: the flow is refused meanwhile.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let e = t.start_flow(pay()).await.expect_err("sequence still running");
    assert!(matches!(e.code(), ErrorCode::FeaturesNotReady | ErrorCode::AuthInfoUnavailable), "{e}");
    t.init().await.expect("open");
    assert!(svc.ops().contains(&Op::SdkInfo));
    t.pay(pay(), &|_| None).await.expect("paid");
}

#[tokio::test(start_paused = true)]
async fn t3_6_every_call_after_a_refresh_carries_the_newest_authinfo() {
    let (t, svc, be) = engine();
    t.init().await.expect("init");
    // T3.2: refreshed at 50 % of its hour.
    tokio::time::sleep(Duration::from_secs(1900)).await;
    assert_eq!(be.fetches.load(Ordering::SeqCst), 2);
    let before = svc.log.lock().len();
    t.pay(pay(), &|_| None).await.expect("paid");
    let log = svc.log.lock().clone();
    assert!(log[before..].iter().all(|(_, a)| a.as_deref() == Some("ai1")), "{:?}", &log[before..]);
    let raw_calls = log.iter().filter(|(op, _)| *op == Op::RawData).count();
    assert_eq!(raw_calls, 2, "a refresh asks the service for fresh raw data");
}

#[tokio::test(start_paused = true)]
async fn t3_1_a_cached_authinfo_skips_the_backend_in_the_sequence() {
    // A temporary folder: the store's -wal and -shm files go with it.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = TerminalConfig::example("dev-3", "http://127.0.0.1:9");
    cfg.store_path = Some(dir.path().join("terminal.db").display().to_string());
    let (t, _, be) = engine_with(cfg.clone());
    t.init().await.expect("init");
    t.shutdown().await.expect("shutdown");
    assert_eq!(be.fetches.load(Ordering::SeqCst), 1);
    let (t, svc, be) = engine_with(cfg);
    t.init().await.expect("init from the cache");
    assert_eq!(be.fetches.load(Ordering::SeqCst), 0, "T3.3: no network");
    assert_eq!(svc.ops()[..5], [Op::Init, Op::RawData, Op::Preload, Op::UpdateFeatures, Op::SdkInfo]);
    t.pay(pay(), &|_| None).await.expect("paid");
}

#[tokio::test(start_paused = true)]
async fn t9_the_sequence_runs_again_after_every_reconnect_without_an_init_callback() {
    let (t, svc, _) = engine();
    t.init().await.expect("init");
    let mut ev = t.subscribe();
    for round in 1..=3 {
        let from = svc.log.lock().len();
        svc.hang.store(true, Ordering::SeqCst);
        // The periodic check (T4.2) is the heartbeat that finds the dead service.
        wait_event(&mut ev, |e| matches!(e, EngineEvent::Disconnected { .. })).await;
        svc.hang.store(false, Ordering::SeqCst);
        wait_event(&mut ev, |e| matches!(e, EngineEvent::Reconnected { .. })).await;
        t.init().await.expect("open again");
        let ops = svc.ops();
        let init = pos(&ops, Op::Init, from);
        let raw = pos(&ops, Op::RawData, init);
        let preload = pos(&ops, Op::Preload, raw);
        let update = pos(&ops, Op::UpdateFeatures, preload);
        pos(&ops, Op::SdkInfo, update);
        assert_eq!(t.health().sequences, 1 + round, "one sequence per reconnect");
        t.pay(pay(), &|_| None).await.expect("paid after the reconnect");
    }
}

#[tokio::test(start_paused = true)]
async fn t9_at_most_one_vendor_call_is_outstanding() {
    let (t, svc, _) = engine();
    t.init().await.expect("init");
    let s = facepay::terminal::face_service::Surface { id: 1, width: 480, height: 640 };
    t.surface_changed(s).await.expect("surface");
    for _ in 0..5 {
        t.pay(pay(), &|_| None).await.expect("paid");
    }
    t.start_gate().await.expect("gate");
    tokio::time::sleep(Duration::from_secs(200)).await;
    t.stop_gate().await.expect("stop");
    svc.hang.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(svc.log.lock().len() > 30);
    assert_eq!(svc.max_outstanding.load(Ordering::SeqCst), 1, "T9: one pending call at most");
}

#[tokio::test(start_paused = true)]
async fn t7_10_finish_and_credential_carry_exactly_the_library_keys() {
    let (t, svc, _) = engine();
    t.init().await.expect("init");
    t.pay(pay(), &|_| None).await.expect("paid");
    let f = svc.last_finish.lock().clone().expect("finish");
    assert!(f.user_phone.is_none() && f.authed.is_complete());
    let c = svc.last_credential.lock().clone().expect("credential");
    assert_eq!((c.user_id.as_str(), c.recog_mode, c.total_fee.as_str()), ("u1", RecogMode::Face, "1200"));
    assert_eq!(c.recog_mode.as_int(), 0);
    assert!(c.authed.is_complete() && c.authed.mch_name == "示例食堂");
    // Auxiliary verification: the phone goes to finish, recog_mode 1 to the credential.
    svc.need_ext.store(true, Ordering::SeqCst);
    t.pay(pay(), &|_| Some(Secret::new("1234"))).await.expect("paid");
    let f = svc.last_finish.lock().clone().expect("finish");
    assert_eq!(f.user_phone.as_ref().map(Secret::expose), Some("1234"));
    let c = svc.last_credential.lock().clone().expect("credential");
    assert_eq!(c.recog_mode.as_int(), 1);
}

#[tokio::test(start_paused = true)]
async fn t7_10_a_user_not_fs_normal_gets_no_credential() {
    let (t, svc, be) = engine();
    t.init().await.expect("init");
    *svc.status.lock() = "FS_FROZEN".into();
    let e = t.pay(pay(), &|_| None).await.expect_err("no payment");
    assert!(matches!(e, Error::Vendor { err_code: ERR_USER_STATUS_ABNORMAL, .. }), "{e}");
    assert_eq!(svc.credential_calls.load(Ordering::SeqCst), 0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(be.submissions.lock().is_empty());
}

#[tokio::test(start_paused = true)]
async fn t3_6_a_configuration_without_mch_name_or_organisation_is_refused_at_start() {
    let svc = Scripted::new();
    let be = Arc::new(FakeBackend::default());
    for field in ["mch_name", "organization_id"] {
        let mut cfg = TerminalConfig::example("dev-4", "http://127.0.0.1:9");
        match field {
            "mch_name" => cfg.mch_name = String::new(),
            _ => cfg.organization_id = String::new(),
        }
        let deps = Deps::new(svc.clone(), be.clone(), be.clone());
        let e = Terminal::spawn(cfg, deps).map(|_| ()).expect_err("refused");
        assert!(e.to_string().contains(field), "{e}");
        assert_eq!(e.code(), ErrorCode::InvalidConfig);
    }
}
