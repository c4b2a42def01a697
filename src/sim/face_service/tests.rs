//! Tests of the simulated face service, one per SPEC situation it must make observable.
//! All run on paused tokio time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::{sleep, timeout, Instant};

use super::link::LIBRARY_TIMEOUT;
use super::recognition::{RECOGNITION_FAILURES, RESTART_FLOOR};
use super::*;
use crate::error::Secret;
use crate::terminal::face_service::{
    AuthedMap, Credential, CredentialParams, FaceService, FinishParams, InitParams, Op, RecogMode, RecognitionEvent,
    SdkInfo, Surface, UserInfo, VerifyParams, ERR_FACE_NOT_RECOGNISED, ERR_INITIALISING, ERR_NO_MATCHING_USER,
    ERR_NO_USER_INFO, ERR_RISK_CONTROL, ERR_SIMILAR_FACES,
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

/// T2.4: the 2-argument init.
fn init_params() -> InitParams {
    InitParams::default()
}

/// T3.6: the authed map every call after rawdata carries.
fn authed() -> Authed {
    Arc::new(AuthedMap {
        appid: "wx0001".into(),
        mch_id: "1900000001".into(),
        mch_name: "食堂".into(),
        sub_appid: None,
        sub_mch_id: Some("1900000109".into()),
        organization_id: "org1".into(),
        authinfo: Secret::new("authinfo"),
    })
}

fn verify(session: u64) -> VerifyParams {
    VerifyParams { session, authed: authed() }
}

fn finish(phone: Option<&str>) -> FinishParams {
    FinishParams { authed: authed(), user_phone: phone.map(Secret::new) }
}

fn cred(user: &UserInfo) -> CredentialParams {
    cred_mode(user, RecogMode::Face)
}

fn cred_mode(user: &UserInfo, recog_mode: RecogMode) -> CredentialParams {
    CredentialParams { authed: authed(), user_id: user.user_id.clone(), recog_mode, total_fee: "1200".into() }
}

fn err(code: ReturnCode, err_code: i64) -> VendorError {
    VendorError::new(code, err_code)
}

/// init + first update + preload, and the init callback consumed.
async fn ready(sim: &SimFaceService, rx: &mut Rx) {
    sim.init(init_params()).await.expect("init");
    sim.raw_data().await.expect("raw data");
    sim.preload(authed()).await.expect("preload");
    sim.update_features(authed()).await.expect("update");
    assert!(drain(rx).is_empty(), "T9: no init callback event");
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
    let mode = if ext { RecogMode::WithPhone } else { RecogMode::Face };
    let p = FinishParams { authed: authed(), user_phone: phone };
    assert_eq!(sim.finish_verify(p).await.expect("finish"), user);
    (failures, sim.credential(cred_mode(&user, mode)).await.expect("credential"))
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
        tokio::spawn(async move { sim.update_features(authed()).await })
    };
    sleep(Duration::from_millis(100)).await;
    sim.ota_restart(Duration::from_secs(30));
    assert!(sim.is_down());
    assert!(timeout(Duration::from_secs(5), sim.sdk_info(authed())).await.is_err(), "a call while down waits");
    sleep(Duration::from_secs(60)).await;
    assert!(!sim.is_down());
    assert!(!parked.is_finished(), "a call in flight across the restart never answers");
    assert!(drain(&mut rx).is_empty(), "no callback after the restart");
    let st = sim.stats();
    assert_eq!((st.ota_restarts, st.hung_calls, st.library_inits), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn t9_restarted_service_is_reinitialised_by_the_library_and_needs_the_sequence_again() {
    let (sim, mut rx) = start(SimConfig { initialising_answers: 1, ..quiet(2) });
    assert_eq!(sim.init(init_params()).await, Err(err(ReturnCode::Fail, ERR_INITIALISING)));
    ready(&sim, &mut rx).await;
    let last = sim.sdk_info(authed()).await.expect("info").last_update_data_time_ms;
    assert!(last.is_some());
    pay(&sim, &mut rx, 1).await;
    sim.ota_restart(Duration::from_secs(30));
    sleep(Duration::from_secs(31)).await;
    // The library initialised the new service itself, with no callback (T9); until the
    // SDK's sequence ran again, the stricter simulator refuses info and verification.
    assert!(drain(&mut rx).is_empty(), "T9: no init callback after a reconnect");
    assert_eq!(sim.stats().library_inits, 1);
    let not_init = Err(err(ReturnCode::Fail, ERR_NOT_INITIALISED));
    assert_eq!(sim.sdk_info(authed()).await, not_init.clone().map(|()| SdkInfo::default()));
    assert_eq!(sim.start_verify(verify(2)).await, not_init);
    sim.init(init_params()).await.expect("init answers locally: the library is connected");
    sim.raw_data().await.expect("raw data");
    sim.preload(authed()).await.expect("preload");
    sim.update_features(authed()).await.expect("update");
    assert_eq!(sim.sdk_info(authed()).await.expect("info").last_update_data_time_ms.is_some(), last.is_some());
    let t0 = Instant::now();
    sim.start_verify(verify(3)).await.expect("start");
    assert_eq!(next(&mut rx).await, ServiceEvent::Recognition { session: 3, event: RecognitionEvent::FirstFrame });
    assert!(t0.elapsed() < Duration::from_millis(1_600), "re-preloaded by the library and by the sequence");
    let st = sim.stats();
    assert_eq!((st.camera_cold_starts, st.library_repreloads), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn t2_initialising_code_then_success() {
    let (sim, mut rx) = start(SimConfig { initialising_answers: 2, ..quiet(3) });
    let not_init = Err(err(ReturnCode::Fail, ERR_NOT_INITIALISED));
    assert_eq!(sim.raw_data().await, not_init.clone().map(|()| String::new()));
    assert_eq!(sim.release().await, not_init.clone());
    assert_eq!(sim.preload(authed()).await, not_init);
    for _ in 0..2 {
        assert_eq!(sim.init(init_params()).await, Err(err(ReturnCode::Fail, ERR_INITIALISING)));
    }
    sim.init(init_params()).await.expect("third init");
    assert!(sim.is_initialised());
    sim.init(init_params()).await.expect("a second init is harmless");
    assert!(drain(&mut rx).is_empty(), "init answers its own call only");
    assert!(sim.raw_data().await.expect("raw data").starts_with("rawdata_"));
    let st = sim.stats();
    assert_eq!((st.initialising_answers, st.inits_ok, st.not_initialised_answers), (2, 2, 3));
    assert_eq!(st.calls(Op::Init), 4);
}

#[tokio::test(start_paused = true)]
async fn t2_init_fault_answers_fail_with_failed_callback() {
    let (sim, mut rx) = start(SimConfig { p_init_fail: 1.0, ..quiet(4) });
    assert_eq!(sim.init(init_params()).await, Err(err(ReturnCode::Fail, SIM_ERR_INIT_FAILED)));
    assert!(drain(&mut rx).is_empty());
    assert!(!sim.is_initialised());
    assert_eq!(sim.stats().inits_failed, 1);
}

#[tokio::test(start_paused = true)]
async fn t4_4_start_verify_refused_until_features_updated() {
    let (sim, mut rx) = start(quiet(5));
    sim.init(init_params()).await.expect("init");
    assert_eq!(sim.sdk_info(authed()).await.expect("info").last_update_data_time_ms, None);
    assert_eq!(sim.start_verify(verify(1)).await, Err(err(ReturnCode::Fail, SIM_ERR_FEATURES_NOT_UPDATED)));
    assert_eq!(sim.stats().verify_without_features, 1);
    sim.update_features(authed()).await.expect("update");
    drain(&mut rx);
    pay(&sim, &mut rx, 2).await;
}

#[tokio::test(start_paused = true)]
async fn t4_1_a_failed_first_update_also_opens_verification() {
    let (sim, mut rx) = start(quiet(15));
    sim.init(init_params()).await.expect("init");
    sim.set_network(false);
    assert_eq!(sim.update_features(authed()).await, Err(err(ReturnCode::Fail, SIM_ERR_UPDATE_FAILED)));
    sim.start_verify(verify(1)).await.expect("an answered update, even a failed one, suffices");
    assert_eq!(sim.stats().verify_without_features, 0);
    drain(&mut rx);
}

#[tokio::test(start_paused = true)]
async fn t4_2_auto_refresh_every_90s_without_callback() {
    let (sim, mut rx) = start(SimConfig { init: ZERO, update_features: ZERO, ..quiet(6) });
    ready(&sim, &mut rx).await;
    let first = sim.sdk_info(authed()).await.expect("info");
    let new_user = sim.enroll_user();
    assert_eq!(sim.sdk_info(authed()).await.expect("info").user_info_dbcount, first.user_info_dbcount);
    sleep(Duration::from_secs(91)).await;
    let info = sim.sdk_info(authed()).await.expect("info");
    let (t0, t1) = (first.last_update_data_time_ms.expect("t0"), info.last_update_data_time_ms.expect("t1"));
    // The refresh runs every 90 s from init; the first update came after raw data (10 ms)
    // and the preload (300 ms).
    assert_eq!(t1 - t0, 90_000 - 310, "refreshed at init + 90 s of virtual time");
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
    let last = sim.sdk_info(authed()).await.expect("info").last_update_data_time_ms.expect("updated");
    sim.set_network(false);
    let (enrolled, cancelled) = (sim.enroll_user(), 3);
    sim.cancel_user(cancelled);
    assert_eq!(sim.update_features(authed()).await, Err(err(ReturnCode::Fail, SIM_ERR_UPDATE_FAILED)));
    sleep(Duration::from_secs(11 * 60)).await;
    let info = sim.sdk_info(authed()).await.expect("info");
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
    let failed = RecognitionEvent::Failed { err_code: ERR_NO_MATCHING_USER, need_restart_verify: Some(false) };
    assert_eq!(ev, ServiceEvent::Recognition { session: 1, event: failed.clone() });
    sim.stop_verify(authed()).await.expect("stop");
    sim.present(Presence::User(cancelled));
    sim.start_verify(verify(2)).await.expect("start");
    assert_eq!(recognised(&mut rx, 2).await.2.user_id, sim.users()[cancelled].user_id);
    // Network back: the update brings the library up to date.
    sim.set_network(true);
    sim.update_features(authed()).await.expect("update");
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
    sim.update_features(authed()).await.expect("update");
    drain(&mut rx);
    let (t0, _) = first_frame_after(1).await;
    assert!(matches!(next(&mut rx).await, ServiceEvent::Recognition { event: RecognitionEvent::FirstFrame, .. }));
    assert!(t0.elapsed() >= Duration::from_millis(1_600), "cold: {:?}", t0.elapsed());
    sim.stop_verify(authed()).await.expect("stop");
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
    let bad = Err(err(ReturnCode::Error, SIM_ERR_INVALID_PARAM));
    assert_eq!(sim.set_preview(Surface { id: 0, width: 480, height: 640 }, authed()).await, bad);
    assert_eq!(sim.set_preview(Surface { id: 7, width: 0, height: 640 }, authed()).await, bad);
    sim.set_preview(Surface { id: 7, width: 480, height: 640 }, authed()).await.expect("bind");
    sim.remove_preview(authed()).await.expect("remove");
    let st = sim.stats();
    assert_eq!((st.preview_binds, st.preview_removes, st.preview_double_callbacks), (1, 1, 1));
    assert_eq!(st.calls(Op::SetPreview), 3);
    // VENDOR-API §7.3: the library may answer the preview again; it arrives as a late answer.
    assert_eq!(drain(&mut rx), vec![ServiceEvent::LateAnswer { op: Op::SetPreview }]);
    let by_op: Vec<_> = st.calls_by_op().filter(|(_, n)| *n > 0).collect();
    assert_eq!(
        by_op,
        [
            (Op::Init, 1),
            (Op::RawData, 1),
            (Op::Preload, 1),
            (Op::UpdateFeatures, 1),
            (Op::SetPreview, 3),
            (Op::RemovePreview, 1)
        ]
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
    sim.stop_verify(authed()).await.expect("stop");
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
    assert_eq!(sim.finish_verify(finish(None)).await, Err(err(ReturnCode::Fail, ERR_NO_USER_INFO)));
    assert_eq!(sim.stats().finish_without_recognition, 1);
    recognised(&mut rx, 1).await;
    assert_eq!(sim.finish_verify(finish(None)).await, Ok(user.clone()));
    sim.credential(cred(&user)).await.expect("credential");
    let st = sim.stats();
    assert_eq!((st.finish_without_recognition, st.finishes, st.order_violations()), (1, 1, 1));
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
    sim.finish_verify(finish(None)).await.expect("finish");
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
    sim.finish_verify(finish(None)).await.expect("finish");
    sim.stop_verify(authed()).await.expect("stop");
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
    assert_eq!(sim.finish_verify(finish(None)).await, refused);
    assert_eq!(sim.finish_verify(finish(Some(wrong))).await, refused);
    assert_eq!(sim.finish_verify(finish(Some(&phone[7..]))).await, Ok(user.clone()));
    // T7.10: with a phone entered, recog_mode is 1.
    let bad = Err(err(ReturnCode::Fail, SIM_ERR_INVALID_PARAM));
    assert_eq!(sim.credential(cred_mode(&user, RecogMode::Face)).await.map(|_| ()), bad);
    sim.credential(cred_mode(&user, RecogMode::WithPhone)).await.expect("credential");
    let st = sim.stats();
    assert_eq!((st.ext_verify_requests, st.finish_ext_verify_failed, st.credentials_issued), (1, 2, 1));
    assert_eq!(st.credential_bad_params, 1);
}

#[tokio::test(start_paused = true)]
async fn t7_7_stop_silences_session() {
    let (sim, mut rx) = start(quiet(16));
    ready(&sim, &mut rx).await;
    sim.present(Presence::User(1));
    sim.start_verify(verify(1)).await.expect("start");
    assert_eq!(next(&mut rx).await, ServiceEvent::Recognition { session: 1, event: RecognitionEvent::FirstFrame });
    sim.stop_verify(authed()).await.expect("stop");
    sleep(Duration::from_secs(60)).await;
    assert!(drain(&mut rx).is_empty(), "no event after stop");
    assert!(sim.finish_verify(finish(None)).await.is_err());
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
    log.push(sim.raw_data().await.expect("raw"));
    while let Err(e) = sim.update_features(authed()).await {
        log.push(format!("update {e:?}"));
    }
    log.extend(drain(&mut rx).iter().map(|e| format!("{e:?}")));
    for session in 1..=8 {
        sim.start_verify(verify(session)).await.expect("start");
        let (_, ext, user) = recognised(&mut rx, session).await;
        let phone = ext.then(|| sim.users().into_iter().find(|u| u.user_id == user.user_id).expect("known").phone);
        let mode = if ext { RecogMode::WithPhone } else { RecogMode::Face };
        sim.finish_verify(FinishParams { authed: authed(), user_phone: phone }).await.expect("finish");
        let token = sim.credential(cred_mode(&user, mode)).await.expect("credential").face_token;
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
    assert!(timeout(Duration::from_secs(1), sim.update_features(authed())).await.is_err());
    assert_eq!(sim.stats().hung_calls, 0);
    // A call in flight when the service restarts is, even if its caller gives up.
    let parked = {
        let sim = sim.clone();
        tokio::spawn(async move { timeout(Duration::from_secs(3), sim.update_features(authed())).await })
    };
    sleep(Duration::from_millis(100)).await;
    sim.ota_restart(Duration::from_secs(1));
    assert!(parked.await.expect("task").is_err(), "the deadline catches it");
    assert_eq!(sim.stats().hung_calls, 1);
    assert_eq!(sim.sdk_info(authed()).await.map(|_| ()), Err(err(ReturnCode::Fail, ERR_NOT_INITIALISED)));
    assert_eq!(sim.stats().hung_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn t9_reconnect_fires_no_init_callback() {
    let (sim, mut rx) = start(quiet(20));
    ready(&sim, &mut rx).await;
    sim.ota_restart(Duration::from_secs(30));
    sleep(Duration::from_secs(31)).await;
    assert!(drain(&mut rx).is_empty(), "no init callback, before or after the reconnect");
    assert!(sim.is_initialised(), "the library initialised the new service itself");
    assert_eq!(sim.start_verify(verify(1)).await, Err(err(ReturnCode::Fail, ERR_NOT_INITIALISED)));
    assert_eq!(sim.stats().inits_ok, 1);
}

#[tokio::test(start_paused = true)]
async fn t3_6_calls_after_rawdata_without_the_authed_map_are_refused() {
    let (sim, mut rx) = start(quiet(22));
    ready(&sim, &mut rx).await;
    let refused = Err(err(ReturnCode::Fail, SIM_ERR_ORG_MISMATCH));
    let no_auth = Arc::new(AuthedMap { authinfo: Secret::new(""), ..(*authed()).clone() });
    let no_org = Arc::new(AuthedMap { organization_id: String::new(), ..(*authed()).clone() });
    let no_name = Arc::new(AuthedMap { mch_name: String::new(), ..(*authed()).clone() });
    assert_eq!(sim.preload(no_auth.clone()).await, refused);
    assert_eq!(sim.update_features(no_org.clone()).await, refused);
    assert_eq!(sim.sdk_info(no_name).await.map(|_| ()), refused);
    assert_eq!(sim.start_verify(VerifyParams { session: 1, authed: no_auth }).await, refused);
    assert_eq!(sim.stop_verify(no_org).await, refused);
    assert_eq!(sim.stats().calls_without_authinfo, 5);
    sim.start_verify(verify(2)).await.expect("with the authed map");
    assert_eq!(sim.stats().calls_without_authinfo, 5);
}

#[tokio::test(start_paused = true)]
async fn t9_one_pending_slot_a_second_call_overwrites_the_first_which_never_answers() {
    let (sim, mut rx) = start(quiet(23));
    ready(&sim, &mut rx).await;
    sim.ota_restart(Duration::from_secs(5));
    let first = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.sdk_info(authed()).await })
    };
    sleep(Duration::from_millis(10)).await;
    let second = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.stop_verify(authed()).await })
    };
    sleep(Duration::from_secs(30)).await;
    assert!(!first.is_finished(), "the overwritten call never answers");
    assert_eq!(second.await.expect("task"), Ok(()), "the last call is replayed at the reconnect");
    assert_eq!(sim.stats().pending_overwrites, 1);
}

#[tokio::test(start_paused = true)]
async fn t9_library_timeout_answers_fail_and_keeps_the_call_whose_real_answer_follows() {
    let (sim, mut rx) = start(quiet(24));
    ready(&sim, &mut rx).await;
    sim.ota_restart(Duration::from_secs(25));
    let t0 = Instant::now();
    let r = sim.update_features(authed()).await;
    assert_eq!(r, Err(err(ReturnCode::Fail, ERR_INITIALISING)));
    assert_eq!(t0.elapsed(), LIBRARY_TIMEOUT);
    assert!(drain(&mut rx).is_empty());
    sleep(Duration::from_secs(20)).await;
    assert_eq!(drain(&mut rx), vec![ServiceEvent::LateAnswer { op: Op::UpdateFeatures }]);
    let st = sim.stats();
    assert_eq!((st.timeout_fails, st.late_answers_after_fail, st.updates_ok), (1, 1, 2), "the update did run");
    // The timeout is armed once per library lifetime: a second outage has none.
    sim.ota_restart(Duration::from_secs(25));
    assert!(timeout(Duration::from_secs(20), sim.sdk_info(authed())).await.is_err());
    assert_eq!(sim.stats().timeout_fails, 1);
}

#[tokio::test(start_paused = true)]
async fn t9_a_failed_call_is_replayed_inside_the_reconnect_before_any_later_call() {
    // The library replays its slot in `handleServiceConnected`: by the time the app can
    // make its next call, the late answer of the FAILed one has run.
    let (sim, mut rx) = start(quiet(26));
    ready(&sim, &mut rx).await;
    sim.ota_restart(Duration::from_secs(25));
    assert_eq!(sim.update_features(authed()).await, Err(err(ReturnCode::Fail, ERR_INITIALISING)));
    // An init made meanwhile is the library's `mInitCallback`, answered first thing in
    // the connect: when it resumes, the slot's late answer has already run.
    let seen = {
        let sim = sim.clone();
        tokio::spawn(async move {
            sim.init(init_params()).await.expect("answered at the connect");
            sim.stats().late_answers_after_fail
        })
    };
    assert_eq!(seen.await.expect("task"), 1, "replayed inside the connect");
    assert_eq!(drain(&mut rx), vec![ServiceEvent::LateAnswer { op: Op::UpdateFeatures }]);
}

#[tokio::test(start_paused = true)]
async fn t9_a_reconnect_cancels_the_library_timeout_for_good() {
    // VENDOR-API §3.2/§3.4: `onServiceConnected` removes the timeout's message and the
    // handler is never armed again, so a later outage that spans the 10 s mark of the
    // first one gets no FAIL: its call waits in the slot until the reconnect.
    let (sim, mut rx) = start(quiet(27));
    ready(&sim, &mut rx).await;
    let t0 = Instant::now();
    sim.ota_restart(Duration::from_secs(1));
    sleep(Duration::from_secs(8)).await;
    sim.ota_restart(Duration::from_secs(5));
    let r = sim.sdk_info(authed()).await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(13) && took < Duration::from_secs(14),
        "at the reconnect, not a FAIL at 10 s: {took:?}"
    );
    assert_eq!(r, Err(err(ReturnCode::Fail, ERR_NOT_INITIALISED)), "the replay before the SDK's sequence ran again");
    assert_eq!(sim.stats().timeout_fails, 0);
}

#[tokio::test(start_paused = true)]
async fn t9_init_while_disconnected_is_answered_at_the_reconnect() {
    let (sim, mut rx) = start(quiet(25));
    ready(&sim, &mut rx).await;
    sim.ota_restart(Duration::from_secs(8));
    let t0 = Instant::now();
    sim.init(init_params()).await.expect("answered by the library's remote init");
    assert_eq!(t0.elapsed(), Duration::from_secs(8));
    assert_eq!(sim.stats().pending_overwrites, 0, "init never takes the pending slot");
}

#[tokio::test(start_paused = true)]
async fn t7_10_user_status_is_a_string_and_only_fs_normal_is_valid() {
    let (sim, mut rx) = start(quiet(26));
    ready(&sim, &mut rx).await;
    sim.set_user_status(5, "FS_FROZEN");
    sim.present(Presence::User(5));
    sim.start_verify(verify(1)).await.expect("start");
    let (_, _, user) = recognised(&mut rx, 1).await;
    assert_eq!(user.status, "FS_FROZEN");
    assert!(!user.is_valid());
    assert!(sim.users()[4].user_info().is_valid());
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
    sim.stop_verify(authed()).await.expect("stop");
}
