//! R9 and the credentials around a real account, against the mock FaceID server: pulls of
//! one day for all rules, for one rule and for two accounts in one store never mix;
//! temporary credentials (X-TC-Token) and their refusals; the documented retry codes
//! (also on 5xx bodies); DetectAuth's identity, Extra and no blind retry.

use std::time::Duration;

use chrono::NaiveDate;
use facepay::recon::bill::{pull_day, PullOutcome};
use facepay::recon::check::ChargedCodes;
use facepay::recon::client::{Credentials, FaceIdClient, RetryPolicy};
use facepay::recon::ledger::{self, SweepPolicy, TokenKey};
use facepay::recon::models::{DetectAuthRequest, Personal};
use facepay::recon::scope::{Account, Scope};
use facepay::recon::{report, ReconError};
use facepay::sim::faceid::{self, beijing_ms, MockAccount, MockConfig, MockHandle, TempCredential};
use facepay::store::{Store, StorePath};

fn fast() -> RetryPolicy {
    RetryPolicy { max_attempts: 5, initial: Duration::from_millis(5), max_delay: Duration::from_millis(20) }
}

fn client_with(m: &MockHandle, creds: Credentials) -> FaceIdClient {
    FaceIdClient::new(&m.endpoint(), creds).expect("client").with_retry(fast())
}

fn primary(m: &MockHandle) -> FaceIdClient {
    client_with(m, Credentials::new(faceid::DEFAULT_SECRET_ID, faceid::DEFAULT_SECRET_KEY))
}

fn cfg(details: u64, page: u64) -> MockConfig {
    MockConfig { details_per_day: details, page_details: page, bill_rate_limit: 0, ..MockConfig::default() }
}

fn past_day() -> NaiveDate {
    let now = facepay::clock::unix_ms(std::time::SystemTime::now());
    facepay::recon::calendar::latest_ready_day(now) - chrono::Duration::days(3)
}

fn now_ms() -> i64 {
    facepay::clock::unix_ms(std::time::SystemTime::now())
}

fn acct(n: &str) -> Account {
    Account::parse(n).expect("account")
}

async fn pull(s: &mut Store, c: &FaceIdClient, scope: &Scope, day: NaiveDate) -> Result<PullOutcome, ReconError> {
    pull_day(s, c.clone(), scope, day, now_ms(), &mut |_| {}).await
}

fn store() -> Store {
    facepay::recon::open_store(&StorePath::Memory).expect("store")
}

fn totals(s: &Store, scope: &Scope, day: NaiveDate) -> (u64, u64, u64, u64) {
    let r = report::build(s, scope, day, &ChargedCodes::default()).expect("report");
    assert_eq!(r.mismatch_count(), 0, "{:?}", r.r6_mismatches);
    (r.totals.tokens, r.totals.details, r.totals.charge_count_sum, r.totals.need_charge)
}

#[tokio::test]
async fn r9_all_rules_one_rule_and_two_accounts_in_one_store_never_mix() {
    let b = MockAccount { secret_id: "AKIDsecondaccount".into(), secret_key: "second-key".into(), seed: 99 };
    let m = faceid::start(MockConfig { accounts: vec![b.clone()], ..cfg(6_000, 700) }, 0).await.expect("mock");
    let day = past_day();
    let (a_all, a_one) = (Scope::new(acct("acct-a"), None), Scope::new(acct("acct-a"), Some("1")));
    let b_all = Scope::new(acct("acct-b"), None);
    let cb = client_with(&m, Credentials::new(&b.secret_id, &b.secret_key));

    // Each pull alone, in a store of its own: the reference figures.
    let mut alone = Vec::new();
    for (scope, c) in [(&a_all, primary(&m)), (&a_one, primary(&m)), (&b_all, cb.clone())] {
        let mut s = store();
        pull(&mut s, &c, scope, day).await.expect("pull alone");
        alone.push(totals(&s, scope, day));
    }
    assert!(alone[1].1 < alone[0].1, "rule 1 is a part of all rules: {alone:?}");
    assert_ne!(alone[2], alone[0], "the other account has a bill of its own");

    // All three into one store, interleaved, then re-pulled: each scope keeps its own figures.
    let mut s = store();
    pull(&mut s, &primary(&m), &a_all, day).await.expect("a all");
    pull(&mut s, &primary(&m), &a_one, day).await.expect("a rule 1");
    pull(&mut s, &cb, &b_all, day).await.expect("b all");
    let again = pull(&mut s, &primary(&m), &a_one, day).await.expect("a rule 1 again");
    assert_eq!(again.changes, Default::default(), "a re-pull of one scope sees no change from the others");
    for (scope, want) in [(&a_all, alone[0]), (&a_one, alone[1]), (&b_all, alone[2])] {
        assert_eq!(totals(&s, scope, day), want, "{}", scope.label());
    }
    // The rule-1 scope holds rule-1 tokens only.
    let other_rules: i64 = s
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM recon_day_tokens t JOIN recon_scopes sc ON sc.scope_id = t.scope_id
             WHERE sc.rule_key = '1' AND t.rule_id <> '1'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(other_rules, 0);
    // A report of a scope never pulled is refused, not borrowed from another.
    let e = report::build(&s, &Scope::new(acct("acct-b"), Some("1")), day, &ChargedCodes::default()).unwrap_err();
    assert!(e.to_string().contains("no bill pulled"), "{e}");
}

#[tokio::test]
async fn r9_ledger_tokens_of_another_account_are_unknown_at_the_mock_and_never_swept_by_it() {
    let b = MockAccount { secret_id: "AKIDsecondaccount".into(), secret_key: "second-key".into(), seed: 5 };
    let m = faceid::start(MockConfig { accounts: vec![b.clone()], ..cfg(0, 10) }, 0).await.expect("mock");
    let (ca, cb) = (primary(&m), client_with(&m, Credentials::new(&b.secret_id, &b.secret_key)));
    let tok = ca.detect_auth(&DetectAuthRequest { rule_id: "1".into(), ..Default::default() }).await.expect("issue");
    let tok = tok.biz_token.expect("token");
    let e = cb.get_detect_info(&tok, "1").await.unwrap_err();
    assert_eq!(e.api_code(), Some("InvalidParameter"), "another account's token is unknown to it");
    let mut s = store();
    let (a, bb) = (acct("a"), acct("b"));
    ledger::record_issued(&s, TokenKey { account: &a, rule_id: "1", biz_token: &tok }, None, m.state.now_ms())
        .expect("record");
    m.state.advance_ms(3 * 3_600_000);
    let rep = ledger::sweep(&mut s, &cb, &SweepPolicy::default(), &bb, m.state.now_ms()).await.expect("sweep b");
    assert_eq!(rep.open, 0, "account b's sweep does not see account a's token");
    let rep = ledger::sweep(&mut s, &ca, &SweepPolicy::default(), &a, m.state.now_ms()).await.expect("sweep a");
    assert_eq!((rep.open, rep.fetched, rep.failed), (1, 1, 0));
}

#[tokio::test]
async fn temporary_credentials_send_x_tc_token_and_bad_or_expired_tokens_fail_clearly_without_retry() {
    let start = now_ms();
    let temp = |id: &str, token: &str, expires_ms: i64| {
        (0, TempCredential { secret_id: id.into(), secret_key: "tmp-key".into(), token: token.into(), expires_ms })
    };
    let m = faceid::start(
        MockConfig {
            temp_credentials: vec![
                temp("AKIDtmp1", "session-1", start + 3_600_000),
                temp("AKIDtmp2", "session-2", start - 1),
            ],
            ..cfg(300, 100)
        },
        0,
    )
    .await
    .expect("mock");
    let day = past_day();
    let good = client_with(&m, Credentials::new("AKIDtmp1", "tmp-key").with_token("session-1"));
    let mut s = store();
    let out = pull(&mut s, &good, &Scope::new(acct("acct-a"), None), day).await.expect("temporary credentials pull");
    assert_eq!(out.details, 300);
    // The same credentials' bill is the primary account's (they belong to it).
    let mut s2 = store();
    pull(&mut s2, &primary(&m), &Scope::new(acct("acct-a"), None), day).await.expect("permanent pull");
    let sc = Scope::new(acct("acct-a"), None);
    assert_eq!(totals(&s, &sc, day), totals(&s2, &sc, day));

    for (creds, what) in [
        (Credentials::new("AKIDtmp1", "tmp-key"), "no token"),
        (Credentials::new("AKIDtmp1", "tmp-key").with_token("session-x"), "wrong token"),
        (Credentials::new("AKIDtmp2", "tmp-key").with_token("session-2"), "expired token"),
        (
            Credentials::new(faceid::DEFAULT_SECRET_ID, faceid::DEFAULT_SECRET_KEY).with_token("session-1"),
            "token with permanent credentials",
        ),
    ] {
        let before = m.state.requests();
        let e = client_with(&m, creds)
            .get_bill_page(&facepay::recon::calendar::format_date(day), None, 0)
            .await
            .unwrap_err();
        assert_eq!(e.api_code(), Some("AuthFailure.TokenFailure"), "{what}");
        assert_eq!(m.state.requests(), before + 1, "{what}: never retried");
        let msg = e.to_string();
        assert!(msg.contains("TENCENTCLOUD_TOKEN") && msg.contains("not retried"), "{what}: a clear message: {msg}");
        assert!(!msg.contains("session-") && !msg.contains("tmp-key"), "no secret in the message: {msg}");
    }
}

#[tokio::test]
async fn the_documented_retry_codes_are_retried_also_from_a_5xx_body_and_final_codes_are_not() {
    let day = past_day();
    for (code, status) in [
        ("FailedOperation.UnKnown", 200),
        ("ServiceUnavailable", 503),
        ("ResourceUnavailable", 200),
        ("InternalError", 502),
    ] {
        let m = faceid::start(
            MockConfig { fail_every: 2, fail_code: code.into(), fail_status: status, ..cfg(3_000, 500) },
            0,
        )
        .await
        .expect("mock");
        let mut s = store();
        let out = pull(&mut s, &primary(&m), &Scope::new(acct("a"), None), day).await.expect(code);
        assert_eq!(out.details, 3_000, "{code}");
        assert!(m.state.requests() > out.pages as u64, "{code}: retried");
    }
    // A 5xx carrying a final code keeps it and is not retried.
    let m = faceid::start(
        MockConfig {
            fail_every: 1,
            fail_code: "UnauthorizedOperation.Arrears".into(),
            fail_status: 500,
            ..cfg(10, 10)
        },
        0,
    )
    .await
    .expect("mock");
    let e = primary(&m).get_bill_page(&facepay::recon::calendar::format_date(day), None, 0).await.unwrap_err();
    assert_eq!(e.api_code(), Some("UnauthorizedOperation.Arrears"), "the 5xx body's code is kept");
    assert_eq!(m.state.requests(), 1);
}

#[tokio::test]
async fn r1_detect_auth_is_not_retried_blindly_and_sends_identity_and_extra() {
    // An unknown outcome: reported, one request only (a retry could issue a second token).
    let m = faceid::start(MockConfig { fail_every: 1, ..cfg(0, 10) }, 0).await.expect("mock");
    let e =
        primary(&m).detect_auth(&DetectAuthRequest { rule_id: "1".into(), ..Default::default() }).await.unwrap_err();
    assert!(matches!(e, ReconError::Uncertain { action: "DetectAuth", .. }), "{e}");
    assert!(e.to_string().contains("check before calling it again"), "{e}");
    assert_eq!(m.state.requests(), 1);
    // A rate-limit refusal was certainly not carried out: retried (see recon_mock).

    let m = faceid::start(MockConfig { identity_rules: vec!["2".into()], ..cfg(0, 10) }, 0).await.expect("mock");
    let c = primary(&m);
    let day = past_day();
    m.state.set_now_ms(beijing_ms(day, 11, 0));
    let e = c.detect_auth(&DetectAuthRequest { rule_id: "2".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(e.api_code(), Some("InvalidParameter"), "this RuleId needs IdCard and Name");
    let req = DetectAuthRequest {
        rule_id: "2".into(),
        id_card: Some(Personal::new("110101199001011234")),
        name: Some(Personal::new("张三")),
        extra: Some("canteen-order-778".into()),
        ..Default::default()
    };
    let tok = c.detect_auth(&req).await.expect("issued with identity").biz_token.expect("token");
    let mut s = store();
    let a = acct("acct-a");
    let key = TokenKey { account: &a, rule_id: "2", biz_token: &tok };
    // Recorded without Extra: the sweep reads it back from Text.Extra.
    ledger::record_issued(&s, key, None, m.state.now_ms()).expect("record");
    m.state.advance_ms(3 * 3_600_000);
    ledger::sweep(&mut s, &c, &SweepPolicy::default(), &a, m.state.now_ms()).await.expect("sweep");
    let row = ledger::token(&s, key).expect("read").expect("row");
    assert_eq!(row.extra.as_deref(), Some("canteen-order-778"), "Text.Extra is kept");
    let stored: String = s
        .conn()
        .query_row("SELECT group_concat(quote(t.extra)) FROM recon_ledger_tokens t", [], |r| r.get(0))
        .expect("dump");
    assert!(!stored.contains("1990") && !stored.contains("张"), "the identity is never stored");
    // The report of the day joins the token to the order.
    m.state.set_now_ms(beijing_ms(day.succ_opt().expect("next"), 7, 0));
    let scope = Scope::new(a.clone(), Some("2"));
    pull_day(&mut s, c.clone(), &scope, day, m.state.now_ms(), &mut |_| {}).await.expect("pull");
    let r = report::build(&s, &scope, day, &ChargedCodes::default()).expect("report");
    assert!(r.ledger_orders.iter().any(|o| o.biz_token == tok && o.extra.as_deref() == Some("canteen-order-778")));
    assert!(report::to_html(&r).contains("canteen-order-778"));
    assert!(report::to_json(&r).contains("canteen-order-778"));
    assert!(r.charged_codes_note.contains("FaceID Plus"), "the report names the product of its code list");
}
