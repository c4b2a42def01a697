//! Tests of the verify flow, one per SPEC rule (T1.1, T1.3, T7, T7.10), on hand-stepped time.
use super::*;
use crate::terminal::face_service::ReturnCode;

fn user() -> UserInfo {
    UserInfo {
        user_id: "u1".into(),
        out_user_id: "o1".into(),
        user_name: Secret::new("张三"),
        status: "FS_NORMAL".into(),
    }
}

fn flow(now: Instant) -> Flow {
    Flow::new(FlowId(1), 7, FlowMode::Pay, Some(100), now, Some(Duration::from_secs(40)), Duration::from_secs(5))
}

fn step(f: Flow, i: Input, now: Instant) -> (Flow, Vec<Action>) {
    f.handle(i, now).map_err(|(_, e)| e).expect("legal step")
}

fn recognised(now: Instant, need_ext: bool) -> Flow {
    let f = step(flow(now), Input::StartAnswered(Ok(())), now).0;
    step(f, Input::Recognised { need_ext_verify: need_ext, user: user() }, now).0
}

#[test]
fn t7_happy_path_in_the_only_legal_order() {
    let now = Instant::now();
    let f = recognised(now, false);
    let (f, a) = step(f, Input::Finish, now);
    assert!(matches!(&a[..], [Action::CallFinish(p)] if p.user_phone.is_none()));
    let (f, _) = step(f, Input::FinishAnswered(Ok(user())), now);
    let (f, a) = step(f, Input::Credential, now);
    assert!(matches!(&a[..], [Action::CallCredential(p)] if p.total_fee == "100" && p.user_id == "u1"));
    let tok = Credential { face_token: Secret::new("tok") };
    let (f, a) = step(f, Input::CredentialAnswered(Ok(tok.clone())), now);
    assert_eq!(a, vec![Action::Credentialed { credential: tok, user: user() }, Action::Ended(Outcome::Credential)]);
    assert_eq!(f.outcome(), Some(&Outcome::Credential));
}

#[test]
fn t7_3_finish_before_callback_is_refused() {
    let now = Instant::now();
    let f = step(flow(now), Input::StartAnswered(Ok(())), now).0;
    let (f, e) = f.handle(Input::Finish, now).expect_err("refused");
    assert!(matches!(e, Error::OutOfOrder { expected: "Recognition", got: "Finish" }));
    // The flow is intact: the recognition callback still leads to a legal finish.
    let f = step(f, Input::Recognised { need_ext_verify: false, user: user() }, now).0;
    let (_, a) = step(f, Input::Finish, now);
    assert!(matches!(&a[..], [Action::CallFinish(_)]));
}

#[test]
fn t7_4_credential_before_finish_is_refused() {
    let now = Instant::now();
    let f = recognised(now, false);
    let (f, e) = f.handle(Input::Credential, now).expect_err("refused");
    assert!(matches!(e, Error::OutOfOrder { expected: "Finish", got: "Credential" }));
    let (f, _) = step(f, Input::Finish, now);
    let (_, e) = f.handle(Input::Credential, now).expect_err("finish still in flight");
    assert!(matches!(e, Error::OutOfOrder { expected: "Finish", got: "Credential" }));
}

#[test]
fn t7_5_no_credential_after_cancel_or_failure() {
    let now = Instant::now();
    let f = recognised(now, false);
    let (f, a) = step(f, Input::Stop, now);
    assert_eq!(a, vec![Action::StopVerify, Action::Ended(Outcome::Cancelled)]);
    let (_, e) = f.handle(Input::Credential, now).expect_err("ended");
    assert!(matches!(e, Error::OutOfOrder { expected: "Ended", got: "Credential" }));

    let f = recognised(now, false);
    let (f, _) = step(f, Input::Finish, now);
    let (f, a) = step(f, Input::FinishAnswered(Err(VendorError::new(ReturnCode::Fail, 1))), now);
    assert!(a.contains(&Action::StopVerify));
    assert!(matches!(f.outcome(), Some(Outcome::Failed { step: Step::Finish, err_code: 1 })));
    assert!(f.handle(Input::Credential, now).is_err());
}

#[test]
fn t7_6_ext_verify_must_come_before_finish() {
    let now = Instant::now();
    let f = recognised(now, true);
    let (f, e) = f.handle(Input::Finish, now).expect_err("needs ext verify");
    assert!(matches!(e, Error::OutOfOrder { expected: "ExtVerify", got: "Finish" }));
    let (f, e) = f.handle(Input::ExtVerify(Secret::new("")), now).expect_err("empty phone");
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    let (f, _) = step(f, Input::ExtVerify(Secret::new("1234")), now);
    let (_, a) = step(f, Input::Finish, now);
    assert!(matches!(&a[..], [Action::CallFinish(p)] if p.user_phone.as_ref().map(Secret::expose) == Some("1234")));
    // Without need_ext_verify, an ext verify is out of order.
    let (_, e) = recognised(now, false).handle(Input::ExtVerify(Secret::new("1")), now).expect_err("not needed");
    assert!(matches!(e, Error::OutOfOrder { expected: "Finish", got: "ExtVerify" }));
}

#[test]
fn t7_1_failures_keep_recognising_until_success() {
    let now = Instant::now();
    let mut f = step(flow(now), Input::StartAnswered(Ok(())), now).0;
    // A hint code, a negative code and a code with `need_restart_verify: false`.
    for (err_code, need_restart_verify) in [(271_377_935, None), (-3, Some(true)), (271_378_532, Some(false))] {
        let (g, a) = step(f, Input::AttemptFailed { err_code, need_restart_verify }, now);
        assert_eq!(a, vec![Action::AttemptFailed { err_code }]);
        f = g;
    }
    assert_eq!(f.recognition_failures(), 3);
    assert_eq!(f.expected(), Step::Recognition);
    let (f, _) = step(f, Input::Recognised { need_ext_verify: false, user: user() }, now);
    assert_eq!(f.expected(), Step::Finish);
}

#[test]
fn t7_1_face_not_recognised_and_restart_needing_codes_end_the_flow() {
    // VENDOR-API §9.3/§10: 271378526 fails directly; a code without
    // `need_restart_verify: false` needs a new verification.
    let now = Instant::now();
    for (err_code, need_restart_verify) in [(ERR_FACE_NOT_RECOGNISED, Some(false)), (271_378_527, None)] {
        let f = step(flow(now), Input::StartAnswered(Ok(())), now).0;
        let (f, a) = step(f, Input::AttemptFailed { err_code, need_restart_verify }, now);
        assert_eq!(a[0], Action::StopVerify);
        assert_eq!(f.outcome(), Some(&Outcome::Failed { step: Step::Recognition, err_code }));
        assert!(f.handle(Input::Finish, now).is_err(), "no finish after a final failure");
    }
}

#[test]
fn t7_10_credential_request_carries_user_id_integer_mode_and_string_fee() {
    let now = Instant::now();
    let f = recognised(now, true);
    let (f, _) = step(f, Input::ExtVerify(Secret::new("1234")), now);
    let (f, _) = step(f, Input::Finish, now);
    let (f, _) = step(f, Input::FinishAnswered(Ok(user())), now);
    let (_, a) = step(f, Input::Credential, now);
    let want = CredentialReq { user_id: "u1".into(), recog_mode: RecogMode::WithPhone, total_fee: "100".into() };
    assert_eq!(a, vec![Action::CallCredential(want)]);
    assert_eq!(RecogMode::WithPhone.as_int(), 1);
    // Without a phone: recog_mode 0.
    let f = recognised(now, false);
    let (f, _) = step(f, Input::Finish, now);
    let (f, _) = step(f, Input::FinishAnswered(Ok(user())), now);
    let (_, a) = step(f, Input::Credential, now);
    assert!(matches!(&a[..], [Action::CallCredential(p)] if p.recog_mode.as_int() == 0));
}

#[test]
fn t7_10_user_not_fs_normal_gets_no_credential() {
    let now = Instant::now();
    let frozen = UserInfo { status: "FS_FROZEN".into(), ..user() };
    // Finish answers a user who is not FS_NORMAL: the flow ends, no credential.
    let f = recognised(now, false);
    let (f, _) = step(f, Input::Finish, now);
    let (f, a) = step(f, Input::FinishAnswered(Ok(frozen.clone())), now);
    assert_eq!(a[0], Action::StopVerify);
    let want = Outcome::Failed { step: Step::Finish, err_code: ERR_USER_STATUS_ABNORMAL };
    assert_eq!(f.outcome(), Some(&want));
    let (_, e) = f.handle(Input::Credential, now).expect_err("no credential");
    assert!(matches!(e, Error::OutOfOrder { expected: "Ended", got: "Credential" }));
    // Recognised as such: the flow ends before finish.
    let f = step(flow(now), Input::StartAnswered(Ok(())), now).0;
    let (f, _) = step(f, Input::Recognised { need_ext_verify: false, user: frozen }, now);
    assert!(matches!(f.outcome(), Some(Outcome::Failed { err_code: ERR_USER_STATUS_ABNORMAL, .. })));
}

#[test]
fn t7_2_flow_times_out_after_its_deadline() {
    let now = Instant::now();
    let f = step(flow(now), Input::StartAnswered(Ok(())), now).0;
    let f = step(f, Input::FirstFrame, now).0;
    assert_eq!(f.poll_timeout(), Some(now + Duration::from_secs(40)));
    let (f, a) = step(f, Input::Tick, now + Duration::from_secs(39));
    assert!(a.is_empty() && !f.is_ended());
    let (f, a) = step(f, Input::Tick, now + Duration::from_secs(40));
    assert_eq!(a, vec![Action::StopVerify, Action::Ended(Outcome::TimedOut)]);
    assert_eq!(f.outcome().and_then(Outcome::code), Some(ErrorCode::FlowTimeout));
}

#[test]
fn t1_1_no_first_callback_marks_the_service_silent() {
    let now = Instant::now();
    let f = step(flow(now), Input::StartAnswered(Ok(())), now).0;
    assert_eq!(f.poll_timeout(), Some(now + Duration::from_secs(5)));
    let (f, a) = step(f, Input::Tick, now + Duration::from_secs(5));
    assert_eq!(a, vec![Action::ServiceSilent, Action::Ended(Outcome::Disconnected)]);
    assert_eq!(f.outcome().and_then(Outcome::code), Some(ErrorCode::ServiceDisconnected));
}

#[test]
fn t7_7_stop_at_any_time_then_no_further_call() {
    let now = Instant::now();
    for f in [flow(now), step(flow(now), Input::StartAnswered(Ok(())), now).0, recognised(now, true)] {
        let (f, a) = step(f, Input::Stop, now);
        assert_eq!(a[0], Action::StopVerify);
        for call in [Input::Finish, Input::Credential, Input::Stop, Input::ExtVerify(Secret::new("1"))] {
            let (_, e) = f.clone().handle(call, now).expect_err("no call after stop");
            assert!(matches!(e, Error::OutOfOrder { expected: "Ended", .. }));
        }
        // Late service answers are ignored.
        let (f, a) = step(f, Input::Recognised { need_ext_verify: false, user: user() }, now);
        assert!(a.is_empty() && f.outcome() == Some(&Outcome::Cancelled));
    }
}

#[test]
fn t1_2_disconnect_ends_a_flow_with_a_clear_error() {
    let now = Instant::now();
    let (f, a) = step(recognised(now, false), Input::Disconnected, now);
    assert_eq!(a, vec![Action::Ended(Outcome::Disconnected)]);
    assert_eq!(f.outcome().and_then(Outcome::code), Some(ErrorCode::ServiceDisconnected));
}

#[test]
fn t1_3_gate_mode_ends_on_recognition_without_payment_steps() {
    let now = Instant::now();
    let f = Flow::new(FlowId(2), 8, FlowMode::Gate, None, now, None, Duration::from_secs(5));
    let f = step(f, Input::StartAnswered(Ok(())), now).0;
    let f = step(f, Input::FirstFrame, now).0;
    assert_eq!(f.poll_timeout(), None, "a gate flow has no overall timeout");
    let (f, a) = step(f, Input::Recognised { need_ext_verify: false, user: user() }, now);
    assert!(matches!(a.last(), Some(Action::Ended(Outcome::Recognised))));
    assert!(f.is_ended());
}

#[test]
fn t1_3_gate_flow_never_waits_for_an_ext_verify_nobody_can_give() {
    let now = Instant::now();
    let f = Flow::new(FlowId(3), 9, FlowMode::Gate, None, now, None, Duration::from_secs(5));
    let f = step(f, Input::StartAnswered(Ok(())), now).0;
    let (f, a) = step(f, Input::Recognised { need_ext_verify: true, user: user() }, now);
    let failed = Outcome::Failed { step: Step::ExtVerify, err_code: ERR_SIMILAR_FACES };
    assert_eq!(a, vec![Action::Ended(failed.clone())]);
    assert_eq!(f.outcome(), Some(&failed));
}

#[test]
fn t7_6_the_flow_keeps_the_recognised_user_until_it_ends() {
    let now = Instant::now();
    let f = step(flow(now), Input::StartAnswered(Ok(())), now).0;
    assert_eq!(f.recognised(), None, "nothing before the callback");
    let f = recognised(now, true);
    assert_eq!(f.recognised().map(|(u, ext)| (u.user_id.as_str(), ext)), Some(("u1", true)));
    let (f, _) = step(f, Input::ExtVerify(Secret::new("1234")), now);
    let (f, _) = step(f, Input::Finish, now);
    let (f, _) = step(f, Input::FinishAnswered(Ok(user())), now);
    let (f, _) = step(f, Input::Credential, now);
    assert_eq!(f.recognised().map(|(u, ext)| (u.user_id.as_str(), ext)), Some(("u1", true)), "up to the credential");
    let (f, _) = step(f, Input::CredentialAnswered(Ok(Credential { face_token: Secret::new("tok") })), now);
    assert_eq!(f.recognised(), None, "an ended flow answers how it ended instead");
    assert!(!f.is_gate());
}
