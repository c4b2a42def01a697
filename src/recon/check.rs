//! The checks of a bill day. R6's three-way check per token (`ChargeCount` = details with
//! `IsNeedCharge == true` = details whose `ErrorCode` is a charged code, the code list
//! configurable), the day's totals with R7 (charges counted on the Beijing day and hour of
//! their `ReqTime`) and R8 (null details are free), and the cross-method reconciliation of
//! the ledger (method 1) against the bill (method 2) per (BizToken, Seq). The comparison
//! functions are pure; the loaders only read the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use rusqlite::params;
use serde::Serialize;

use super::calendar::{day_start_ms, format_date, DAY_MS};
use super::error::{ReconError, ReconResult};
use super::ledger::HOUR_MS;
use crate::store::Store;

/// The `ErrorCode`s that are charged (R6 cross-check). `IsNeedCharge` stays authoritative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargedCodes(BTreeSet<String>);

impl Default for ChargedCodes {
    /// WeChat mini program / H5 channel (API-NOTES §3): 0, 1002, 2006, 2016.
    fn default() -> Self {
        ChargedCodes(["0", "1002", "2006", "2016"].into_iter().map(String::from).collect())
    }
}

impl ChargedCodes {
    /// Parses `0,1002,2006,2016`.
    pub fn parse(s: &str) -> ReconResult<Self> {
        let mut set = BTreeSet::new();
        for c in s.split(',').map(str::trim) {
            if c.is_empty() || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
                return Err(ReconError::invalid_arg("charged-codes", format!("`{c}` is not an error code")));
            }
            set.insert(c.to_string());
        }
        Ok(ChargedCodes(set))
    }
    pub fn contains(&self, code: Option<&str>) -> bool {
        code.is_some_and(|c| self.0.contains(c.trim()))
    }
    pub fn list(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
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
    pub bill_only_tokens: Vec<String>,
    pub ledger_only_details: Vec<DetailRef>,
    pub bill_only_details: Vec<DetailRef>,
    pub need_charge_disagreements: Vec<FlagDisagreement>,
    pub charge_count_mismatches: Vec<CountMismatch>,
}

impl CrossReport {
    pub fn mismatches(&self) -> usize {
        self.ledger_only_tokens.len()
            + self.bill_only_tokens.len()
            + self.ledger_only_details.len()
            + self.bill_only_details.len()
            + self.need_charge_disagreements.len()
            + self.charge_count_mismatches.len()
    }
}

/// Method 1 against method 2, pure. Joined on (BizToken, Seq), never on masked fields.
pub fn cross_check(ledger: &BTreeMap<String, SideToken>, bill: &BTreeMap<String, SideToken>) -> CrossReport {
    let mut r =
        CrossReport { ledger_tokens: ledger.len() as u64, bill_tokens: bill.len() as u64, ..Default::default() };
    for (tok, l) in ledger {
        let Some(b) = bill.get(tok) else {
            r.ledger_only_tokens.push(tok.clone());
            continue;
        };
        for (seq, lf) in &l.details {
            match b.details.get(seq) {
                None => r.ledger_only_details.push(DetailRef { biz_token: tok.clone(), seq: seq.clone() }),
                Some(bf) if (*bf == Some(true)) != (*lf == Some(true)) => r
                    .need_charge_disagreements
                    .push(FlagDisagreement { biz_token: tok.clone(), seq: seq.clone(), ledger: *lf, bill: *bf }),
                Some(_) => {}
            }
        }
        for seq in b.details.keys().filter(|s| !l.details.contains_key(*s)) {
            r.bill_only_details.push(DetailRef { biz_token: tok.clone(), seq: seq.clone() });
        }
        let lc = l.charge_count.unwrap_or(0);
        if b.charge_count.unwrap_or(0) != lc {
            r.charge_count_mismatches.push(CountMismatch { biz_token: tok.clone(), ledger: lc, bill: b.charge_count });
        }
    }
    r.bill_only_tokens = bill.keys().filter(|t| !ledger.contains_key(*t)).cloned().collect();
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
    pub r6_mismatches: Vec<R6Mismatch>,
    pub tokens: HashMap<String, TokenCounts>,
}

/// Reads every stored detail of `date` once and checks R6 per token.
pub fn check_day(store: &Store, date: NaiveDate, codes: &ChargedCodes) -> ReconResult<DayCheck> {
    let ds = format_date(date);
    let mut tokens: HashMap<String, TokenCounts> = HashMap::new();
    let mut t = DayTotals::default();
    {
        let mut q =
            store.conn().prepare("SELECT biz_token, charge_count FROM recon_bill_tokens WHERE bill_date = ?1")?;
        let mut rows = q.query([&ds])?;
        while let Some(r) = rows.next()? {
            let cc: Option<i64> = r.get(1)?;
            tokens.insert(r.get(0)?, TokenCounts { charge_count: cc.map(|c| c.max(0) as u64), ..Default::default() });
        }
    }
    let day_start = day_start_ms(date);
    let mut q = store.conn().prepare(
        "SELECT biz_token, req_time_ms, is_need_charge, error_code FROM recon_charge_details WHERE bill_date = ?1",
    )?;
    let mut rows = q.query([&ds])?;
    while let Some(r) = rows.next()? {
        let tok = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        let req: Option<i64> = r.get(1)?;
        let flag: Option<bool> = r.get(2)?;
        let code = r.get_ref(3)?.as_str_or_null().map_err(rusqlite::Error::from)?;
        let c = match tokens.get_mut(tok) {
            Some(c) => c,
            None => tokens.entry(tok.to_string()).or_default(),
        };
        c.details += 1;
        t.details += 1;
        let charged = flag == Some(true);
        if charged {
            c.need_charge += 1;
            t.need_charge += 1;
        }
        if codes.contains(code) {
            c.code_charged += 1;
            t.code_charged += 1;
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
    let mut r6: Vec<R6Mismatch> = tokens
        .iter()
        .filter(|(_, c)| !r6_agrees(c))
        .map(|(k, c)| R6Mismatch { biz_token: k.clone(), counts: *c })
        .collect();
    r6.sort_by(|a, b| a.biz_token.cmp(&b.biz_token));
    t.tokens = tokens.len() as u64;
    t.charge_count_sum = tokens.values().map(|c| c.charge_count.unwrap_or(0)).sum();
    Ok(DayCheck { totals: t, r6_mismatches: r6, tokens })
}

/// The ledger side of a day: tokens with at least one detail whose `ReqTime` falls on `date` (R7).
pub fn ledger_day(store: &Store, date: NaiveDate) -> ReconResult<(BTreeMap<String, SideToken>, Vec<String>)> {
    let start = day_start_ms(date);
    let mut q = store.conn().prepare(
        "SELECT l.biz_token, l.seq, l.is_need_charge, t.is_final FROM recon_liveness l
         JOIN recon_tokens t ON t.biz_token = l.biz_token
         WHERE l.req_time_ms >= ?1 AND l.req_time_ms < ?2",
    )?;
    let mut map: BTreeMap<String, SideToken> = BTreeMap::new();
    let mut not_final = BTreeSet::new();
    let mut rows = q.query(params![start, start + DAY_MS])?;
    while let Some(r) = rows.next()? {
        let tok: String = r.get(0)?;
        let seq: Option<String> = r.get(1)?;
        let flag: Option<bool> = r.get(2)?;
        if !r.get::<_, bool>(3)? {
            not_final.insert(tok.clone());
        }
        let e = map.entry(tok).or_default();
        let cc = e.charge_count.get_or_insert(0);
        if flag == Some(true) {
            *cc += 1;
        }
        if let Some(s) = seq.filter(|s| !s.is_empty()) {
            e.details.insert(s, flag);
        }
    }
    Ok((map, not_final.into_iter().collect()))
}

/// Cross-method reconciliation of `date`, from the store. `bill` is the checked bill day.
pub fn cross_day(store: &Store, date: NaiveDate, bill: &DayCheck) -> ReconResult<(CrossReport, Vec<String>)> {
    let (ledger, not_final) = ledger_day(store, date)?;
    if ledger.is_empty() {
        let r = CrossReport {
            bill_tokens: bill.tokens.len() as u64,
            skipped: Some(
                "the ledger holds no comparison on this day (method 1 not in use, or nothing swept yet)".into(),
            ),
            ..Default::default()
        };
        return Ok((r, not_final));
    }
    let ds = format_date(date);
    let mut side: BTreeMap<String, SideToken> = bill
        .tokens
        .iter()
        .map(|(tok, c)| (tok.clone(), SideToken { charge_count: c.charge_count, details: BTreeMap::new() }))
        .collect();
    // One pass over the day; only the ledger's tokens need their details.
    let mut q =
        store.conn().prepare("SELECT biz_token, seq, is_need_charge FROM recon_charge_details WHERE bill_date = ?1")?;
    let mut rows = q.query([&ds])?;
    while let Some(r) = rows.next()? {
        let tok = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        if !ledger.contains_key(tok) {
            continue;
        }
        if let (Some(st), Some(seq)) = (side.get_mut(tok), r.get::<_, Option<String>>(1)?.filter(|s| !s.is_empty())) {
            st.details.insert(seq, r.get(2)?);
        }
    }
    Ok((cross_check(&ledger, &side), not_final))
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
        let custom = ChargedCodes::parse("0, 1001").expect("parse");
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
        let mut s = Store::open(&crate::store::StorePath::Memory).expect("store");
        ledger::open(&s).expect("schema");
        let d2 = parse_date("2026-07-02").expect("date");
        let midnight = day_start_ms(d2);
        ledger::record_issued(&s, "tok", "1", midnight - 30 * 60_000).expect("record");
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
        ledger::store_detect_info(&mut s, &SweepPolicy::default(), "tok", midnight + 60_000, Some(&text))
            .expect("store");
        let (day1, _) = ledger_day(&s, parse_date("2026-07-01").expect("date")).expect("day 1");
        let (day2, not_final) = ledger_day(&s, d2).expect("day 2");
        assert_eq!(day1["tok"].details.keys().collect::<Vec<_>>(), vec!["before"]);
        assert_eq!(day2["tok"].details.keys().collect::<Vec<_>>(), vec!["after"]);
        assert_eq!((day1["tok"].charge_count, day2["tok"].charge_count), (Some(1), Some(1)));
        assert!(not_final.is_empty());
    }
}
