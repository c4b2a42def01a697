//! Method 1, the BizToken ledger (SPEC R1–R4). A token is written the moment `DetectAuth`
//! returns it (R1) with its "DetectInfo fetched" flag; the sweeper (R2) refetches every
//! token that is not final, from issue + 2 h (R3) until final, inside the 72 h window in
//! which FaceID keeps results, and raises an alert for tokens near 72 h still unfetched.
//! Each fetch replaces the token's stored `LivenessDetail` items (all of them, R4) and its
//! charge count (items with `IsNeedCharge == true`). [`SweepPolicy`] is pure.

use std::future::Future;

use rusqlite::{params, OptionalExtension};

use super::error::{ReconError, ReconResult};
use super::models::{parse_req_time, DetectInfoText};
use crate::store::Store;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS recon_tokens (
    biz_token TEXT PRIMARY KEY NOT NULL,
    rule_id TEXT NOT NULL,
    issued_at_ms INTEGER NOT NULL,
    fetched INTEGER NOT NULL DEFAULT 0,
    is_final INTEGER NOT NULL DEFAULT 0,
    lost INTEGER NOT NULL DEFAULT 0,
    err_code INTEGER,
    fetch_count INTEGER NOT NULL DEFAULT 0,
    last_fetch_ms INTEGER,
    last_error TEXT,
    charges INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS recon_tokens_open ON recon_tokens (is_final, issued_at_ms);
CREATE TABLE IF NOT EXISTS recon_liveness (
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
    PRIMARY KEY (biz_token, seq_key)
);
CREATE INDEX IF NOT EXISTS recon_liveness_time ON recon_liveness (req_time_ms);
";

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

/// R1: store a token the moment it is issued. Idempotent: a second call changes nothing.
pub fn record_issued(store: &Store, biz_token: &str, rule_id: &str, issued_at_ms: i64) -> ReconResult<bool> {
    if biz_token.is_empty() {
        return Err(ReconError::invalid_arg("biz_token", "is empty"));
    }
    let n = store.conn().execute(
        "INSERT INTO recon_tokens (biz_token, rule_id, issued_at_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![biz_token, rule_id, issued_at_ms],
    )?;
    Ok(n == 1)
}

/// A token as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRow {
    pub biz_token: String,
    pub rule_id: String,
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
        biz_token: r.get(0)?,
        rule_id: r.get(1)?,
        issued_at_ms: r.get(2)?,
        fetched: r.get(3)?,
        is_final: r.get(4)?,
        lost: r.get(5)?,
        err_code: r.get(6)?,
        fetch_count: r.get(7)?,
        charges: r.get(8)?,
    })
}

const TOKEN_COLS: &str = "biz_token, rule_id, issued_at_ms, fetched, is_final, lost, err_code, fetch_count, charges";

pub fn token(store: &Store, biz_token: &str) -> ReconResult<Option<TokenRow>> {
    Ok(store
        .conn()
        .query_row(&format!("SELECT {TOKEN_COLS} FROM recon_tokens WHERE biz_token = ?1"), [biz_token], token_from_row)
        .optional()?)
}

/// Every token not yet final and not given up, oldest first.
pub fn open_tokens(store: &Store) -> ReconResult<Vec<TokenRow>> {
    let mut st = store.conn().prepare(&format!(
        "SELECT {TOKEN_COLS} FROM recon_tokens WHERE is_final = 0 AND lost = 0 ORDER BY issued_at_ms, biz_token"
    ))?;
    let rows = st.query_map([], token_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// R3 + R4: store one fetched `DetectInfo` (text). Replaces the token's details with the
/// fetched ones, recounts its charges and sets the final flag. Returns the new row.
pub fn store_detect_info(
    store: &mut Store,
    policy: &SweepPolicy,
    biz_token: &str,
    fetched_at_ms: i64,
    text: Option<&DetectInfoText>,
) -> ReconResult<TokenRow> {
    let row = token(store, biz_token)?
        .ok_or_else(|| ReconError::invalid_arg("biz_token", "is not in the ledger (R1: record it when issued)"))?;
    let err_code = text.and_then(|t| t.err_code);
    let is_final = policy.is_final(row.issued_at_ms, err_code, fetched_at_ms);
    let details = text.and_then(|t| t.liveness_detail.as_deref()).unwrap_or(&[]);
    let charges = details.iter().filter(|d| d.is_need_charge == Some(true)).count() as i64;
    let tx = store.conn_mut().transaction()?;
    tx.execute("DELETE FROM recon_liveness WHERE biz_token = ?1", [biz_token])?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT OR REPLACE INTO recon_liveness (biz_token, seq_key, seq, idx, req_time_ms, is_need_charge, errcode,
                errmsg, livestatus, comparestatus, sim, compare_lib_type, liveness_mode)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        for (i, d) in details.iter().enumerate() {
            ins.execute(params![
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
        "UPDATE recon_tokens SET fetched = 1, is_final = ?2, err_code = ?3, fetch_count = fetch_count + 1,
            last_fetch_ms = ?4, last_error = NULL, charges = ?5 WHERE biz_token = ?1",
        params![biz_token, is_final, err_code, fetched_at_ms, charges],
    )?;
    tx.commit()?;
    token(store, biz_token)?.ok_or_else(|| ReconError::Protocol("token vanished".into()))
}

/// R4: the charges of a token (items with `IsNeedCharge == true`).
pub fn charges(store: &Store, biz_token: &str) -> ReconResult<i64> {
    Ok(store.conn().query_row(
        "SELECT COUNT(*) FROM recon_liveness WHERE biz_token = ?1 AND is_need_charge = 1",
        [biz_token],
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

/// R2: one sweep at `now_ms`. Fetch errors are recorded on the token and retried next sweep.
pub async fn sweep<S: DetectInfoSource>(
    store: &mut Store,
    src: &S,
    policy: &SweepPolicy,
    now_ms: i64,
) -> ReconResult<SweepReport> {
    let open = open_tokens(store)?;
    let mut rep = SweepReport { open: open.len(), ..SweepReport::default() };
    for t in open {
        let hours_left = (t.issued_at_ms + policy.window_ms - now_ms).max(0) / HOUR_MS;
        // What to tell the operator about this token: nothing, "about to expire" or "lost".
        let alert_lost: Option<bool> = match policy.decide(t.issued_at_ms, t.is_final, now_ms) {
            SweepDecision::Done => None,
            SweepDecision::Wait { .. } => {
                rep.waiting += 1;
                None
            }
            SweepDecision::Lost => {
                store.conn().execute("UPDATE recon_tokens SET lost = 1 WHERE biz_token = ?1", [&t.biz_token])?;
                Some(true)
            }
            SweepDecision::Fetch { alert } => match src.detect_info(&t.biz_token, &t.rule_id).await {
                Ok(text) => {
                    rep.fetched += 1;
                    let row = store_detect_info(store, policy, &t.biz_token, now_ms, text.as_ref())?;
                    if row.is_final {
                        rep.became_final += 1;
                    }
                    (alert && !row.is_final).then_some(false)
                }
                Err(e) => {
                    rep.failed += 1;
                    let lost = e.api_code() == Some("InvalidParameterValue.BizTokenExpired");
                    store.conn().execute(
                        "UPDATE recon_tokens SET last_error = ?2, lost = ?3 WHERE biz_token = ?1",
                        params![t.biz_token, e.api_code().unwrap_or("network"), lost],
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
        assert!(record_issued(&s, "tok-1", "1", T0).expect("record"));
        assert!(!record_issued(&s, "tok-1", "1", T0 + 5).expect("second record is a no-op"));
        let t = token(&s, "tok-1").expect("read").expect("stored");
        assert_eq!((t.fetched, t.is_final, t.issued_at_ms), (false, false, T0));
        assert!(record_issued(&s, "", "1", T0).is_err());
        assert_eq!(open_tokens(&s).expect("open").len(), 1);
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
        record_issued(&s, "tok", "1", T0).expect("record");
        let text = DetectInfoText {
            err_code: Some(2016),
            liveness_detail: Some(vec![
                detail(Some("a"), Some(true), Some(2016), T0 + 1),
                detail(Some("b"), Some(false), Some(1001), T0 + 2),
                detail(None, None, None, T0 + 3),
                detail(Some("c"), Some(true), Some(0), T0 + 4),
            ]),
            ..DetectInfoText::default()
        };
        let row = store_detect_info(&mut s, &SweepPolicy::default(), "tok", T0 + HOUR_MS, Some(&text)).expect("store");
        assert_eq!(row.charges, 2);
        assert!(row.fetched && !row.is_final);
        assert_eq!(charges(&s, "tok").expect("charges"), 2);
        let n: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM recon_liveness WHERE biz_token='tok'", [], |r| r.get(0))
            .expect("n");
        assert_eq!(n, 4);
        // A later fetch replaces the details (no duplicates) and R3 makes it final.
        let row =
            store_detect_info(&mut s, &SweepPolicy::default(), "tok", T0 + 3 * HOUR_MS, Some(&text)).expect("again");
        assert!(row.is_final);
        assert_eq!(row.fetch_count, 2);
        let n: i64 = s.conn().query_row("SELECT COUNT(*) FROM recon_liveness", [], |r| r.get(0)).expect("n");
        assert_eq!(n, 4);
    }

    struct Fake(parking_lot::Mutex<Vec<String>>, Option<i64>);

    impl DetectInfoSource for Fake {
        async fn detect_info(&self, biz_token: &str, _rule: &str) -> ReconResult<Option<DetectInfoText>> {
            self.0.lock().push(biz_token.to_string());
            if biz_token == "gone" {
                return Err(ReconError::Api {
                    code: "InvalidParameterValue.BizTokenExpired".into(),
                    message: String::new(),
                    request_id: String::new(),
                });
            }
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
        record_issued(&s, "young", "1", T0).expect("record");
        record_issued(&s, "old", "1", T0 - 65 * HOUR_MS).expect("record");
        record_issued(&s, "gone", "1", T0 - 70 * HOUR_MS).expect("record");
        record_issued(&s, "dead", "1", T0 - 80 * HOUR_MS).expect("record");
        let src = Fake(parking_lot::Mutex::new(Vec::new()), Some(2016));
        let rep = sweep(&mut s, &src, &p, T0 + HOUR_MS).await.expect("sweep");
        assert_eq!(rep.waiting, 1, "the young token waits for its 2 h mark");
        assert_eq!(*src.0.lock(), vec!["gone".to_string(), "old".to_string()]);
        assert_eq!(rep.became_final, 1, "old is past 2 h: final");
        let lost: Vec<&str> = rep.alerts.iter().filter(|a| a.lost).map(|a| a.biz_token.as_str()).collect();
        assert_eq!(lost, vec!["dead", "gone"]);
        let rep = sweep(&mut s, &src, &p, T0 + 2 * HOUR_MS + 1).await.expect("sweep");
        assert_eq!((rep.open, rep.fetched, rep.became_final), (1, 1, 1));
        assert!(token(&s, "young").expect("read").expect("row").is_final);
        let rep = sweep(&mut s, &src, &p, T0 + 3 * HOUR_MS).await.expect("sweep");
        assert_eq!(rep.open, 0, "nothing left to sweep");
    }
}
