//! Tests of the simulated face service, one per SPEC situation it must make observable.
//! All run on paused tokio time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::{sleep, timeout, Instant};

use super::recognition::{RECOGNITION_FAILURES, RESTART_FLOOR};
use super::*;
use crate::terminal::face_service::{
    RecogMode, RecognitionEvent, ERR_FACE_NOT_RECOGNISED, ERR_NO_MATCHING_USER, ERR_RISK_CONTROL,
};

type Rx = UnboundedReceiver<ServiceEvent>;

fn fixed(ms: u64) -> Latency {
    (Duration::from_millis(ms), Duration::from_millis(ms))
}

/// Fixed latencies, no random faults, a fixed wall clock start.
fn quiet(seed: u64) -> SimConfig {
    SimConfig {
        init: fixed(50),
        call: fixed(10),
        update_features: fixed(200),
        preload: fixed(300),
        first_frame: fixed(100),
        recognition: fixed(500),
        camera_reopen_cost: fixed(1500),
        users: 20,
        clock: Some(Arc::new(VirtualWallClock::starting_at(UNIX_EPOCH + Duration::from_secs(1_700_000_000)))),
        ..SimConfig::instant(seed)
    }
}

fn start(cfg: SimConfig) -> (Arc<SimFaceService>, Rx) {
    let sim = SimFaceService::new(cfg);
    let (tx, rx) = unbounded_channel();
    sim.set_listener(tx);
    (sim, rx)
}

fn init_params() -> InitParams {
    InitParams {
        appid: "wx0001".into(),
        mch_id: "1900000001".into(),
        organization_id: "org1".into(),
        ..Default::default()
    }
}

fn verify(session: u64) -> VerifyParams {
    VerifyParams {
        session,
        authinfo: Secret::new("authinfo"),
        appid: "wx0001".into(),
        mch_id: "1900000001".into(),
        sub_appid: None,
        sub_mch_id: None,
        organization_id: "org1".into(),
        recog_mode: RecogMode::Pay,
        total_fee: Some(1200),
        out_trade_no: None,
    }
}

fn finish(user: &UserInfo, phone: Option<&str>) -> FinishParams {
    FinishParams { user_id: user.user_id.clone(), user_phone: phone.map(Secret::new) }
}

fn cred(user: &UserInfo) -> CredentialParams {
    CredentialParams { user_id: user.user_id.clone(), recog_mode: RecogMode::Pay, total_fee: Some(1200) }
}

fn err(code: ReturnCode, err_code: i64) -> VendorError {
    VendorError::new(code, err_code)
}

/// init + first update + preload, and the init callback consumed.
async fn ready(sim: &SimFaceService, rx: &mut Rx) {
    sim.init(init_params()).await.expect("init");
    assert_eq!(next(rx).await, ServiceEvent::InitCallback { ok: true });
    sim.update_features().await.expect("update");
    sim.preload().await.expect("preload");
}

async fn next(rx: &mut Rx) -> ServiceEvent {
    timeout(Duration::from_secs(600), rx.recv()).await.expect("an event within 10 min").expect("channel open")
}

fn drain(rx: &mut Rx) -> Vec<ServiceEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// Waits for the result of `session`; returns the failures seen before it.
async fn recognised(rx: &mut Rx, session: u64) -> (Vec<i64>, bool, UserInfo) {
    let mut failures = vec![];
    loop {
        match next(rx).await {
            ServiceEvent::Recognition { session: s, event } => {
                assert_eq!(s, session, "event of another session");
                match event {
                    RecognitionEvent::FirstFrame => {}
                    RecognitionEvent::Failed { err_code, .. } => failures.push(err_code),
                    RecognitionEvent::Recognised { need_ext_verify, mut users, .. } => {
                        return (failures, need_ext_verify, users.pop().expect("one user"));
                    }
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn pay(sim: &SimFaceService, rx: &mut Rx, session: u64) -> (Vec<i64>, Credential) {
    sim.start_verify(verify(session)).await.expect("start");
    let (failures, ext, user) = recognised(rx, session).await;
    let phone = ext.then(|| sim.users().into_iter().find(|u| u.user_id == user.user_id).expect("known").phone);
    let p = FinishParams { user_id: user.user_id.clone(), user_phone: phone };
    assert_eq!(sim.finish_verify(p).await.expect("finish"), user);
    (failures, sim.credential(cred(&user)).await.expect("credential"))
}

#[tokio::test(start_paused = true)]
async fn t1_1_ota_restart_hangs_calls_and_silences_callbacks() {
    let (sim, mut rx) = start(SimConfig { update_features: fixed(2_000), ..quiet(1) });
    ready(&sim, &mut rx).await;
    sim.present(Presence::Failing(ERR_FACE_NOT_RECOGNISED));
    sim.start_verify(verify(1)).await.expect("start");
    sleep(Duration::from_secs(2)).await;
    let before = drain(&mut rx);
    assert!(before.len() >= 3, "first frame and failures before the OTA: {before:?}");
    let parked = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.update_features().await })
    };
    sleep(Duration::from_millis(100)).await;
    sim.ota_restart(Duration::from_secs(30));
    assert!(sim.is_down());
    assert!(timeout(Duration::from_secs(10), sim.sdk_info()).await.is_err(), "a call while down hangs");
    sleep(Duration::from_secs(60)).await;
    assert!(!sim.is_down());
    assert!(!parked.is_finished(), "a call parked across the restart never answers");
    assert!(drain(&mut rx).is_empty(), "no callback after the restart");
    let st = sim.stats();
    assert_eq!((st.ota_restarts, st.hung_calls), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn t1_2_service_returns_uninitialised_after_ota() {
    let (sim, mut rx) = start(SimConfig { initialising_answers: 1, ..quiet(2) });
    assert_eq!(sim.init(init_params()).await, Err(err(ReturnCode::Error, ERR_INITIALISING)));
    ready(&sim, &mut rx).await;
    let last = sim.sdk_info().await.expect("info").last_update_data_time_ms;
    assert!(last.is_some());
    pay(&sim, &mut rx, 1).await;
    sim.ota_restart(Duration::from_secs(30));
    sleep(Duration::from_secs(31)).await;
    let not_init = Err(err(ReturnCode::Error, ERR_NOT_INITIALISED));
    assert_eq!(sim.sdk_info().await, not_init.clone().map(|()| SdkInfo::default()));
    assert_eq!(sim.start_verify(verify(2)).await, not_init);
    // The restarted process is initialising again.
    assert_eq!(sim.init(init_params()).await, Err(err(ReturnCode::Error, ERR_INITIALISING)));
    sim.init(init_params()).await.expect("re-init");
    assert_eq!(next(&mut rx).await, ServiceEvent::InitCallback { ok: true });
    assert_eq!(sim.sdk_info().await.expect("info").last_update_data_time_ms, last, "library kept on disk");
    assert_eq!(sim.start_verify(verify(2)).await, Err(err(ReturnCode::Fail, SIM_ERR_FEATURES_NOT_UPDATED)));
    sim.update_features().await.expect("update");
    let t0 = Instant::now();
    sim.start_verify(verify(3)).await.expect("start");
    assert_eq!(next(&mut rx).await, ServiceEvent::Recognition { session: 3, event: RecognitionEvent::FirstFrame });
    assert!(t0.elapsed() >= Duration::from_millis(1_600), "camera cold after the restart");
    assert_eq!(sim.stats().camera_cold_starts, 1);
}

#[tokio::test(start_paused = true)]
async fn t2_initialising_code_then_success() {
    let (sim, mut rx) = start(SimConfig { initialising_answers: 2, ..quiet(3) });
    let not_init = Err(err(ReturnCode::Error, ERR_NOT_INITIALISED));
    assert_eq!(sim.raw_data().await, not_init.clone().map(|()| String::new()));
    assert_eq!(sim.release().await, not_init.clone());
    assert_eq!(sim.preload().await, not_init);
    for _ in 0..2 {
        assert_eq!(sim.init(init_params()).await, Err(err(ReturnCode::Error, ERR_INITIALISING)));
    }
    assert!(drain(&mut rx).is_empty(), "no init callback while initialising");
    sim.init(init_params()).await.expect("third init");
    assert!(sim.is_initialised());
    sim.init(init_params()).await.expect("a second init is harmless");
    assert_eq!(drain(&mut rx), vec![ServiceEvent::InitCallback { ok: true }; 2]);
    assert!(sim.raw_data().await.expect("raw data").starts_with("rawdata_"));
    let st = sim.stats();
    assert_eq!((st.initialising_answers, st.inits_ok, st.not_initialised_answers), (2, 2, 3));
    assert_eq!(st.calls(Op::Init), 4);
}

#[tokio::test(start_paused = true)]
async fn t2_init_fault_answers_fail_with_failed_callback() {
    let (sim, mut rx) = start(SimConfig { p_init_fail: 1.0, ..quiet(4) });
    assert_eq!(sim.init(init_params()).await, Err(err(ReturnCode::Fail, SIM_ERR_INIT_FAILED)));
    assert_eq!(drain(&mut rx), vec![ServiceEvent::InitCallback { ok: false }]);
    assert!(!sim.is_initialised());
    assert_eq!(sim.stats().inits_failed, 1);
}

#[tokio::test(start_paused = true)]
async fn t4_4_start_verify_refused_until_features_updated() {
    let (sim, mut rx) = start(quiet(5));
    sim.init(init_params()).await.expect("init");
    assert_eq!(sim.sdk_info().await.expect("info").last_update_data_time_ms, None);
    assert_eq!(sim.start_verify(verify(1)).await, Err(err(ReturnCode::Fail, SIM_ERR_FEATURES_NOT_UPDATED)));
    assert_eq!(sim.stats().verify_without_features, 1);
    sim.update_features().await.expect("update");
    drain(&mut rx);
    pay(&sim, &mut rx, 2).await;
}

#[tokio::test(start_paused = true)]
async fn t4_1_a_failed_first_update_also_opens_verification() {
    let (sim, mut rx) = start(quiet(15));
    sim.init(init_params()).await.expect("init");
    sim.set_network(false);
    assert_eq!(sim.update_features().await, Err(err(ReturnCode::Fail, SIM_ERR_UPDATE_FAILED)));
    sim.start_verify(verify(1)).await.expect("an answered update, even a failed one, suffices");
    assert_eq!(sim.stats().verify_without_features, 0);
    drain(&mut rx);
}

#[tokio::test(start_paused = true)]
async fn t4_2_auto_refresh_every_90s_without_callback() {
    let (sim, mut rx) = start(SimConfig { init: ZERO, update_features: ZERO, ..quiet(6) });
    ready(&sim, &mut rx).await;
    let first = sim.sdk_info().await.expect("info");
    let new_user = sim.enroll_user();
    assert_eq!(sim.sdk_info().await.expect("info").user_info_dbcount, first.user_info_dbcount);
    sleep(Duration::from_secs(91)).await;
    let info = sim.sdk_info().await.expect("info");
    let (t0, t1) = (first.last_update_data_time_ms.expect("t0"), info.last_update_data_time_ms.expect("t1"));
    assert_eq!(t1 - t0, 90_000, "refreshed at +90 s of virtual time");
    assert_eq!(info.user_info_dbcount, first.user_info_dbcount + 1, "the new user reached the device");
    assert!(drain(&mut rx).is_empty(), "no callback for the auto refresh");
    assert_eq!(sim.stats().auto_refreshes, 1);
    sim.present(Presence::User(new_user));
    let (failures, _, user) = {
        sim.start_verify(verify(1)).await.expect("start");
        recognised(&mut rx, 1).await
    };
    assert!(failures.is_empty());
    assert_eq!(user.user_id, sim.users()[new_user].user_id);
}

#[tokio::test(start_paused = true)]
async fn t4_3_stale_without_network() {
    let cfg = quiet(7);
    let clock = cfg.clock.clone().expect("clock");
    let (sim, mut rx) = start(cfg);
    ready(&sim, &mut rx).await;
    let last = sim.sdk_info().await.expect("info").last_update_data_time_ms.expect("updated");
    sim.set_network(false);
    let (enrolled, cancelled) = (sim.enroll_user(), 3);
    sim.cancel_user(cancelled);
    assert_eq!(sim.update_features().await, Err(err(ReturnCode::Fail, SIM_ERR_UPDATE_FAILED)));
    sleep(Duration::from_secs(11 * 60)).await;
    let info = sim.sdk_info().await.expect("info");
    assert_eq!(info.last_update_data_time_ms, Some(last), "auto refreshes failed silently");
    assert!(unix_ms(clock.wall()) - last > 10 * 60 * 1000, "stale by the service's own clock");
    assert_eq!(unix_ms(sim.clock().wall()), unix_ms(clock.wall()));
    assert_eq!(sim.last_update_data_time_ms(), Some(last));
    assert!(sim.stats().auto_refreshes >= 7);
    // A newly enrolled user cannot pay; a cancelled one still can.
    sim.present(Presence::User(enrolled));
    sim.start_verify(verify(1)).await.expect("start");
    assert_eq!(next(&mut rx).await, ServiceEvent::Recognition { session: 1, event: RecognitionEvent::FirstFrame });
    let ev = next(&mut rx).await;
    let failed = RecognitionEvent::Failed { err_code: ERR_NO_MATCHING_USER, need_restart_verify: false };
    assert_eq!(ev, ServiceEvent::Recognition { session: 1, event: failed.clone() });
    sim.stop_verify().await.expect("stop");
    sim.present(Presence::User(cancelled));
    sim.start_verify(verify(2)).await.expect("start");
    assert_eq!(recognised(&mut rx, 2).await.2.user_id, sim.users()[cancelled].user_id);
    // Network back: the update brings the library up to date.
    sim.set_network(true);
    sim.update_features().await.expect("update");
    sim.present(Presence::User(cancelled));
    sim.start_verify(verify(3)).await.expect("start");
    next(&mut rx).await;
    assert_eq!(next(&mut rx).await, ServiceEvent::Recognition { session: 3, event: failed });
    sim.present(Presence::User(enrolled));
    sim.start_verify(verify(4)).await.expect("start");
    assert_eq!(recognised(&mut rx, 4).await.2.user_id, sim.users()[enrolled].user_id);
}

#[tokio::test(start_paused = true)]
async fn t5_camera_reopen_cost_when_not_preloaded() {
    let (sim, mut rx) = start(quiet(8));
    let first_frame_after = |session| {
        let sim = sim.clone();
        async move {
            let t0 = Instant::now();
            sim.start_verify(verify(session)).await.expect("start");
            (t0, sim)
        }
    };
    sim.init(init_params()).await.expect("init");
    sim.update_features().await.expect("update");
    drain(&mut rx);
    let (t0, _) = first_frame_after(1).await;
    assert!(matches!(next(&mut rx).await, ServiceEvent::Recognition { event: RecognitionEvent::FirstFrame, .. }));
    assert!(t0.elapsed() >= Duration::from_millis(1_600), "cold: {:?}", t0.elapsed());
    sim.stop_verify().await.expect("stop");
    let (t0, _) = first_frame_after(2).await;
    assert_eq!(next(&mut rx).await, ServiceEvent::Recognition { session: 2, event: RecognitionEvent::FirstFrame });
    assert!(t0.elapsed() < Duration::from_millis(200), "warm: {:?}", t0.elapsed());
    sim.release().await.expect("release");
    ready(&sim, &mut rx).await;
    let (t0, _) = first_frame_after(3).await;
    assert_eq!(next(&mut rx).await, ServiceEvent::Recognition { session: 3, event: RecognitionEvent::FirstFrame });
    assert!(t0.elapsed() < Duration::from_millis(200), "preloaded after release: {:?}", t0.elapsed());
    assert_eq!(sim.stats().camera_cold_starts, 1);
}

#[tokio::test(start_paused = true)]
async fn t6_preview_needs_a_sized_surface_and_is_counted() {
    let (sim, mut rx) = start(SimConfig { double_preview_callback: true, ..quiet(9) });
    ready(&sim, &mut rx).await;
    let bad = Err(err(ReturnCode::Fail, SIM_ERR_INVALID_PARAM));
    assert_eq!(sim.set_preview(Surface { id: 0, width: 480, height: 640 }).await, bad);
    assert_eq!(sim.set_preview(Surface { id: 7, width: 0, height: 640 }).await, bad);
    sim.set_preview(Surface { id: 7, width: 480, height: 640 }).await.expect("bind");
    sim.remove_preview().await.expect("remove");
    let st = sim.stats();
    assert_eq!((st.preview_binds, st.preview_removes, st.preview_double_callbacks), (1, 1, 1));
    assert_eq!(st.calls(Op::SetPreview), 3);
    let by_op: Vec<_> = st.calls_by_op().filter(|(_, n)| *n > 0).collect();
    assert_eq!(
        by_op,
        [(Op::Init, 1), (Op::Preload, 1), (Op::UpdateFeatures, 1), (Op::SetPreview, 3), (Op::RemovePreview, 1)]
    );
}

#[tokio::test(start_paused = true)]
async fn t7_1_failure_restarts_recognition_success_stops() {
    let (sim, mut rx) = start(quiet(10));
    ready(&sim, &mut rx).await;
    sim.present(Presence::Failing(ERR_RISK_CONTROL));
    sim.start_verify(verify(1)).await.expect("start");
    sleep(Duration::from_secs(5)).await;
    let failed = drain(&mut rx)
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                ServiceEvent::Recognition {
                    session: 1,
                    event: RecognitionEvent::Failed { err_code: ERR_RISK_CONTROL, .. }
                }
            )
        })
        .count();
    assert!(failed >= 8, "recognition restarts by itself after each failure: {failed}");
    sim.stop_verify().await.expect("stop");
    // Random failures, then exactly one success that stops recognition.
    let (sim, mut rx) = start(SimConfig { p_recognition_fail: 0.6, ..quiet(11) });
    ready(&sim, &mut rx).await;
    let mut with_failures = 0;
    for session in 1..=20 {
        let (failures, _) = pay(&sim, &mut rx, session).await;
        assert!(failures.iter().all(|c| RECOGNITION_FAILURES.contains(c)));
        with_failures += usize::from(!failures.is_empty());
        sleep(Duration::from_secs(30)).await;
        assert!(drain(&mut rx).is_empty(), "nothing after a success");
    }
    assert!(with_failures >= 5, "{with_failures}");
    let st = sim.stats();
    assert_eq!((st.recognitions_ok, st.credentials_issued, st.order_violations()), (20, 20, 0));
}

#[tokio::test(start_paused = true)]
async fn t7_3_finish_before_recognition_counts_lost_user() {
    let (sim, mut rx) = start(quiet(12));
    ready(&sim, &mut rx).await;
    sim.present(Presence::User(2));
    let user = sim.users()[2].user_info();
    sim.start_verify(verify(1)).await.expect("start");
    assert_eq!(sim.finish_verify(finish(&user, None)).await, Err(err(ReturnCode::Fail, ERR_NO_USER_INFO)));
    assert_eq!(sim.stats().finish_without_recognition, 1);
    recognised(&mut rx, 1).await;
    let other = sim.users()[3].user_info();
    assert_eq!(sim.finish_verify(finish(&other, None)).await, Err(err(ReturnCode::Fail, ERR_NO_USER_INFO)));
    assert_eq!(sim.finish_verify(finish(&user, None)).await, Ok(user.clone()));
    sim.credential(cred(&user)).await.expect("credential");
    let st = sim.stats();
    assert_eq!((st.finish_without_recognition, st.finishes, st.order_violations()), (2, 1, 2));
}

#[tokio::test(start_paused = true)]
async fn t7_4_credential_before_finish_is_refused() {
    let (sim, mut rx) = start(quiet(13));
    ready(&sim, &mut rx).await;
    let refused = Err(err(ReturnCode::Fail, ERR_NO_USER_INFO));
    let someone = sim.users()[0].user_info();
    assert_eq!(sim.credential(cred(&someone)).await, refused.clone().map(|()| unreachable!()));
    sim.start_verify(verify(1)).await.expect("start");
    let (_, _, user) = recognised(&mut rx, 1).await;
    assert_eq!(sim.credential(cred(&user)).await, refused.clone().map(|()| unreachable!()));
    sim.finish_verify(finish(&user, None)).await.expect("finish");
    sim.credential(cred(&user)).await.expect("credential");
    assert_eq!(sim.credential(cred(&user)).await, refused.map(|()| unreachable!()), "the session ended");
    let st = sim.stats();
    assert_eq!((st.credential_without_finish, st.credentials_issued), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn t7_5_credential_after_stop_is_counted() {
    let (sim, mut rx) = start(quiet(14));
    ready(&sim, &mut rx).await;
    sim.start_verify(verify(1)).await.expect("start");
    let (_, _, user) = recognised(&mut rx, 1).await;
    sim.finish_verify(finish(&user, None)).await.expect("finish");
    sim.stop_verify().await.expect("stop");
    sim.credential(cred(&user)).await.expect("data kept, but counted");
    assert_eq!(sim.stats().credential_after_stop, 1);
}

#[tokio::test(start_paused = true)]
async fn t7_6_ext_verify_needs_phone() {
    let (sim, mut rx) = start(quiet(15));
    ready(&sim, &mut rx).await;
    sim.present(Presence::ExtVerify(4));
    sim.start_verify(verify(1)).await.expect("start");
    let (_, ext, user) = recognised(&mut rx, 1).await;
    assert!(ext);
    let phone = sim.users()[4].phone.expose().to_owned();
    let wrong = if phone.ends_with("0000") { "1111" } else { "0000" };
    let refused = Err(err(ReturnCode::Fail, ERR_SIMILAR_FACES));
    assert_eq!(sim.finish_verify(finish(&user, None)).await, refused);
    assert_eq!(sim.finish_verify(finish(&user, Some(wrong))).await, refused);
    assert_eq!(sim.finish_verify(finish(&user, Some(&phone[7..]))).await, Ok(user.clone()));
    sim.credential(cred(&user)).await.expect("credential");
    let st = sim.stats();
    assert_eq!((st.ext_verify_requests, st.finish_ext_verify_failed, st.credentials_issued), (1, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn t7_7_stop_silences_session() {
    let (sim, mut rx) = start(quiet(16));
    ready(&sim, &mut rx).await;
    sim.present(Presence::User(1));
    sim.start_verify(verify(1)).await.expect("start");
    assert_eq!(next(&mut rx).await, ServiceEvent::Recognition { session: 1, event: RecognitionEvent::FirstFrame });
    sim.stop_verify().await.expect("stop");
    sleep(Duration::from_secs(60)).await;
    assert!(drain(&mut rx).is_empty(), "no event after stop");
    let user = sim.users()[1].user_info();
    assert!(sim.finish_verify(finish(&user, None)).await.is_err());
    // A second start while one runs restarts: only the new session reports.
    sim.start_verify(verify(2)).await.expect("start 2");
    sim.start_verify(verify(3)).await.expect("start 3");
    recognised(&mut rx, 3).await;
    sleep(Duration::from_secs(60)).await;
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test(start_paused = true)]
async fn t7_8_each_flow_gets_a_fresh_credential_and_nobody_gets_none() {
    let (sim, mut rx) = start(quiet(17));
    ready(&sim, &mut rx).await;
    let (_, a) = pay(&sim, &mut rx, 1).await;
    let (_, b) = pay(&sim, &mut rx, 2).await;
    assert_ne!(a.face_token, b.face_token);
    assert!(!format!("{a:?}").contains(a.face_token.expose()));
    sim.present(Presence::Nobody);
    sim.start_verify(verify(3)).await.expect("start");
    assert_eq!(next(&mut rx).await, ServiceEvent::Recognition { session: 3, event: RecognitionEvent::FirstFrame });
    assert!(timeout(Duration::from_secs(300), rx.recv()).await.is_err(), "nobody: no result");
    assert_eq!(sim.stats().credentials_issued, 2);
}

/// The events and tokens of a scripted run with the default (faulty) configuration.
async fn scripted_run(seed: u64) -> Vec<String> {
    let clock = Arc::new(VirtualWallClock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
    let (sim, mut rx) = start(SimConfig { clock: Some(clock), p_recognition_fail: 0.4, ..SimConfig::seeded(seed) });
    let (t0, mut log) = (Instant::now(), vec![]);
    while let Err(e) = sim.init(init_params()).await {
        log.push(format!("init {e:?}"));
    }
    while let Err(e) = sim.update_features().await {
        log.push(format!("update {e:?}"));
    }
    log.push(sim.raw_data().await.expect("raw"));
    log.extend(drain(&mut rx).iter().map(|e| format!("{e:?}")));
    for session in 1..=8 {
        sim.start_verify(verify(session)).await.expect("start");
        let (_, ext, user) = recognised(&mut rx, session).await;
        let phone = ext.then(|| sim.users().into_iter().find(|u| u.user_id == user.user_id).expect("known").phone);
        sim.finish_verify(FinishParams { user_id: user.user_id.clone(), user_phone: phone }).await.expect("finish");
        let token = sim.credential(cred(&user)).await.expect("credential").face_token;
        log.push(format!("{:?} {}", t0.elapsed(), token.expose()));
    }
    log.extend(drain(&mut rx).iter().map(|e| format!("{e:?}")));
    log.push(format!("{:?}", sim.stats()));
    log
}

#[tokio::test(start_paused = true)]
async fn determinism_same_seed_same_events() {
    let a = scripted_run(42).await;
    assert_eq!(a, scripted_run(42).await);
    assert_ne!(a, scripted_run(43).await);
}

#[tokio::test(start_paused = true)]
async fn instant_preset_takes_no_virtual_time() {
    let (sim, mut rx) = start(SimConfig::instant(18));
    let t0 = Instant::now();
    ready(&sim, &mut rx).await;
    for session in 1..=5 {
        pay(&sim, &mut rx, session).await;
    }
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!(sim.stats().order_violations(), 0);
}

#[tokio::test(start_paused = true)]
async fn t1_1_calls_abandoned_at_their_deadline_count_as_hung_only_across_an_ota() {
    let (sim, mut rx) = start(SimConfig { update_features: fixed(5_000), ..quiet(19) });
    ready(&sim, &mut rx).await;
    // A slow call abandoned by its caller is not a hung call.
    assert!(timeout(Duration::from_secs(1), sim.update_features()).await.is_err());
    assert_eq!(sim.stats().hung_calls, 0);
    // A call in flight when the service restarts is, even if its caller gives up.
    let parked = {
        let sim = sim.clone();
        tokio::spawn(async move { timeout(Duration::from_secs(3), sim.update_features()).await })
    };
    sleep(Duration::from_millis(100)).await;
    sim.ota_restart(Duration::from_secs(1));
    assert!(parked.await.expect("task").is_err(), "the deadline catches it");
    assert_eq!(sim.stats().hung_calls, 1);
    assert_eq!(sim.sdk_info().await.map(|_| ()), Err(err(ReturnCode::Error, ERR_NOT_INITIALISED)));
    assert_eq!(sim.stats().hung_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn t2_1_reconnect_fires_init_callback_again_without_init() {
    let (sim, mut rx) = start(SimConfig { init_callback_on_reconnect: true, ..quiet(20) });
    ready(&sim, &mut rx).await;
    sim.ota_restart(Duration::from_secs(30));
    sleep(Duration::from_secs(29)).await;
    assert!(drain(&mut rx).is_empty(), "nothing while down");
    assert_eq!(next(&mut rx).await, ServiceEvent::InitCallback { ok: true });
    assert!(!sim.is_initialised(), "the callback does not mean initialised");
    assert_eq!(sim.start_verify(verify(1)).await, Err(err(ReturnCode::Error, ERR_NOT_INITIALISED)));
    assert_eq!(sim.stats().inits_ok, 1);
}

#[tokio::test(start_paused = true)]
async fn t7_1_failing_face_with_zero_latency_restarts_without_spinning() {
    let (sim, mut rx) = start(SimConfig::instant(21));
    ready(&sim, &mut rx).await;
    sim.present(Presence::Failing(ERR_FACE_NOT_RECOGNISED));
    sim.start_verify(verify(1)).await.expect("start");
    sleep(Duration::from_secs(1)).await;
    let events = drain(&mut rx);
    assert_eq!(events.first(), Some(&ServiceEvent::Recognition { session: 1, event: RecognitionEvent::FirstFrame }));
    let failures = events.len() - 1;
    assert!((19..=21).contains(&failures), "one attempt per {RESTART_FLOOR:?}: {failures}");
    sim.stop_verify().await.expect("stop");
}
