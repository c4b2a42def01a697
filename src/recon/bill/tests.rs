//! Unit tests of the bill pull with a scripted page source (no network).

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::recon::calendar::parse_date;
use crate::recon::check::{check_day, ChargedCodes};
use crate::recon::models::ChargeDetail;
use crate::recon::scope::{Account, Scope};
use crate::store::StorePath;

#[derive(Clone)]
struct Script(Arc<HashMap<u64, ReconResult<BillPage>>>);

impl BillSource for Script {
    async fn page(&self, _date: &str, _rule: Option<&str>, cursor: u64) -> ReconResult<BillPage> {
        match self.0.get(&cursor) {
            Some(Ok(p)) => Ok(p.clone()),
            Some(Err(e)) => Err(ReconError::Protocol(e.to_string())),
            None => Err(ReconError::api("InvalidParameter")),
        }
    }
}

fn store() -> Store {
    crate::recon::open_store(&StorePath::Memory).expect("store")
}

fn scope() -> Scope {
    Scope::new(Account::parse("acct").expect("account"), None)
}

fn state(s: &Store) -> PullState {
    pull_state(s, &scope(), DAY).expect("state").expect("row")
}

const DAY: &str = "2026-07-01";
/// 2026-07-01 12:00 Beijing.
const NOON: i64 = 1_782_878_400_000;

fn charged(seq: &str, code: &str) -> ChargeDetail {
    ChargeDetail {
        req_time: Some(NOON.to_string()),
        seq: Some(seq.into()),
        is_need_charge: Some(true),
        error_code: Some(code.into()),
        ..ChargeDetail::default()
    }
}

fn token(id: &str, cc: Option<u64>, details: Vec<ChargeDetail>) -> WeChatBillDetail {
    WeChatBillDetail {
        biz_token: Some(id.into()),
        charge_count: cc,
        charge_details: Some(details),
        rule_id: Some("1".into()),
    }
}

fn page(has_next: bool, next: u64, details: Vec<WeChatBillDetail>) -> ReconResult<BillPage> {
    Ok(BillPage { has_next, next_cursor: next, details })
}

async fn run(s: &mut Store, pages: Vec<(u64, ReconResult<BillPage>)>) -> ReconResult<PullOutcome> {
    let src = Script(Arc::new(pages.into_iter().collect()));
    pull_day(s, src, &scope(), parse_date(DAY).expect("date"), NOON, &mut |_| {}).await
}

#[tokio::test]
async fn r8_null_details_are_stored_and_never_charged() {
    let mut s = store();
    let null = ChargeDetail::default();
    let with_code_but_null_flag = ChargeDetail { error_code: None, ..ChargeDetail::default() };
    let out = run(
        &mut s,
        vec![(0, page(false, 0, vec![token("t", Some(1), vec![charged("a", "0"), null, with_code_but_null_flag])]))],
    )
    .await
    .expect("pull");
    assert_eq!(out.details, 3);
    let day = check_day(&s, &state(&s), parse_date(DAY).expect("date"), &ChargedCodes::default()).expect("check");
    assert_eq!((day.totals.need_charge, day.totals.null_details, day.totals.charge_count_sum), (1, 2, 1));
    assert!(day.r6_mismatches.is_empty());
    assert_eq!(day.totals.charges_per_hour[12], 1, "R7: charged at noon Beijing");
}

#[tokio::test]
async fn r6_same_detail_twice_in_one_pull_is_kept_once() {
    let mut s = store();
    let out = run(
        &mut s,
        vec![
            (0, page(true, 77, vec![token("t", Some(1), vec![charged("a", "0")])])),
            (77, page(false, 0, vec![token("t", Some(1), vec![charged("a", "0")])])),
        ],
    )
    .await
    .expect("pull");
    assert_eq!(out.duplicates, 1);
    let n: i64 = s.conn().query_row("SELECT COUNT(*) FROM recon_day_details", [], |r| r.get(0)).expect("n");
    assert_eq!(n, 1);
    let n: i64 = s.conn().query_row("SELECT COUNT(*) FROM recon_day_tokens", [], |r| r.get(0)).expect("n");
    assert_eq!(n, 1, "the token seen twice is one row");
}

#[tokio::test]
async fn r5_has_next_without_a_new_cursor_or_a_null_token_leaves_the_day_incomplete() {
    let mut s = store();
    // Page 2 points back at page 1's cursor: a loop.
    let e = run(
        &mut s,
        vec![(0, page(true, 5, vec![token("t", Some(1), vec![charged("a", "0")])])), (5, page(true, 0, vec![]))],
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ReconError::CursorLoop { cursor: 0, .. }), "{e}");
    let st = state(&s);
    assert!(!st.complete);
    assert_eq!(st.pages, 1, "the good page stays committed");
    // A null BizToken is a clear error and commits nothing of that page.
    let mut s = store();
    let bad = WeChatBillDetail { biz_token: None, ..WeChatBillDetail::default() };
    let e = run(&mut s, vec![(0, page(false, 0, vec![bad]))]).await.unwrap_err();
    assert!(e.to_string().contains("BizToken is null"), "{e}");
    assert!(!state(&s).complete);
}

#[test]
fn r5_missing_has_next_page_or_next_cursor_is_an_error_and_null_details_an_empty_page() {
    let parse = |j: &str| page_from_response(serde_json::from_str(j).expect("json"));
    assert!(parse(r#"{"NextCursor":1,"WeChatBillDetails":[]}"#).unwrap_err().to_string().contains("HasNextPage"));
    assert!(parse(r#"{"HasNextPage":true,"NextCursor":null}"#).unwrap_err().to_string().contains("NextCursor"));
    let p = parse(r#"{"HasNextPage":false,"NextCursor":null,"WeChatBillDetails":null}"#).expect("last page");
    assert!(!p.has_next && p.details.is_empty());
}

#[tokio::test]
async fn r6_seq_is_stored_once_and_read_back_as_it_came() {
    let mut s = store();
    let with_seq = |seq: Option<&str>| ChargeDetail { seq: seq.map(str::to_string), ..charged("x", "0") };
    let details = vec![with_seq(Some("s-1")), with_seq(None), with_seq(Some(""))];
    run(&mut s, vec![(0, page(false, 0, vec![token("t", Some(3), details)]))]).await.expect("pull");
    let mut q = s
        .conn()
        .prepare(&format!("SELECT seq_key, {} FROM recon_day_details d ORDER BY seq_key", seq_sql("d")))
        .expect("prepare");
    let rows: Vec<(String, Option<String>)> =
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").collect::<Result<_, _>>().expect("rows");
    assert_eq!(
        rows,
        vec![("s-1".into(), Some("s-1".into())), ("~null1".into(), None), ("~null2".into(), Some(String::new()))]
    );
}
