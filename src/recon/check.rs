//! The checks of a bill day. R6's three-way check per token (`ChargeCount` = details with
//! `IsNeedCharge == true` = details whose `ErrorCode` is a charged code, the code list
//! configurable and named with the FaceID product it belongs to), the day's totals with R7
//! (charges counted on the Beijing day and hour of their `ReqTime`) and R8 (null details are
//! free), and the cross-method reconciliation of the ledger (method 1) against the bill
//! (method 2) per (BizToken, Seq), both sides of one account and rule (R9). The comparison
//! functions are pure; the loaders stream the day token by token, so memory does not grow
//! with the size of the day (long lists are cut at [`MAX_LISTED`], their counts stay exact).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rusqlite::params;
use serde::Serialize;

use super::bill::PullState;
use super::calendar::{day_start_ms, DAY_MS};
use super::error::{ReconError, ReconResult};
use super::ledger::HOUR_MS;
use super::scope::Scope;
use crate::store::Store;

/// Mismatch lists keep at most this many entries; their counts are always exact.
pub const MAX_LISTED: usize = 10_000;

/// The FaceID product whose billing the charged-code list follows (API-NOTES §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// FaceID Plus (慧眼 Plus): 0, 1002, 2006, 2016.
    Plus,
    /// 意愿核身 (intention verification): 1002 is free there.
    Intention,
    /// E证通 (eID): 1002 is free there.
    Eid,
    /// A list given with `--charged-codes`.
    Custom,
}

impl Product {
    pub fn parse(s: &str) -> ReconResult<Self> {
        match s {
            "plus" => Ok(Product::Plus),
            "intention" => Ok(Product::Intention),
            "eid" => Ok(Product::Eid),
            _ => Err(ReconError::invalid_arg("product", format!("`{s}` is not one of plus, intention, eid"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Product::Plus => "FaceID Plus (慧眼 Plus)",
            Product::Intention => "意愿核身 (intention verification)",
            Product::Eid => "E证通 (eID)",
            Product::Custom => "custom list (--charged-codes)",
        }
    }
}

/// The `ErrorCode`s that are charged (R6 cross-check), with the product they belong to.
/// `IsNeedCharge` stays authoritative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargedCodes {
    codes: BTreeSet<String>,
    product: Product,
}

impl Default for ChargedCodes {
    /// FaceID Plus's list (WeChat mini program / H5 channel, API-NOTES §3): 0, 1002, 2006, 2016.
    fn default() -> Self {
        ChargedCodes::preset(Product::Plus)
    }
}

impl ChargedCodes {
    /// The published list of a product. Only FaceID Plus's list is published in full; for
    /// 意愿核身 and E证通 what is known is that 1002 is free, so their preset is Plus's without
    /// it — check it against the product's own billing page and use `--charged-codes` if it differs.
    pub fn preset(product: Product) -> Self {
        let codes: &[&str] = match product {
            Product::Plus | Product::Custom => &["0", "1002", "2006", "2016"],
            Product::Intention | Product::Eid => &["0", "2006", "2016"],
        };
        ChargedCodes { codes: codes.iter().map(|c| c.to_string()).collect(), product }
    }

    /// Parses `0,1002,2006,2016` (a custom list).
    pub fn parse(s: &str) -> ReconResult<Self> {
        let mut set = BTreeSet::new();
        for c in s.split(',').map(str::trim) {
            if c.is_empty() || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
                return Err(ReconError::invalid_arg("charged-codes", format!("`{c}` is not an error code")));
            }
            set.insert(c.to_string());
        }
        Ok(ChargedCodes { codes: set, product: Product::Custom })
    }
    pub fn contains(&self, code: Option<&str>) -> bool {
        code.is_some_and(|c| self.codes.contains(c.trim()))
    }
    pub fn list(&self) -> Vec<String> {
        self.codes.iter().cloned().collect()
    }
    pub fn product(&self) -> Product {
        self.product
    }
    /// "0, 1002, 2006, 2016 (FaceID Plus (慧眼 Plus))": what a report states it used.
    pub fn describe(&self) -> String {
        format!("{} — {}", self.list().join(", "), self.product.name())
    }
}

/// The three counts of one token on one bill day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenCounts {
    pub charge_count: Option<u64>,
    pub details: u64,
    pub need_charge: u64,
    pub code_charged: u64,
}

/// A token whose three counts disagree (R6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct R6Mismatch {
    pub biz_token: String,
    #[serde(flatten)]
    pub counts: TokenCounts,
}

/// R6, pure: the three counts must be equal (a null `ChargeCount` counts as 0).
pub fn r6_agrees(c: &TokenCounts) -> bool {
    let cc = c.charge_count.unwrap_or(0);
    cc == c.need_charge && c.need_charge == c.code_charged
}

/// One side of the cross check: a token's details on the day, by `Seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideToken {
    /// Bill: `ChargeCount`. Ledger: the number of details with `IsNeedCharge == true`.
    pub charge_count: Option<u64>,
    /// `Seq` → `IsNeedCharge`. Details with a null `Seq` are left out (R8: never charged).
    pub details: BTreeMap<String, Option<bool>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DetailRef {
    pub biz_token: String,
    pub seq: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagDisagreement {
    pub biz_token: String,
    pub seq: String,
    pub ledger: Option<bool>,
    pub bill: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountMismatch {
    pub biz_token: String,
    pub ledger: u64,
    pub bill: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CrossReport {
    pub ledger_tokens: u64,
    pub bill_tokens: u64,
    /// Set when the comparison was not made (the ledger holds nothing for the day).
    pub skipped: Option<String>,
    pub ledger_only_tokens: Vec<String>,
    /// The first [`MAX_LISTED`] bill tokens missing from the ledger; the count is exact.
    pub bill_only_tokens: Vec<String>,
    pub bill_only_token_count: u64,
    pub ledger_only_details: Vec<DetailRef>,
    pub bill_only_details: Vec<DetailRef>,
    pub need_charge_disagreements: Vec<FlagDisagreement>,
    pub charge_count_mismatches: Vec<CountMismatch>,
}

impl CrossReport {
    pub fn mismatches(&self) -> usize {
        self.ledger_only_tokens.len()
            + self.bill_only_token_count as usize
            + self.ledger_only_details.len()
            + self.bill_only_details.len()
            + self.need_charge_disagreements.len()
            + self.charge_count_mismatches.len()
    }

    /// Compares one bill token with the ledger (joined on BizToken, then Seq).
    fn add_bill_token(&mut self, tok: &str, l: Option<&SideToken>, b: &SideToken) {
        self.bill_tokens += 1;
        let Some(l) = l else {
            self.bill_only_token_count += 1;
            if self.bill_only_tokens.len() < MAX_LISTED {
                self.bill_only_tokens.push(tok.to_string());
            }
            return;
        };
        for (seq, lf) in &l.details {
            match b.details.get(seq) {
                None => self.ledger_only_details.push(DetailRef { biz_token: tok.into(), seq: seq.clone() }),
                Some(bf) if (*bf == Some(true)) != (*lf == Some(true)) => self
                    .need_charge_disagreements
                    .push(FlagDisagreement { biz_token: tok.into(), seq: seq.clone(), ledger: *lf, bill: *bf }),
                Some(_) => {}
            }
        }
        for seq in b.details.keys().filter(|s| !l.details.contains_key(*s)) {
            self.bill_only_details.push(DetailRef { biz_token: tok.into(), seq: seq.clone() });
        }
        let lc = l.charge_count.unwrap_or(0);
        if b.charge_count.unwrap_or(0) != lc {
            self.charge_count_mismatches.push(CountMismatch {
                biz_token: tok.into(),
                ledger: lc,
                bill: b.charge_count,
            });
        }
    }
}

/// Method 1 against method 2, pure. Joined on (BizToken, Seq), never on masked fields.
pub fn cross_check(ledger: &BTreeMap<String, SideToken>, bill: &BTreeMap<String, SideToken>) -> CrossReport {
    let mut r = CrossReport { ledger_tokens: ledger.len() as u64, ..Default::default() };
    for (tok, b) in bill {
        r.add_bill_token(tok, ledger.get(tok), b);
    }
    r.ledger_only_tokens = ledger.keys().filter(|t| !bill.contains_key(*t)).cloned().collect();
    r
}

/// The day's totals (R6 daily charges, R7 attribution, R8 null details).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DayTotals {
    pub tokens: u64,
    pub details: u64,
    /// R6: daily charges = the sum of `ChargeCount`.
    pub charge_count_sum: u64,
    pub need_charge: u64,
    pub code_charged: u64,
    /// R8: details with a null `ReqTime` or `IsNeedCharge` (no comparison happened): free.
    pub null_details: u64,
    /// R7: details on this bill whose `ReqTime` falls on another Beijing day.
    pub other_day_details: u64,
    /// R7: charged details (`IsNeedCharge == true`) per Beijing hour of `ReqTime`.
    pub charges_per_hour: [u64; 24],
}

/// The bill side of a day, checked.
#[derive(Debug, Clone, Default)]
pub struct DayCheck {
    pub totals: DayTotals,
    /// The first [`MAX_LISTED`] tokens whose three counts disagree, sorted; the count is exact.
    pub r6_mismatches: Vec<R6Mismatch>,
    pub r6_mismatch_count: u64,
}

/// One stored detail as the checks read it: `(seq, req_time_ms, is_need_charge, error_code)`.
pub type DetailRow = (Option<String>, Option<i64>, Option<bool>, Option<String>);

/// Streams the stored tokens of a complete pull with their details, one token at a time, in
/// arrival order: `f(biz_token, charge_count, details)`. Two sequential scans merged on the
/// token row (the tokens of the day by index, the details by their clustered key), so the
/// cost is linear in the day and the memory is one token's details.
fn for_each_token(
    store: &Store,
    st: &PullState,
    mut f: impl FnMut(&str, Option<u64>, &[DetailRow]),
) -> ReconResult<()> {
    let p = params![st.scope_id, st.bill_date, st.generation];
    let (lo, hi): (Option<i64>, Option<i64>) = store.conn().query_row(
        "SELECT MIN(token_row), MAX(token_row) FROM recon_day_tokens
         WHERE scope_id = ?1 AND bill_date = ?2 AND generation = ?3",
        p,
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(()) };
    let mut tq = store.conn().prepare(
        "SELECT token_row, biz_token, charge_count FROM recon_day_tokens
         WHERE scope_id = ?1 AND bill_date = ?2 AND generation = ?3 ORDER BY token_row",
    )?;
    let mut dq = store.conn().prepare(&format!(
        "SELECT token_row, {}, req_time_ms, is_need_charge, error_code FROM recon_day_details d
         WHERE token_row BETWEEN ?1 AND ?2 ORDER BY token_row",
        super::bill::seq_sql("d")
    ))?;
    let mut tokens = tq.query(p)?;
    let mut drows = dq.query(params![lo, hi])?;
    let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, DetailRow)> {
        Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
    };
    let mut next = match drows.next()? {
        Some(r) => Some(read(r)?),
        None => None,
    };
    let mut details: Vec<DetailRow> = Vec::new();
    while let Some(t) = tokens.next()? {
        let row: i64 = t.get(0)?;
        let tok = t.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        let cc: Option<i64> = t.get(2)?;
        details.clear();
        // Rows of other scopes inside the range are skipped; this token's are taken.
        while let Some((drow, d)) = next.take() {
            if drow > row {
                next = Some((drow, d));
                break;
            }
            if drow == row {
                details.push(d);
            }
            next = match drows.next()? {
                Some(r) => Some(read(r)?),
                None => None,
            };
        }
        f(tok, cc.map(|c| c.max(0) as u64), &details);
    }
    Ok(())
}

/// Checks R6 per token and the day's totals, streaming the stored day once.
pub fn check_day(store: &Store, st: &PullState, date: NaiveDate, codes: &ChargedCodes) -> ReconResult<DayCheck> {
    let mut t = DayTotals::default();
    let mut r6 = Vec::new();
    let mut r6_count = 0u64;
    let day_start = day_start_ms(date);
    for_each_token(store, st, |tok, cc, details| {
        let mut c = TokenCounts { charge_count: cc, ..Default::default() };
        for (_, req, flag, code) in details {
            c.details += 1;
            let charged = *flag == Some(true);
            if charged {
                c.need_charge += 1;
            }
            if codes.contains(code.as_deref()) {
                c.code_charged += 1;
            }
            if req.is_none() || flag.is_none() {
                t.null_details += 1;
            }
            if let Some(ms) = req {
                // Beijing time has no daylight saving: the day is [start, start + 24 h).
                let since_midnight = ms - day_start;
                if !(0..DAY_MS).contains(&since_midnight) {
                    t.other_day_details += 1;
                } else if charged {
                    t.charges_per_hour[(since_midnight / HOUR_MS) as usize] += 1;
                }
            }
        }
        t.tokens += 1;
        t.details += c.details;
        t.need_charge += c.need_charge;
        t.code_charged += c.code_charged;
        t.charge_count_sum += c.charge_count.unwrap_or(0);
        if !r6_agrees(&c) {
            r6_count += 1;
            if r6.len() < MAX_LISTED {
                r6.push(R6Mismatch { biz_token: tok.to_string(), counts: c });
            }
        }
    })?;
    r6.sort_by(|a, b| a.biz_token.cmp(&b.biz_token));
    Ok(DayCheck { totals: t, r6_mismatches: r6, r6_mismatch_count: r6_count })
}

/// A ledger token of the day with the merchant's order (`Extra`): the join to its business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerOrder {
    pub biz_token: String,
    pub rule_id: String,
    pub extra: Option<String>,
    pub charges: u64,
    pub is_final: bool,
}

/// The ledger side of a day, for the scope's account (and rule, if the pull had one, R9):
/// tokens with at least one detail whose `ReqTime` falls on `date` (R7).
pub fn ledger_day(
    store: &Store,
    scope: &Scope,
    date: NaiveDate,
) -> ReconResult<(BTreeMap<String, SideToken>, Vec<LedgerOrder>)> {
    let start = day_start_ms(date);
    let mut q = store.conn().prepare(
        "SELECT l.biz_token, l.seq, l.is_need_charge, t.is_final, t.rule_id, t.extra FROM recon_ledger_details l
         JOIN recon_ledger_tokens t ON t.account = l.account AND t.rule_id = l.rule_id AND t.biz_token = l.biz_token
         WHERE l.account = ?1 AND (?2 IS NULL OR l.rule_id = ?2) AND l.req_time_ms >= ?3 AND l.req_time_ms < ?4
         ORDER BY l.biz_token",
    )?;
    let mut map: BTreeMap<String, SideToken> = BTreeMap::new();
    let mut orders: BTreeMap<String, LedgerOrder> = BTreeMap::new();
    let mut rows = q.query(params![scope.account.as_str(), scope.rule, start, start + DAY_MS])?;
    while let Some(r) = rows.next()? {
        let tok: String = r.get(0)?;
        let seq: Option<String> = r.get(1)?;
        let flag: Option<bool> = r.get(2)?;
        let o = orders.entry(tok.clone()).or_insert(LedgerOrder {
            biz_token: tok.clone(),
            rule_id: r.get(4)?,
            extra: r.get(5)?,
            charges: 0,
            is_final: r.get(3)?,
        });
        let e = map.entry(tok).or_default();
        let cc = e.charge_count.get_or_insert(0);
        if flag == Some(true) {
            *cc += 1;
            o.charges += 1;
        }
        if let Some(s) = seq.filter(|s| !s.is_empty()) {
            e.details.insert(s, flag);
        }
    }
    Ok((map, orders.into_values().collect()))
}

/// Cross-method reconciliation of a complete pull against the ledger of the same scope.
pub fn cross_day(
    store: &Store,
    st: &PullState,
    ledger: &BTreeMap<String, SideToken>,
    bill_tokens: u64,
) -> ReconResult<CrossReport> {
    if ledger.is_empty() {
        return Ok(CrossReport {
            bill_tokens,
            skipped: Some(
                "the ledger holds no comparison on this day (method 1 not in use, or nothing swept yet)".into(),
            ),
            ..Default::default()
        });
    }
    let mut r = CrossReport { ledger_tokens: ledger.len() as u64, ..Default::default() };
    let mut seen = BTreeSet::new();
    for_each_token(store, st, |tok, cc, details| {
        let l = ledger.get(tok);
        let mut b = SideToken { charge_count: cc, details: BTreeMap::new() };
        if l.is_some() {
            seen.insert(tok.to_string());
            for (seq, _, flag, _) in details {
                if let Some(seq) = seq.as_ref().filter(|s| !s.is_empty()) {
                    b.details.insert(seq.clone(), *flag);
                }
            }
        }
        r.add_bill_token(tok, l, &b);
    })?;
    r.ledger_only_tokens = ledger.keys().filter(|t| !seen.contains(*t)).cloned().collect();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(cc: Option<u64>, d: &[(&str, Option<bool>)]) -> SideToken {
        SideToken { charge_count: cc, details: d.iter().map(|(s, f)| (s.to_string(), *f)).collect() }
    }

    #[test]
    fn r6_three_counts_must_agree_and_codes_are_configurable() {
        let ok = TokenCounts { charge_count: Some(2), details: 3, need_charge: 2, code_charged: 2 };
        assert!(r6_agrees(&ok));
        assert!(!r6_agrees(&TokenCounts { charge_count: Some(3), ..ok }));
        assert!(!r6_agrees(&TokenCounts { code_charged: 1, ..ok }));
        assert!(!r6_agrees(&TokenCounts { charge_count: None, ..ok }), "null ChargeCount counts as 0");
        let codes = ChargedCodes::default();
        assert!(codes.contains(Some("2016")) && codes.contains(Some("0")) && !codes.contains(Some("1001")));
        assert!(!codes.contains(None), "R8: a null code is never charged");
        assert!(codes.describe().contains("FaceID Plus"), "{}", codes.describe());
        let eid = ChargedCodes::preset(Product::parse("eid").expect("eid"));
        assert!(!eid.contains(Some("1002")) && eid.contains(Some("2016")), "1002 is free for E证通");
        assert!(Product::parse("pro").is_err());
        let custom = ChargedCodes::parse("0, 1001").expect("parse");
        assert_eq!(custom.product(), Product::Custom);
        assert!(custom.contains(Some("1001")) && !custom.contains(Some("2016")));
        assert!(ChargedCodes::parse("0,,1").is_err());
        assert!(ChargedCodes::parse("0;drop").is_err());
    }

    #[test]
    fn r6_cross_check_reports_every_kind_of_mismatch() {
        let mut ledger = BTreeMap::new();
        let mut bill = BTreeMap::new();
        ledger.insert("same".to_string(), side(Some(1), &[("a", Some(true)), ("b", Some(false))]));
        bill.insert("same".to_string(), side(Some(1), &[("a", Some(true)), ("b", None)]));
        ledger.insert("ledger-only".to_string(), side(Some(0), &[]));
        bill.insert("bill-only".to_string(), side(Some(1), &[("x", Some(true))]));
        ledger.insert("diff".to_string(), side(Some(1), &[("p", Some(true)), ("q", Some(false))]));
        bill.insert("diff".to_string(), side(Some(2), &[("p", Some(false)), ("r", Some(true))]));
        let r = cross_check(&ledger, &bill);
        assert_eq!(r.ledger_only_tokens, vec!["ledger-only"]);
        assert_eq!(r.bill_only_tokens, vec!["bill-only"]);
        assert_eq!(r.ledger_only_details, vec![DetailRef { biz_token: "diff".into(), seq: "q".into() }]);
        assert_eq!(r.bill_only_details, vec![DetailRef { biz_token: "diff".into(), seq: "r".into() }]);
        assert_eq!(
            r.need_charge_disagreements,
            vec![FlagDisagreement { biz_token: "diff".into(), seq: "p".into(), ledger: Some(true), bill: Some(false) }]
        );
        assert_eq!(
            r.charge_count_mismatches,
            vec![CountMismatch { biz_token: "diff".into(), ledger: 1, bill: Some(2) }]
        );
        assert_eq!(r.mismatches(), 6, "false and null agree (both free, R8): `same` is clean");
    }

    #[test]
    fn r7_ledger_details_are_split_by_the_beijing_day_of_req_time() {
        use crate::recon::calendar::{day_start_ms, parse_date};
        use crate::recon::ledger::{self, SweepPolicy};
        use crate::recon::models::{DetectDetail, DetectInfoText};
        let mut s = crate::recon::open_store(&crate::store::StorePath::Memory).expect("store");
        let d2 = parse_date("2026-07-02").expect("date");
        let midnight = day_start_ms(d2);
        let acct = crate::recon::scope::Account::parse("a").expect("account");
        let key = ledger::TokenKey { account: &acct, rule_id: "1", biz_token: "tok" };
        ledger::record_issued(&s, key, Some("order-7"), midnight - 30 * 60_000).expect("record");
        let at = |seq: &str, ms: i64, charge: bool| DetectDetail {
            req_time: Some(ms.to_string()),
            seq: Some(seq.into()),
            is_need_charge: Some(charge),
            ..DetectDetail::default()
        };
        let text = DetectInfoText {
            err_code: Some(0),
            liveness_detail: Some(vec![at("before", midnight - 1, true), at("after", midnight, true)]),
            ..DetectInfoText::default()
        };
        ledger::store_detect_info(&mut s, &SweepPolicy::default(), key, midnight + 60_000, Some(&text)).expect("store");
        let all = Scope::new(acct.clone(), None);
        let (day1, _) = ledger_day(&s, &all, parse_date("2026-07-01").expect("date")).expect("day 1");
        let (day2, orders) = ledger_day(&s, &all, d2).expect("day 2");
        assert_eq!(day1["tok"].details.keys().collect::<Vec<_>>(), vec!["before"]);
        assert_eq!(day2["tok"].details.keys().collect::<Vec<_>>(), vec!["after"]);
        assert_eq!((day1["tok"].charge_count, day2["tok"].charge_count), (Some(1), Some(1)));
        assert!(orders.iter().all(|o| o.is_final));
        assert_eq!(orders[0].extra.as_deref(), Some("order-7"), "the merchant's order joins the token");
        // R9: another rule or another account of the same store sees nothing of it.
        let other_rule = Scope::new(acct, Some("2"));
        assert!(ledger_day(&s, &other_rule, d2).expect("rule 2").0.is_empty());
        let other = Scope::new(crate::recon::scope::Account::parse("b").expect("b"), None);
        assert!(ledger_day(&s, &other, d2).expect("account b").0.is_empty());
    }
}
