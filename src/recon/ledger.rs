//! Method 1, the BizToken ledger (SPEC R1–R4). A token is written the moment `DetectAuth`
//! returns it (R1) with its "DetectInfo fetched" flag; the sweeper (R2) refetches every
//! token that is not final, from issue + 2 h (R3) until final, inside the 72 h window in
//! which FaceID keeps results, and raises an alert for tokens near 72 h still unfetched.
//! Each fetch replaces the token's stored `LivenessDetail` items (all of them, R4) and its
//! charge count (items with `IsNeedCharge == true`). [`SweepPolicy`] is pure. R9: every
//! row is keyed by (account, RuleId, BizToken): a sweep fetches only its own account's
//! tokens. The merchant's `Extra` (its business order) is kept from the issue and from
//! `Text.Extra`; the identity sent to `DetectAuth` (`IdCard`, `Name`) is never stored.

use std::future::Future;

use rusqlite::{params, OptionalExtension};

use super::error::{ReconError, ReconResult};
use super::models::{parse_req_time, DetectInfoText};
use super::scope::Account;
use crate::store::Store;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS recon_ledger_tokens (
    account TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    biz_token TEXT NOT NULL,
    extra TEXT,
    issued_at_ms INTEGER NOT NULL,
    fetched INTEGER NOT NULL DEFAULT 0,
    is_final INTEGER NOT NULL DEFAULT 0,
    lost INTEGER NOT NULL DEFAULT 0,
    err_code INTEGER,
    fetch_count INTEGER NOT NULL DEFAULT 0,
    last_fetch_ms INTEGER,
    last_error TEXT,
    charges INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, rule_id, biz_token)
);
CREATE INDEX IF NOT EXISTS recon_ledger_tokens_open ON recon_ledger_tokens (account, is_final, issued_at_ms);
CREATE TABLE IF NOT EXISTS recon_ledger_details (
    account TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    biz_token TEXT NOT NULL,
    seq_key TEXT NOT NULL,
    seq TEXT,
    idx INTEGER NOT NULL,
    req_time_ms INTEGER,
    is_need_charge INTEGER,
    errcode INTEGER,
    errmsg TEXT,
    livestatus INTEGER,
    comparestatus INTEGER,
    sim TEXT,
    compare_lib_type TEXT,
    liveness_mode INTEGER,
    PRIMARY KEY (account, rule_id, biz_token, seq_key)
);
CREATE INDEX IF NOT EXISTS recon_ledger_details_time ON recon_ledger_details (account, req_time_ms);
CREATE TABLE IF NOT EXISTS recon_ledger_uncertain (
    account TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    extra TEXT,
    at_ms INTEGER NOT NULL,
    cause TEXT NOT NULL
);
";

/// The key of a ledger token (R9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenKey<'a> {
    pub account: &'a Account,
    pub rule_id: &'a str,
    pub biz_token: &'a str,
}

pub const HOUR_MS: i64 = 3_600_000;

/// The key of a detail within its token: its `Seq`, or a positional key when `Seq` is null
/// (R8: such a detail had no comparison and is never joined across methods).
pub fn seq_key(seq: Option<&str>, idx: usize) -> String {
    match seq {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => format!("~null{idx}"),
    }
}

/// R3/R2 timing, pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepPolicy {
    /// R3: a token is final once this long after issue (2 h).
    pub final_after_ms: i64,
    /// FaceID keeps results this long after issue (72 h).
    pub window_ms: i64,
    /// Alert when a token is not final this close to the end of the window.
    pub alert_before_ms: i64,
}

impl Default for SweepPolicy {
    fn default() -> Self {
        SweepPolicy { final_after_ms: 2 * HOUR_MS, window_ms: 72 * HOUR_MS, alert_before_ms: 12 * HOUR_MS }
    }
}

/// What the sweeper does with one token now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepDecision {
    /// Already final: nothing to do.
    Done,
    /// Too early: the user may still retry with this token (R3). Fetch from `at_ms`.
    Wait { at_ms: i64 },
    /// Fetch now; `alert` when the 72 h window is about to close.
    Fetch { alert: bool },
    /// Past 72 h and never final: the results are gone. Alert.
    Lost,
}

impl SweepPolicy {
    /// R3: final when `ErrCode == 0`, or when the fetch happened more than 2 h after issue.
    pub fn is_final(&self, issued_at_ms: i64, err_code: Option<i64>, fetched_at_ms: i64) -> bool {
        err_code == Some(0) || fetched_at_ms - issued_at_ms > self.final_after_ms
    }

    pub fn decide(&self, issued_at_ms: i64, is_final: bool, now_ms: i64) -> SweepDecision {
        let age = now_ms - issued_at_ms;
        if is_final {
            SweepDecision::Done
        } else if age >= self.window_ms {
            SweepDecision::Lost
        } else if age <= self.final_after_ms {
            SweepDecision::Wait { at_ms: issued_at_ms + self.final_after_ms + 1 }
        } else {
            SweepDecision::Fetch { alert: age >= self.window_ms - self.alert_before_ms }
        }
    }
}

pub fn open(store: &Store) -> ReconResult<()> {
    store.ensure_schema(SCHEMA)?;
    Ok(())
}

/// R1: store a token the moment it is issued, with the merchant's `Extra` (its order).
/// Idempotent: a second call changes nothing.
pub fn record_issued(store: &Store, key: TokenKey<'_>, extra: Option<&str>, issued_at_ms: i64) -> ReconResult<bool> {
    if key.biz_token.is_empty() {
        return Err(ReconError::invalid_arg("biz_token", "is empty"));
    }
    let n = store.conn().execute(
        "INSERT INTO recon_ledger_tokens (account, rule_id, biz_token, extra, issued_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO NOTHING",
        params![key.account.as_str(), key.rule_id, key.biz_token, extra, issued_at_ms],
    )?;
    Ok(n == 1)
}

/// R1: a `DetectAuth` whose outcome is unknown (a token may have been issued and not
/// received). Kept for the operator: a bill token missing from the ledger may be this one.
pub fn record_uncertain(
    store: &Store,
    account: &Account,
    rule_id: &str,
    extra: Option<&str>,
    at_ms: i64,
    cause: &str,
) -> ReconResult<()> {
    store.conn().execute(
        "INSERT INTO recon_ledger_uncertain (account, rule_id, extra, at_ms, cause) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account.as_str(), rule_id, extra, at_ms, cause],
    )?;
    Ok(())
}

/// Uncertain `DetectAuth` calls of `account` (and rule, `None` = all) in `[from_ms, to_ms)`.
pub fn uncertain_count(
    store: &Store,
    account: &Account,
    rule: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> ReconResult<u64> {
    Ok(store.conn().query_row(
        "SELECT COUNT(*) FROM recon_ledger_uncertain WHERE account = ?1 AND (?2 IS NULL OR rule_id = ?2)
            AND at_ms >= ?3 AND at_ms < ?4",
        params![account.as_str(), rule, from_ms, to_ms],
        |r| r.get::<_, i64>(0),
    )? as u64)
}

/// A token as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRow {
    pub account: String,
    pub biz_token: String,
    pub rule_id: String,
    /// The merchant's `Extra` (its business order): given at issue, or read back from `Text.Extra`.
    pub extra: Option<String>,
    pub issued_at_ms: i64,
    pub fetched: bool,
    pub is_final: bool,
    pub lost: bool,
    pub err_code: Option<i64>,
    pub fetch_count: i64,
    pub charges: i64,
}

fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        account: r.get(0)?,
        biz_token: r.get(1)?,
        rule_id: r.get(2)?,
        extra: r.get(3)?,
        issued_at_ms: r.get(4)?,
        fetched: r.get(5)?,
        is_final: r.get(6)?,
        lost: r.get(7)?,
        err_code: r.get(8)?,
        fetch_count: r.get(9)?,
        charges: r.get(10)?,
    })
}

const TOKEN_COLS: &str =
    "account, biz_token, rule_id, extra, issued_at_ms, fetched, is_final, lost, err_code, fetch_count, charges";

pub fn token(store: &Store, key: TokenKey<'_>) -> ReconResult<Option<TokenRow>> {
    Ok(store
        .conn()
        .query_row(
            &format!(
                "SELECT {TOKEN_COLS} FROM recon_ledger_tokens WHERE account = ?1 AND rule_id = ?2 AND biz_token = ?3"
            ),
            params![key.account.as_str(), key.rule_id, key.biz_token],
            token_from_row,
        )
        .optional()?)
}

/// Every token of `account` not yet final and not given up, oldest first.
pub fn open_tokens(store: &Store, account: &Account) -> ReconResult<Vec<TokenRow>> {
    let mut st = store.conn().prepare(&format!(
        "SELECT {TOKEN_COLS} FROM recon_ledger_tokens WHERE account = ?1 AND is_final = 0 AND lost = 0
         ORDER BY issued_at_ms, biz_token"
    ))?;
    let rows = st.query_map([account.as_str()], token_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// R3 + R4: store one fetched `DetectInfo` (text). Replaces the token's details with the
/// fetched ones, recounts its charges and sets the final flag. Returns the new row.
pub fn store_detect_info(
    store: &mut Store,
    policy: &SweepPolicy,
    key: TokenKey<'_>,
    fetched_at_ms: i64,
    text: Option<&DetectInfoText>,
) -> ReconResult<TokenRow> {
    let row = token(store, key)?
        .ok_or_else(|| ReconError::invalid_arg("biz_token", "is not in the ledger (R1: record it when issued)"))?;
    let err_code = text.and_then(|t| t.err_code);
    let is_final = policy.is_final(row.issued_at_ms, err_code, fetched_at_ms);
    let details = text.and_then(|t| t.liveness_detail.as_deref()).unwrap_or(&[]);
    let charges = details.iter().filter(|d| d.is_need_charge == Some(true)).count() as i64;
    let extra = text.and_then(|t| t.extra.as_deref()).filter(|e| !e.is_empty());
    let (acct, rule, biz_token) = (key.account.as_str(), key.rule_id, key.biz_token);
    let tx = store.conn_mut().transaction()?;
    tx.execute(
        "DELETE FROM recon_ledger_details WHERE account = ?1 AND rule_id = ?2 AND biz_token = ?3",
        params![acct, rule, biz_token],
    )?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT OR REPLACE INTO recon_ledger_details (account, rule_id, biz_token, seq_key, seq, idx, req_time_ms,
                is_need_charge, errcode, errmsg, livestatus, comparestatus, sim, compare_lib_type, liveness_mode)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        for (i, d) in details.iter().enumerate() {
            ins.execute(params![
                acct,
                rule,
                biz_token,
                seq_key(d.seq.as_deref(), i),
                d.seq,
                i as i64,
                parse_req_time(d.req_time.as_deref()),
                d.is_need_charge,
                d.errcode,
                d.errmsg,
                d.livestatus,
                d.comparestatus,
                d.sim,
                d.compare_lib_type,
                d.liveness_mode
            ])?;
        }
    }
    tx.execute(
        "UPDATE recon_ledger_tokens SET fetched = 1, is_final = ?4, err_code = ?5, fetch_count = fetch_count + 1,
            last_fetch_ms = ?6, last_error = NULL, charges = ?7, extra = COALESCE(?8, extra)
         WHERE account = ?1 AND rule_id = ?2 AND biz_token = ?3",
        params![acct, rule, biz_token, is_final, err_code, fetched_at_ms, charges, extra],
    )?;
    tx.commit()?;
    token(store, key)?.ok_or_else(|| ReconError::Protocol("token vanished".into()))
}

/// R4: the charges of a token (items with `IsNeedCharge == true`).
pub fn charges(store: &Store, key: TokenKey<'_>) -> ReconResult<i64> {
    Ok(store.conn().query_row(
        "SELECT COUNT(*) FROM recon_ledger_details WHERE account = ?1 AND rule_id = ?2 AND biz_token = ?3
            AND is_need_charge = 1",
        params![key.account.as_str(), key.rule_id, key.biz_token],
        |r| r.get(0),
    )?)
}

/// Where the sweeper gets `DetectInfo` from (the FaceID client, or a fake in tests).
pub trait DetectInfoSource {
    fn detect_info(
        &self,
        biz_token: &str,
        rule_id: &str,
    ) -> impl Future<Output = ReconResult<Option<DetectInfoText>>> + Send;
}

impl DetectInfoSource for super::client::FaceIdClient {
    async fn detect_info(&self, biz_token: &str, rule_id: &str) -> ReconResult<Option<DetectInfoText>> {
        Ok(self.get_detect_info(biz_token, rule_id).await?.text)
    }
}

/// An alert raised by the sweeper: a token close to (or past) the 72 h window, not final.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SweepAlert {
    pub biz_token: String,
    pub issued_at_ms: i64,
    pub hours_left: i64,
    pub lost: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    pub open: usize,
    pub fetched: usize,
    pub became_final: usize,
    pub waiting: usize,
    pub failed: usize,
    pub alerts: Vec<SweepAlert>,
}

/// R2: one sweep of `account`'s tokens at `now_ms` (`src` holds that account's
/// credentials, R9). Fetch errors are recorded on the token and retried next sweep.
pub async fn sweep<S: DetectInfoSource>(
    store: &mut Store,
    src: &S,
    policy: &SweepPolicy,
    account: &Account,
    now_ms: i64,
) -> ReconResult<SweepReport> {
    let open = open_tokens(store, account)?;
    let mut rep = SweepReport { open: open.len(), ..SweepReport::default() };
    let (acct, upd_where) = (account.as_str(), "WHERE account = ?1 AND rule_id = ?2 AND biz_token = ?3");
    for t in open {
        let key = TokenKey { account, rule_id: &t.rule_id, biz_token: &t.biz_token };
        let hours_left = (t.issued_at_ms + policy.window_ms - now_ms).max(0) / HOUR_MS;
        // What to tell the operator about this token: nothing, "about to expire" or "lost".
        let alert_lost: Option<bool> = match policy.decide(t.issued_at_ms, t.is_final, now_ms) {
            SweepDecision::Done => None,
            SweepDecision::Wait { .. } => {
                rep.waiting += 1;
                None
            }
            SweepDecision::Lost => {
                store.conn().execute(
                    &format!("UPDATE recon_ledger_tokens SET lost = 1 {upd_where}"),
                    params![acct, t.rule_id, t.biz_token],
                )?;
                Some(true)
            }
            SweepDecision::Fetch { alert } => match src.detect_info(&t.biz_token, &t.rule_id).await {
                Ok(text) => {
                    rep.fetched += 1;
                    let row = store_detect_info(store, policy, key, now_ms, text.as_ref())?;
                    if row.is_final {
                        rep.became_final += 1;
                    }
                    (alert && !row.is_final).then_some(false)
                }
                Err(e) => {
                    rep.failed += 1;
                    let lost = e.api_code() == Some("InvalidParameterValue.BizTokenExpired");
                    store.conn().execute(
                        &format!("UPDATE recon_ledger_tokens SET last_error = ?4, lost = ?5 {upd_where}"),
                        params![acct, t.rule_id, t.biz_token, e.api_code().unwrap_or("network"), lost],
                    )?;
                    (lost || alert).then_some(lost)
                }
            },
        };
        if let Some(lost) = alert_lost {
            rep.alerts.push(SweepAlert { biz_token: t.biz_token, issued_at_ms: t.issued_at_ms, hours_left, lost });
        }
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recon::models::DetectDetail;
    use crate::store::StorePath;

    const T0: i64 = 1_780_000_000_000;

    fn acct() -> Account {
        Account::parse("acct-a").expect("account")
    }

    fn key<'a>(a: &'a Account, tok: &'a str) -> TokenKey<'a> {
        TokenKey { account: a, rule_id: "1", biz_token: tok }
    }

    fn store() -> Store {
        let s = Store::open(&StorePath::Memory).expect("store");
        open(&s).expect("schema");
        s
    }

    fn detail(seq: Option<&str>, charge: Option<bool>, errcode: Option<i64>, at: i64) -> DetectDetail {
        DetectDetail {
            req_time: seq.map(|_| at.to_string()),
            seq: seq.map(str::to_string),
            is_need_charge: charge,
            errcode,
            ..DetectDetail::default()
        }
    }

    #[test]
    fn r1_token_is_recorded_once_with_fetched_flag_unset() {
        let s = store();
        let a = acct();
        assert!(record_issued(&s, key(&a, "tok-1"), Some("order-1"), T0).expect("record"));
        assert!(!record_issued(&s, key(&a, "tok-1"), None, T0 + 5).expect("second record is a no-op"));
        let t = token(&s, key(&a, "tok-1")).expect("read").expect("stored");
        assert_eq!((t.fetched, t.is_final, t.issued_at_ms), (false, false, T0));
        assert_eq!(t.extra.as_deref(), Some("order-1"));
        assert!(record_issued(&s, key(&a, ""), None, T0).is_err());
        assert_eq!(open_tokens(&s, &a).expect("open").len(), 1);
        // R9: the same token under another account or rule is another row; sweeps stay apart.
        let b = Account::parse("acct-b").expect("account");
        assert!(record_issued(&s, key(&b, "tok-1"), None, T0).expect("other account"));
        assert!(record_issued(&s, TokenKey { rule_id: "2", ..key(&a, "tok-1") }, None, T0).expect("other rule"));
        assert_eq!((open_tokens(&s, &a).expect("a").len(), open_tokens(&s, &b).expect("b").len()), (2, 1));
    }

    #[test]
    fn r3_token_final_when_errcode_zero_or_after_two_hours() {
        let p = SweepPolicy::default();
        assert!(p.is_final(T0, Some(0), T0 + 60_000));
        assert!(!p.is_final(T0, Some(2016), T0 + 2 * HOUR_MS));
        assert!(p.is_final(T0, Some(2016), T0 + 2 * HOUR_MS + 1));
        assert!(p.is_final(T0, None, T0 + 3 * HOUR_MS));
        assert!(!p.is_final(T0, None, T0 + HOUR_MS));
    }

    #[test]
    fn r3_sweep_decisions_step_with_time() {
        let p = SweepPolicy::default();
        assert_eq!(p.decide(T0, false, T0 + HOUR_MS), SweepDecision::Wait { at_ms: T0 + 2 * HOUR_MS + 1 });
        assert_eq!(p.decide(T0, false, T0 + 2 * HOUR_MS + 1), SweepDecision::Fetch { alert: false });
        assert_eq!(p.decide(T0, false, T0 + 59 * HOUR_MS), SweepDecision::Fetch { alert: false });
        assert_eq!(p.decide(T0, false, T0 + 60 * HOUR_MS), SweepDecision::Fetch { alert: true });
        assert_eq!(p.decide(T0, false, T0 + 72 * HOUR_MS), SweepDecision::Lost);
        assert_eq!(p.decide(T0, true, T0 + 72 * HOUR_MS), SweepDecision::Done);
    }

    #[test]
    fn r4_charges_count_is_need_charge_true_only_and_every_detail_is_stored() {
        let mut s = store();
        let a = acct();
        record_issued(&s, key(&a, "tok"), None, T0).expect("record");
        let text = DetectInfoText {
            extra: Some("order-9".into()),
            err_code: Some(2016),
            liveness_detail: Some(vec![
                detail(Some("a"), Some(true), Some(2016), T0 + 1),
                detail(Some("b"), Some(false), Some(1001), T0 + 2),
                detail(None, None, None, T0 + 3),
                detail(Some("c"), Some(true), Some(0), T0 + 4),
            ]),
            ..DetectInfoText::default()
        };
        let row = store_detect_info(&mut s, &SweepPolicy::default(), key(&a, "tok"), T0 + HOUR_MS, Some(&text))
            .expect("store");
        assert_eq!(row.charges, 2);
        assert!(row.fetched && !row.is_final);
        assert_eq!(row.extra.as_deref(), Some("order-9"), "Text.Extra is kept");
        assert_eq!(charges(&s, key(&a, "tok")).expect("charges"), 2);
        let n: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM recon_ledger_details WHERE biz_token='tok'", [], |r| r.get(0))
            .expect("n");
        assert_eq!(n, 4);
        // A later fetch replaces the details (no duplicates) and R3 makes it final.
        let row = store_detect_info(&mut s, &SweepPolicy::default(), key(&a, "tok"), T0 + 3 * HOUR_MS, Some(&text))
            .expect("again");
        assert!(row.is_final);
        assert_eq!(row.fetch_count, 2);
        let n: i64 = s.conn().query_row("SELECT COUNT(*) FROM recon_ledger_details", [], |r| r.get(0)).expect("n");
        assert_eq!(n, 4);
    }

    struct Fake(parking_lot::Mutex<Vec<String>>, Option<i64>);

    impl DetectInfoSource for Fake {
        async fn detect_info(&self, biz_token: &str, _rule: &str) -> ReconResult<Option<DetectInfoText>> {
            self.0.lock().push(biz_token.to_string());
            if biz_token == "gone" {
                return Err(ReconError::api("InvalidParameterValue.BizTokenExpired"));
            }
            assert_ne!(biz_token, "other-account", "R9: a sweep fetches only its own account's tokens");
            Ok(Some(DetectInfoText {
                err_code: self.1,
                liveness_detail: Some(vec![detail(Some("s1"), Some(true), self.1, T0 + 1)]),
                ..DetectInfoText::default()
            }))
        }
    }

    #[tokio::test]
    async fn r2_sweeper_refetches_open_tokens_from_two_hours_and_alerts_near_72() {
        let mut s = store();
        let p = SweepPolicy::default();
        let a = acct();
        record_issued(&s, key(&a, "young"), None, T0).expect("record");
        record_issued(&s, key(&a, "old"), None, T0 - 65 * HOUR_MS).expect("record");
        record_issued(&s, key(&a, "gone"), None, T0 - 70 * HOUR_MS).expect("record");
        record_issued(&s, key(&a, "dead"), None, T0 - 80 * HOUR_MS).expect("record");
        let b = Account::parse("acct-b").expect("account");
        record_issued(&s, key(&b, "other-account"), None, T0 - 65 * HOUR_MS).expect("record");
        let src = Fake(parking_lot::Mutex::new(Vec::new()), Some(2016));
        let rep = sweep(&mut s, &src, &p, &a, T0 + HOUR_MS).await.expect("sweep");
        assert_eq!(rep.waiting, 1, "the young token waits for its 2 h mark");
        assert_eq!(*src.0.lock(), vec!["gone".to_string(), "old".to_string()]);
        assert_eq!(rep.became_final, 1, "old is past 2 h: final");
        let lost: Vec<&str> = rep.alerts.iter().filter(|a| a.lost).map(|a| a.biz_token.as_str()).collect();
        assert_eq!(lost, vec!["dead", "gone"]);
        let rep = sweep(&mut s, &src, &p, &a, T0 + 2 * HOUR_MS + 1).await.expect("sweep");
        assert_eq!((rep.open, rep.fetched, rep.became_final), (1, 1, 1));
        assert!(token(&s, key(&a, "young")).expect("read").expect("row").is_final);
        let rep = sweep(&mut s, &src, &p, &a, T0 + 3 * HOUR_MS).await.expect("sweep");
        assert_eq!(rep.open, 0, "nothing left to sweep");
    }
}
