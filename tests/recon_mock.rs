//! The reconciliation code against the mock FaceID server on 127.0.0.1: signatures,
//! errors and retries, the ledger and sweeper (R1–R4), the daily bill (R5–R8), late data,
//! bad input, and the cross-method check.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use facepay::clock::ManualClock;
use facepay::recon::bill::{self, pull_day, pull_state};
use facepay::recon::calendar::{format_date, parse_date};
use facepay::recon::check::ChargedCodes;
use facepay::recon::client::{Credentials, FaceIdClient, RetryPolicy};
use facepay::recon::ledger::TokenKey;
use facepay::recon::ledger::{self, SweepPolicy};
use facepay::recon::models::DetectAuthRequest;
use facepay::recon::scope::{Account, Scope};
use facepay::recon::{report, ReconError};
use facepay::sim::faceid::{self, beijing_ms, MockConfig, MockHandle};
use facepay::store::{Store, StorePath};

fn store() -> Store {
    facepay::recon::open_store(&StorePath::Memory).expect("store with both schemas")
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy { max_attempts: 5, initial: Duration::from_millis(5), max_delay: Duration::from_millis(20) }
}

fn client(m: &MockHandle) -> FaceIdClient {
    FaceIdClient::new(&m.endpoint(), Credentials::new(faceid::DEFAULT_SECRET_ID, faceid::DEFAULT_SECRET_KEY))
        .expect("client")
        .with_retry(fast_retry())
}

fn cfg(details: u64, page: u64) -> MockConfig {
    MockConfig { details_per_day: details, page_details: page, bill_rate_limit: 0, ..MockConfig::default() }
}

/// A day well inside R5's window.
fn past_day() -> NaiveDate {
    let now = facepay::clock::unix_ms(std::time::SystemTime::now());
    facepay::recon::calendar::latest_ready_day(now) - chrono::Duration::days(3)
}

fn acct() -> Account {
    Account::parse(faceid::DEFAULT_SECRET_ID).expect("account")
}

/// The primary account, all rules.
fn all() -> Scope {
    Scope::new(acct(), None)
}

/// A wall clock `behind_s` seconds behind the real one (a device with a skewed clock).
fn skewed_clock(behind_s: u64) -> ManualClock {
    let c = ManualClock::new(std::time::SystemTime::now());
    c.jump_wall(false, Duration::from_secs(behind_s));
    c
}

fn now_ms() -> i64 {
    facepay::clock::unix_ms(std::time::SystemTime::now())
}

async fn pull(s: &mut Store, m: &MockHandle, day: NaiveDate) -> Result<bill::PullOutcome, ReconError> {
    pull_day(s, client(m), &all(), day, now_ms(), &mut |_| {}).await
}

fn count(s: &Store, sql: &str) -> i64 {
    s.conn().query_row(sql, [], |r| r.get(0)).expect("count")
}

/// Every stored bill row of a store, in a stable order (for equality between pulls).
fn dump(s: &Store) -> Vec<String> {
    let mut q = s
        .conn()
        .prepare(
            "SELECT t.biz_token, d.seq_key, t.bill_date, t.rule_id, d.seq_kind, d.req_time_ms, d.sim, d.is_need_charge,
                d.charge_type, d.error_code
             FROM recon_day_details d JOIN recon_day_tokens t ON t.token_row = d.token_row
             ORDER BY t.biz_token, d.seq_key",
        )
        .expect("prepare");
    let rows = q
        .query_map([], |r| {
            let mut v = Vec::new();
            for i in 0..10 {
                v.push(format!("{:?}", r.get_ref(i)?));
            }
            Ok(v.join("|"))
        })
        .expect("query");
    rows.collect::<Result<Vec<_>, _>>().expect("rows")
}

#[tokio::test]
async fn tc3_mock_rejects_bad_and_expired_signatures_without_retry() {
    let m = faceid::start(cfg(10, 10), 0).await.expect("mock");
    let bad = FaceIdClient::new(&m.endpoint(), Credentials::new(faceid::DEFAULT_SECRET_ID, "wrong"))
        .expect("client")
        .with_retry(fast_retry());
    let e = bad.get_bill_page(&format_date(past_day()), None, 0).await.unwrap_err();
    assert_eq!(e.api_code(), Some("AuthFailure.SignatureFailure"));
    assert_eq!(m.state.requests(), 1, "AuthFailure is never retried");
    let skew = client(&m).with_clock(Arc::new(skewed_clock(600)));
    let e = skew.get_bill_page(&format_date(past_day()), None, 0).await.unwrap_err();
    assert_eq!(e.api_code(), Some("AuthFailure.SignatureExpire"));
    let unknown = FaceIdClient::new(&m.endpoint(), Credentials::new("AKIDother", "k")).expect("client");
    let e = unknown.get_bill_page(&format_date(past_day()), None, 0).await.unwrap_err();
    assert_eq!(e.api_code(), Some("AuthFailure.SecretIdNotFound"));
    let e =
        client(&m).detect_auth(&DetectAuthRequest { rule_id: "nope".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(e.api_code(), Some("InvalidParameterValue.RuleIdNotExist"));
}

#[tokio::test]
async fn client_retries_internal_error_and_rate_limits_then_succeeds() {
    let m = faceid::start(MockConfig { fail_every: 2, bill_rate_limit: 3, ..cfg(5_000, 500) }, 0).await.expect("mock");
    let mut s = store();
    let c = client(&m).with_retry(RetryPolicy {
        max_attempts: 8,
        initial: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
    });
    let out =
        pull_day(&mut s, c, &all(), past_day(), now_ms(), &mut |_| {}).await.expect("pull survives injected faults");
    assert_eq!(out.details, 5_000);
    assert!(m.state.requests() > out.pages as u64, "some requests were retried");
}

#[tokio::test]
async fn r5_mock_and_policy_refuse_a_day_before_six_beijing() {
    let m = faceid::start(cfg(10, 10), 0).await.expect("mock");
    let day = past_day();
    m.state.set_now_ms(beijing_ms(day.succ_opt().expect("next"), 5, 30));
    let e = client(&m).get_bill_page(&format_date(day), None, 0).await.unwrap_err();
    assert_eq!(e.api_code(), Some("InvalidParameter"), "the documented code of a day not ready");
    let e = facepay::recon::calendar::check_pull_window(day, m.state.now_ms()).unwrap_err();
    assert!(e.to_string().contains("06:00 Beijing"), "{e}");
}

#[tokio::test]
async fn r5_r6_multi_page_pull_stores_every_detail_once_and_repull_never_duplicates() {
    let m = faceid::start(cfg(20_000, 1_000), 0).await.expect("mock");
    let mut s = store();
    let day = past_day();
    let out = pull(&mut s, &m, day).await.expect("pull");
    assert!(out.pages >= 15, "multi-page: {}", out.pages);
    assert_eq!(out.details, 20_000);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM recon_day_details"), 20_000);
    let first = dump(&s);
    let again = pull(&mut s, &m, day).await.expect("re-pull");
    assert_eq!(again.generation, 2);
    assert_eq!(again.changes, bill::ChangeCounts::default(), "nothing changed upstream");
    assert_eq!(dump(&s), first, "a re-pull never duplicates");
    let rep = report::build(&s, &all(), day, &ChargedCodes::default()).expect("report");
    assert!(rep.complete && rep.r6_mismatches.is_empty());
    assert_eq!(rep.totals.details, 20_000);
    assert_eq!(rep.totals.charge_count_sum, rep.totals.need_charge);
    assert!(rep.totals.null_details > 0, "R8 null details are generated and counted");
    assert_eq!(rep.totals.charges_per_hour.iter().sum::<u64>(), rep.totals.need_charge);
}

#[tokio::test]
async fn r6_late_data_repull_reports_what_changed() {
    let m = faceid::start(cfg(20_000, 2_000), 0).await.expect("mock");
    let mut s = store();
    let day = past_day();
    pull(&mut s, &m, day).await.expect("pull");
    m.state.set_revision(1);
    let out = pull(&mut s, &m, day).await.expect("re-pull");
    let c = &out.changes;
    assert!(c.added > 0 && c.changed > 0 && c.removed > 0, "{c:?}");
    // The stored day equals a fresh pull of the revised bill.
    let mut fresh = store();
    pull(&mut fresh, &m, day).await.expect("fresh pull");
    assert_eq!(dump(&s), dump(&fresh));
    let rep = report::build(&s, &all(), day, &ChargedCodes::default()).expect("report");
    assert_eq!(rep.late_changes.len() as u64, c.added + c.changed + c.removed);
}

#[tokio::test]
async fn r6_anomalies_are_reported_as_three_way_mismatches() {
    let m = faceid::start(MockConfig { anomalies: true, ..cfg(20_000, 2_000) }, 0).await.expect("mock");
    let mut s = store();
    let day = past_day();
    pull(&mut s, &m, day).await.expect("pull");
    let rep = report::build(&s, &all(), day, &ChargedCodes::default()).expect("report");
    assert!(!rep.r6_mismatches.is_empty());
    for mm in &rep.r6_mismatches {
        let c = mm.counts;
        assert!(c.charge_count != Some(c.need_charge) || c.need_charge != c.code_charged);
    }
    // A code list that calls nothing charged flags every token that has charges.
    let none = report::build(&s, &all(), day, &ChargedCodes::parse("99999").expect("codes")).expect("report");
    assert!(none.r6_mismatches.len() > rep.r6_mismatches.len());
}

#[tokio::test]
async fn r7_token_crossing_midnight_is_on_both_days_with_its_own_charges() {
    let m = faceid::start(cfg(3_000, 1_000), 0).await.expect("mock");
    let mut s = store();
    let d1 = past_day();
    let d2 = d1.succ_opt().expect("next day");
    pull(&mut s, &m, d1).await.expect("pull d1");
    pull(&mut s, &m, d2).await.expect("pull d2");
    let both = count(
        &s,
        "SELECT COUNT(*) FROM recon_day_tokens a JOIN recon_day_tokens b ON a.biz_token = b.biz_token AND a.bill_date < b.bill_date",
    );
    assert!(both >= 1, "a token is billed on two days");
    for d in [d1, d2] {
        let rep = report::build(&s, &all(), d, &ChargedCodes::default()).expect("report");
        assert_eq!(rep.totals.other_day_details, 0, "every charge is on the day of its ReqTime");
    }
}

#[tokio::test]
async fn bad_input_cursor_loop_malformed_page_and_empty_day() {
    let day = past_day();
    // A cursor loop stops the pull and the day stays incomplete.
    let looping = faceid::start(MockConfig { cursor_loop: true, ..cfg(5_000, 500) }, 0).await.expect("mock");
    let mut s = store();
    let e = pull(&mut s, &looping, day).await.unwrap_err();
    assert!(matches!(e, ReconError::CursorLoop { .. }), "{e}");
    assert!(!pull_state(&s, &all(), &format_date(day)).expect("state").expect("row").complete);
    let e = report::build(&s, &all(), day, &ChargedCodes::default()).unwrap_err();
    assert!(e.to_string().contains("incomplete"), "{e}");
    // A malformed page is an error; the resumed pull (same seed, healthy server) completes
    // and equals an uninterrupted one.
    let broken = faceid::start(MockConfig { malformed_every: 3, ..cfg(5_000, 500) }, 0).await.expect("mock");
    let healthy = faceid::start(cfg(5_000, 500), 0).await.expect("mock");
    let mut s = store();
    let e = pull(&mut s, &broken, day).await.unwrap_err();
    assert!(matches!(e, ReconError::Protocol(_)), "{e}");
    let st = pull_state(&s, &all(), &format_date(day)).expect("state").expect("row");
    assert!(!st.complete && st.pages == 2);
    let out = pull(&mut s, &healthy, day).await.expect("resume");
    assert!(out.resumed);
    let mut clean = store();
    pull(&mut clean, &healthy, day).await.expect("clean");
    assert_eq!(dump(&s), dump(&clean));
    // An empty day is complete and empty.
    let empty = faceid::start(cfg(0, 500), 0).await.expect("mock");
    let mut s = store();
    let out = pull(&mut s, &empty, day).await.expect("empty day");
    assert_eq!((out.pages, out.details), (1, 0));
    let rep = report::build(&s, &all(), day, &ChargedCodes::default()).expect("report");
    assert_eq!(rep.totals.details, 0);
    // Bad dates never reach the wire.
    assert!(parse_date("2026-13-01").is_err());
    let e = client(&empty).get_bill_page("01/07/2026", None, 0).await.unwrap_err();
    assert_eq!(e.api_code(), Some("InvalidParameter"), "the documented code of a bad Date");
    let e = client(&looping).get_bill_page(&format_date(day), None, 12345).await.unwrap_err();
    assert_eq!(e.api_code(), Some("InvalidParameter"), "the documented code of a bad Cursor");
}

#[tokio::test]
async fn r1_r2_r3_r4_ledger_against_the_mock_and_cross_check_with_the_bill() {
    let m = faceid::start(cfg(0, 500), 0).await.expect("mock");
    let day = past_day();
    let c = client(&m);
    let mut s = store();
    let a = acct();
    fn key<'a>(a: &'a Account, tok: &'a str) -> TokenKey<'a> {
        TokenKey { account: a, rule_id: "1", biz_token: tok }
    }
    m.state.set_now_ms(beijing_ms(day, 10, 0));
    let mut tokens: Vec<String> = Vec::new();
    for _ in 0..5 {
        let r = c.detect_auth(&DetectAuthRequest { rule_id: "1".into(), ..Default::default() }).await.expect("issue");
        let tok = r.biz_token.expect("token");
        // R1: stored the moment it is issued.
        let key = TokenKey { account: &a, rule_id: "1", biz_token: &tok };
        assert!(ledger::record_issued(&s, key, None, m.state.now_ms()).expect("record"));
        tokens.push(tok);
    }
    let p = SweepPolicy::default();
    // At +1 h the redirect callback fetches token 2 (it retries later): not final yet.
    m.state.advance_ms(3_600_000);
    let text = c.get_detect_info(&tokens[2], "1").await.expect("fetch").text;
    let row =
        ledger::store_detect_info(&mut s, &p, key(&a, &tokens[2]), m.state.now_ms(), text.as_ref()).expect("store");
    assert!(!row.is_final && row.charges == 0);
    let rep = ledger::sweep(&mut s, &c, &p, &a, m.state.now_ms()).await.expect("sweep");
    assert_eq!((rep.fetched, rep.waiting), (0, 5), "nothing is due before issue + 2 h");
    // R2/R3: from +2 h the sweeper fetches every open token and they become final.
    m.state.advance_ms(3_600_000 + 60_000);
    let rep = ledger::sweep(&mut s, &c, &p, &a, m.state.now_ms()).await.expect("sweep");
    assert_eq!((rep.fetched, rep.became_final), (5, 5));
    let row = ledger::token(&s, key(&a, &tokens[2])).expect("read").expect("row");
    assert_eq!((row.charges, row.err_code), (1, Some(2016)), "the retry after the early fetch is caught");
    // R4: charges = IsNeedCharge true only (token 4 has a null detail and one charged).
    assert_eq!(ledger::charges(&s, key(&a, &tokens[4])).expect("charges"), 1);
    assert_eq!(ledger::charges(&s, key(&a, &tokens[1])).expect("charges"), 2);
    // The bill of the day agrees with the ledger, per (BizToken, Seq).
    m.state.set_now_ms(beijing_ms(day.succ_opt().expect("next"), 7, 0));
    pull(&mut s, &m, day).await.expect("pull");
    let r = report::build(&s, &all(), day, &ChargedCodes::default()).expect("report");
    assert_eq!(r.cross.ledger_tokens, 4, "token 3 was abandoned: no comparison");
    assert_eq!(r.cross.mismatches(), 0, "{:?}", r.cross);
    // A detail the ledger lost shows up as bill-only.
    s.conn()
        .execute("DELETE FROM recon_ledger_details WHERE biz_token = ?1 AND idx = 0", [&tokens[1]])
        .expect("delete");
    let r = report::build(&s, &all(), day, &ChargedCodes::default()).expect("report");
    assert_eq!(r.cross.bill_only_details.len(), 1);
    assert_eq!(r.cross.charge_count_mismatches.len(), 1);
    assert!(report::to_html(&r).contains("<svg"));
    assert!(report::to_csv(&r).contains("detail_bill_only"));
}

#[tokio::test]
async fn mock_rate_limits_detect_auth_and_the_client_backs_off() {
    let m = faceid::start(MockConfig { api_rate_limit: 2, ..cfg(0, 10) }, 0).await.expect("mock");
    let once = client(&m).with_retry(RetryPolicy { max_attempts: 1, ..fast_retry() });
    let mut limited = 0;
    // Ten calls in a burst span at most two one-second windows: at most four pass.
    for _ in 0..10 {
        if let Err(e) = once.detect_auth(&DetectAuthRequest { rule_id: "1".into(), ..Default::default() }).await {
            assert_eq!(e.api_code(), Some("RequestLimitExceeded"));
            limited += 1;
        }
    }
    assert!(limited >= 1, "a burst over the limit is refused");
    let patient = client(&m).with_retry(RetryPolicy {
        max_attempts: 8,
        initial: Duration::from_millis(100),
        max_delay: Duration::from_millis(500),
    });
    for _ in 0..4 {
        patient.detect_auth(&DetectAuthRequest { rule_id: "1".into(), ..Default::default() }).await.expect("backs off");
    }
}

#[tokio::test]
async fn r2_token_past_72h_is_expired_at_the_mock_and_marked_lost_with_an_alert() {
    let m = faceid::start(cfg(0, 10), 0).await.expect("mock");
    let c = client(&m);
    let mut s = store();
    let tok = c
        .detect_auth(&DetectAuthRequest { rule_id: "1".into(), ..Default::default() })
        .await
        .expect("issue")
        .biz_token
        .expect("token");
    let a = acct();
    let key = TokenKey { account: &a, rule_id: "1", biz_token: &tok };
    ledger::record_issued(&s, key, None, m.state.now_ms()).expect("record");
    m.state.advance_ms(73 * 3_600_000);
    let e = c.get_detect_info(&tok, "1").await.unwrap_err();
    assert_eq!(e.api_code(), Some("InvalidParameterValue.BizTokenExpired"));
    // A sweeper with a longer window than FaceID's still asks, and learns the token is lost.
    let p = SweepPolicy { window_ms: 100 * 3_600_000, ..SweepPolicy::default() };
    let rep = ledger::sweep(&mut s, &c, &p, &a, m.state.now_ms()).await.expect("sweep");
    assert_eq!(rep.failed, 1);
    assert!(rep.alerts.iter().any(|a| a.lost && a.biz_token == tok));
    assert!(ledger::token(&s, key).expect("read").expect("row").lost);
    assert!(ledger::open_tokens(&s, &a).expect("open").is_empty(), "a lost token is not swept again");
}
