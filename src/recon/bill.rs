//! Method 2, the daily bill (SPEC R5–R8). [`pull_day`] pulls `GetWeChatBillDetails` for one
//! Beijing day page by page (first cursor 0, then `NextCursor` while `HasNextPage`, R5),
//! committing each page in one transaction together with the cursor of the next page, so a
//! crash resumes where it stopped and a re-pull never duplicates: every `ChargeDetail` is
//! keyed by (BizToken, Seq) (R6). A re-pull of a complete day is a new generation; whatever
//! it adds, changes or removes is recorded as late data. A cursor that comes back twice
//! stops the pull and leaves the day incomplete. R5's time window is checked by the caller
//! with [`super::calendar::check_pull_window`].
//!
//! Storage is append-only in arrival order (rowid tables indexed by day only): the
//! (BizToken, Seq) uniqueness of a day is enforced through an in-memory index of the day,
//! rebuilt from the store when a pull starts, so a page commit writes a few sequential pages
//! instead of thousands of random index pages (a 1,000,000-detail day in seconds).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::NaiveDate;
use rusqlite::{params, OptionalExtension, Transaction};

use super::calendar::format_date;
use super::error::{ReconError, ReconResult};
use super::ledger::seq_key;
use super::models::{parse_req_time, GetWeChatBillDetailsResponse, WeChatBillDetail};
use crate::store::Store;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS recon_bill_pulls (
    bill_date TEXT NOT NULL,
    rule_key TEXT NOT NULL,
    generation INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    next_cursor INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    details INTEGER NOT NULL,
    started_at_ms INTEGER NOT NULL,
    completed_at_ms INTEGER,
    PRIMARY KEY (bill_date, rule_key)
);
CREATE TABLE IF NOT EXISTS recon_bill_cursors (
    bill_date TEXT NOT NULL,
    rule_key TEXT NOT NULL,
    generation INTEGER NOT NULL,
    cursor INTEGER NOT NULL,
    PRIMARY KEY (bill_date, rule_key, generation, cursor)
);
CREATE TABLE IF NOT EXISTS recon_bill_tokens (
    bill_date TEXT NOT NULL,
    biz_token TEXT NOT NULL,
    rule_id TEXT,
    charge_count INTEGER,
    generation INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS recon_bill_tokens_day ON recon_bill_tokens (bill_date);
CREATE TABLE IF NOT EXISTS recon_charge_details (
    biz_token TEXT NOT NULL,
    seq_key TEXT NOT NULL,
    bill_date TEXT NOT NULL,
    rule_id TEXT,
    seq TEXT,
    req_time_ms INTEGER,
    sim TEXT,
    is_need_charge INTEGER,
    charge_type TEXT,
    error_code TEXT,
    error_message TEXT,
    generation INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS recon_charge_details_day ON recon_charge_details (bill_date);
CREATE TABLE IF NOT EXISTS recon_bill_changes (
    bill_date TEXT NOT NULL,
    generation INTEGER NOT NULL,
    biz_token TEXT NOT NULL,
    seq_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    before TEXT,
    after TEXT,
    PRIMARY KEY (bill_date, generation, biz_token, seq_key)
);
";

pub fn open(store: &Store) -> ReconResult<()> {
    store.ensure_schema(SCHEMA)?;
    Ok(())
}

/// The pull state key of a rule filter (`""` = all rules).
pub fn rule_key(rule: Option<&str>) -> &str {
    rule.unwrap_or("")
}

/// One page, as the source answered it.
#[derive(Debug, Clone, Default)]
pub struct BillPage {
    pub has_next: bool,
    pub next_cursor: u64,
    pub details: Vec<WeChatBillDetail>,
}

/// Where pages come from (the FaceID client, or a fake in tests).
pub trait BillSource: Clone + Send + Sync + 'static {
    fn page(&self, date: &str, rule: Option<&str>, cursor: u64) -> impl Future<Output = ReconResult<BillPage>> + Send;
}

impl BillSource for super::client::FaceIdClient {
    async fn page(&self, date: &str, rule: Option<&str>, cursor: u64) -> ReconResult<BillPage> {
        page_from_response(self.get_bill_page(date, rule, cursor).await?)
    }
}

/// Validates one answer: `HasNextPage` must be present, and `NextCursor` too when it is true
/// (otherwise the day could be taken as complete, or the pull could not go on). A null
/// `WeChatBillDetails` is an empty page.
pub fn page_from_response(r: GetWeChatBillDetailsResponse) -> ReconResult<BillPage> {
    let has_next = r.has_next_page.ok_or_else(|| ReconError::Protocol("HasNextPage is missing".into()))?;
    let next_cursor = match (has_next, r.next_cursor) {
        (true, None) => return Err(ReconError::Protocol("HasNextPage is true but NextCursor is null".into())),
        (_, c) => c.unwrap_or(0),
    };
    Ok(BillPage { has_next, next_cursor, details: r.we_chat_bill_details.unwrap_or_default() })
}

/// The stored state of one day's pull.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PullState {
    pub bill_date: String,
    pub rule_key: String,
    pub generation: i64,
    pub complete: bool,
    pub next_cursor: u64,
    pub pages: i64,
    pub details: i64,
}

pub fn pull_state(store: &Store, date: &str, rule: Option<&str>) -> ReconResult<Option<PullState>> {
    Ok(store
        .conn()
        .query_row(
            "SELECT bill_date, rule_key, generation, complete, next_cursor, pages, details FROM recon_bill_pulls
             WHERE bill_date = ?1 AND rule_key = ?2",
            params![date, rule_key(rule)],
            |r| {
                Ok(PullState {
                    bill_date: r.get(0)?,
                    rule_key: r.get(1)?,
                    generation: r.get(2)?,
                    complete: r.get(3)?,
                    next_cursor: r.get::<_, i64>(4)? as u64,
                    pages: r.get(5)?,
                    details: r.get(6)?,
                })
            },
        )
        .optional()?)
}

/// What changed in a re-pull (late data).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChangeCounts {
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PullOutcome {
    pub date: String,
    pub rule_key: String,
    pub generation: i64,
    pub resumed: bool,
    pub pages: i64,
    pub details: i64,
    pub tokens_this_run: u64,
    pub duplicates: u64,
    pub changes: ChangeCounts,
}

/// Progress after each committed page.
#[derive(Debug, Clone, Copy)]
pub struct PullProgress {
    pub pages: i64,
    pub details: i64,
}

/// Starts or resumes the pull of `date`: returns the state to continue from and whether it resumed.
fn begin(store: &Store, date: &str, rule: Option<&str>, now_ms: i64) -> ReconResult<(PullState, bool)> {
    let rk = rule_key(rule);
    match pull_state(store, date, rule)? {
        Some(s) if !s.complete => Ok((s, true)),
        Some(s) => {
            store.conn().execute(
                "UPDATE recon_bill_pulls SET generation = ?3, complete = 0, next_cursor = 0, pages = 0, details = 0,
                    started_at_ms = ?4, completed_at_ms = NULL WHERE bill_date = ?1 AND rule_key = ?2",
                params![date, rk, s.generation + 1, now_ms],
            )?;
            Ok((
                PullState { generation: s.generation + 1, complete: false, next_cursor: 0, pages: 0, details: 0, ..s },
                false,
            ))
        }
        None => {
            store.conn().execute(
                "INSERT INTO recon_bill_pulls (bill_date, rule_key, generation, complete, next_cursor, pages, details, started_at_ms)
                 VALUES (?1, ?2, 1, 0, 0, 0, 0, ?3)",
                params![date, rk, now_ms],
            )?;
            Ok((
                PullState {
                    bill_date: date.into(),
                    rule_key: rk.into(),
                    generation: 1,
                    complete: false,
                    next_cursor: 0,
                    pages: 0,
                    details: 0,
                },
                false,
            ))
        }
    }
}

fn used_cursors(store: &Store, st: &PullState) -> ReconResult<HashSet<u64>> {
    let mut q = store
        .conn()
        .prepare("SELECT cursor FROM recon_bill_cursors WHERE bill_date = ?1 AND rule_key = ?2 AND generation = ?3")?;
    let set = q
        .query_map(params![st.bill_date, st.rule_key, st.generation], |r| r.get::<_, i64>(0))?
        .map(|c| c.map(|c| c as u64))
        .collect::<rusqlite::Result<HashSet<u64>>>()?;
    Ok(set)
}

type Fields =
    (Option<String>, Option<i64>, Option<String>, Option<bool>, Option<String>, Option<String>, Option<String>);

fn fields_json(bill_date: &str, f: &Fields) -> String {
    serde_json::json!({"BillDate": bill_date, "Seq": f.0, "ReqTime": f.1, "Sim": f.2, "IsNeedCharge": f.3,
        "ChargeType": f.4, "ErrorCode": f.5, "ErrorMessage": f.6})
    .to_string()
}

#[derive(Default)]
struct PageStats {
    details: u64,
    tokens: u64,
    duplicates: u64,
    changes: ChangeCounts,
}

/// The (BizToken, Seq) → rowid index of one bill day, in memory. Keys are 64-bit hashes;
/// a hash hit is confirmed against the stored row, so a collision can never merge two details.
#[derive(Default)]
pub(crate) struct DayIndex {
    details: HashMap<u64, i64>,
    tokens: HashMap<u64, i64>,
}

fn key_hash(a: &str, b: &str) -> u64 {
    let mut h = DefaultHasher::new();
    a.hash(&mut h);
    b.hash(&mut h);
    h.finish()
}

fn load_index(store: &Store, date: &str) -> ReconResult<DayIndex> {
    let mut idx = DayIndex::default();
    let mut q =
        store.conn().prepare("SELECT rowid, biz_token, seq_key FROM recon_charge_details WHERE bill_date = ?1")?;
    let mut rows = q.query([date])?;
    while let Some(r) = rows.next()? {
        let tok = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        let key = r.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?;
        idx.details.insert(key_hash(tok, key), r.get(0)?);
    }
    let mut q = store.conn().prepare("SELECT rowid, biz_token FROM recon_bill_tokens WHERE bill_date = ?1")?;
    let mut rows = q.query([date])?;
    while let Some(r) = rows.next()? {
        let tok = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        idx.tokens.insert(key_hash(tok, ""), r.get(0)?);
    }
    Ok(idx)
}

/// The stored row of `(token, key)` on `date`, through the index (confirmed) or, after a
/// hash collision, by a scan of the day.
fn find_detail(tx: &Transaction<'_>, idx: &DayIndex, date: &str, token: &str, key: &str) -> ReconResult<Option<i64>> {
    let Some(&rowid) = idx.details.get(&key_hash(token, key)) else { return Ok(None) };
    let mut q =
        tx.prepare_cached("SELECT biz_token = ?2 AND seq_key = ?3 FROM recon_charge_details WHERE rowid = ?1")?;
    if q.query_row(params![rowid, token, key], |r| r.get::<_, bool>(0)).optional()? == Some(true) {
        return Ok(Some(rowid));
    }
    let mut q = tx.prepare_cached(
        "SELECT rowid FROM recon_charge_details WHERE bill_date = ?1 AND biz_token = ?2 AND seq_key = ?3",
    )?;
    Ok(q.query_row(params![date, token, key], |r| r.get(0)).optional()?)
}

/// Commits one page and the cursor of the next one, atomically. `idx` is updated as rows
/// are written; if the transaction is not committed the caller drops `idx` (it is rebuilt
/// from the store by the next pull).
fn commit_page(
    tx: &Transaction<'_>,
    st: &PullState,
    cursor: u64,
    page: &BillPage,
    now_ms: i64,
    idx: &mut DayIndex,
) -> ReconResult<PageStats> {
    let (date, gen) = (st.bill_date.as_str(), st.generation);
    let fresh = tx.execute(
        "INSERT INTO recon_bill_cursors (bill_date, rule_key, generation, cursor) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        params![date, st.rule_key, gen, cursor as i64],
    )?;
    if fresh == 0 {
        return Err(ReconError::CursorLoop { date: date.into(), cursor });
    }
    let mut s = PageStats::default();
    let mut ins_tok = tx.prepare_cached(
        "INSERT INTO recon_bill_tokens (bill_date, biz_token, rule_id, charge_count, generation) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut upd_tok = tx.prepare_cached(
        "UPDATE recon_bill_tokens SET rule_id = ?2, charge_count = ?3, generation = ?4 WHERE rowid = ?1",
    )?;
    let mut ins = tx.prepare_cached(
        "INSERT INTO recon_charge_details (biz_token, seq_key, bill_date, rule_id, seq, req_time_ms, sim, is_need_charge,
            charge_type, error_code, error_message, generation)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let mut old = tx.prepare_cached(
        "SELECT generation, seq, req_time_ms, sim, is_need_charge, charge_type, error_code, error_message
         FROM recon_charge_details WHERE rowid = ?1",
    )?;
    let mut upd = tx.prepare_cached(
        "UPDATE recon_charge_details SET rule_id = ?2, seq = ?3, req_time_ms = ?4, sim = ?5, is_need_charge = ?6,
            charge_type = ?7, error_code = ?8, error_message = ?9, generation = ?10 WHERE rowid = ?1",
    )?;
    let mut change = tx.prepare_cached(
        "INSERT OR REPLACE INTO recon_bill_changes (bill_date, generation, biz_token, seq_key, kind, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (ti, w) in page.details.iter().enumerate() {
        let token = w
            .biz_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ReconError::Protocol(format!("WeChatBillDetails[{ti}].BizToken is null or empty")))?;
        s.tokens += 1;
        let cc = w.charge_count.map(|c| c as i64);
        match idx.tokens.get(&key_hash(token, "")) {
            Some(&rowid) => {
                upd_tok.execute(params![rowid, w.rule_id, cc, gen])?;
            }
            None => {
                ins_tok.execute(params![date, token, w.rule_id, cc, gen])?;
                idx.tokens.insert(key_hash(token, ""), tx.last_insert_rowid());
            }
        }
        for (i, d) in w.charge_details.as_deref().unwrap_or(&[]).iter().enumerate() {
            s.details += 1;
            let key = seq_key(d.seq.as_deref(), i);
            let f: Fields = (
                d.seq.clone(),
                parse_req_time(d.req_time.as_deref()),
                d.sim.clone(),
                d.is_need_charge,
                d.charge_type.clone(),
                d.error_code.clone(),
                d.error_message.clone(),
            );
            let Some(rowid) = find_detail(tx, idx, date, token, &key)? else {
                ins.execute(params![token, key, date, w.rule_id, f.0, f.1, f.2, f.3, f.4, f.5, f.6, gen])?;
                idx.details.insert(key_hash(token, &key), tx.last_insert_rowid());
                if gen > 1 {
                    s.changes.added += 1;
                    change.execute(params![date, gen, token, key, "added", None::<String>, fields_json(date, &f)])?;
                }
                continue;
            };
            let (ogen, ofields): (i64, Fields) = old.query_row([rowid], |r| {
                Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)))
            })?;
            if ogen == gen {
                s.duplicates += 1; // the same (BizToken, Seq) twice in one pull: kept once
                continue;
            }
            upd.execute(params![rowid, w.rule_id, f.0, f.1, f.2, f.3, f.4, f.5, f.6, gen])?;
            if ofields != f {
                s.changes.changed += 1;
                change.execute(params![
                    date,
                    gen,
                    token,
                    key,
                    "changed",
                    fields_json(date, &ofields),
                    fields_json(date, &f)
                ])?;
            }
        }
    }
    let complete = !page.has_next;
    tx.execute(
        "UPDATE recon_bill_pulls SET next_cursor = ?3, pages = pages + 1, details = details + ?4, complete = ?5,
            completed_at_ms = CASE WHEN ?5 THEN ?6 ELSE NULL END WHERE bill_date = ?1 AND rule_key = ?2",
        params![date, st.rule_key, page.next_cursor as i64, s.details as i64, complete, now_ms],
    )?;
    if complete && gen > 1 {
        s.changes.removed = remove_stale(tx, st)?;
    }
    Ok(s)
}

/// At the end of a re-pull: rows of this day (and rule filter) not seen again are gone.
fn remove_stale(tx: &Transaction<'_>, st: &PullState) -> ReconResult<u64> {
    let (date, gen, rk) = (st.bill_date.as_str(), st.generation, st.rule_key.as_str());
    let filter = "bill_date = ?1 AND generation < ?2 AND (?3 = '' OR rule_id = ?3)";
    let n = tx.execute(
        &format!(
            "INSERT OR REPLACE INTO recon_bill_changes (bill_date, generation, biz_token, seq_key, kind, before, after)
             SELECT bill_date, ?2, biz_token, seq_key, 'removed', json_object('ErrorCode', error_code, 'IsNeedCharge',
                CASE WHEN is_need_charge IS NULL THEN NULL WHEN is_need_charge THEN json('true') ELSE json('false') END,
                'ReqTime', req_time_ms), NULL FROM recon_charge_details WHERE {filter}"
        ),
        params![date, gen, rk],
    )?;
    tx.execute(&format!("DELETE FROM recon_charge_details WHERE {filter}"), params![date, gen, rk])?;
    tx.execute(&format!("DELETE FROM recon_bill_tokens WHERE {filter}"), params![date, gen, rk])?;
    Ok(n as u64)
}

enum Msg {
    Page { cursor: u64, page: BillPage },
    Failed(ReconError),
}

/// R5–R8: pulls (or resumes, or re-pulls) one day. Pages are fetched one ahead while the
/// previous one is written. Returns only when the day is complete; on any error the day is
/// left incomplete (and resumable) and the error is returned.
pub async fn pull_day<S: BillSource>(
    store: &mut Store,
    src: S,
    date: NaiveDate,
    rule: Option<String>,
    now_ms: i64,
    progress: &mut dyn FnMut(PullProgress),
) -> ReconResult<PullOutcome> {
    let date_s = format_date(date);
    let (st, resumed) = begin(store, &date_s, rule.as_deref(), now_ms)?;
    let mut seen = used_cursors(store, &st)?;
    let mut idx = load_index(store, &date_s)?;
    let (tx_pages, mut rx) = tokio::sync::mpsc::channel::<Msg>(2);
    let fetch_date = date_s.clone();
    let fetch_rule = rule.clone();
    let mut cursor = st.next_cursor;
    let fetcher = tokio::spawn(async move {
        loop {
            seen.insert(cursor);
            let page = match src.page(&fetch_date, fetch_rule.as_deref(), cursor).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx_pages.send(Msg::Failed(e)).await;
                    return;
                }
            };
            let (has_next, next) = (page.has_next, page.next_cursor);
            if has_next && seen.contains(&next) {
                let _ = tx_pages.send(Msg::Failed(ReconError::CursorLoop { date: fetch_date, cursor: next })).await;
                return;
            }
            if tx_pages.send(Msg::Page { cursor, page }).await.is_err() || !has_next {
                return;
            }
            cursor = next;
        }
    });
    let mut out = PullOutcome {
        date: date_s.clone(),
        rule_key: st.rule_key.clone(),
        generation: st.generation,
        resumed,
        pages: st.pages,
        details: st.details,
        tokens_this_run: 0,
        duplicates: 0,
        changes: ChangeCounts::default(),
    };
    let mut complete = false;
    let mut failure = None;
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Page { cursor, page } => {
                let tx = store.conn_mut().transaction()?;
                let s = match commit_page(&tx, &st, cursor, &page, now_ms, &mut idx) {
                    Ok(s) => s,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                tx.commit()?;
                out.pages += 1;
                out.details += s.details as i64;
                out.tokens_this_run += s.tokens;
                out.duplicates += s.duplicates;
                out.changes.added += s.changes.added;
                out.changes.changed += s.changes.changed;
                out.changes.removed += s.changes.removed;
                progress(PullProgress { pages: out.pages, details: out.details });
                if !page.has_next {
                    complete = true;
                    break;
                }
            }
            Msg::Failed(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(rx);
    fetcher.abort();
    if let Some(e) = failure {
        return Err(e);
    }
    if !complete {
        return Err(ReconError::Protocol("the page stream ended before the last page".into()));
    }
    if out.generation > 1 {
        // Report every change of this generation, including pages committed before a crash.
        out.changes = change_counts(store, &date_s, out.generation)?;
    }
    Ok(out)
}

/// The late-data changes recorded by generation `gen` of `date`.
pub fn change_counts(store: &Store, date: &str, gen: i64) -> ReconResult<ChangeCounts> {
    let mut c = ChangeCounts::default();
    let mut q = store.conn().prepare(
        "SELECT kind, COUNT(*) FROM recon_bill_changes WHERE bill_date = ?1 AND generation = ?2 GROUP BY kind",
    )?;
    let rows = q.query_map(params![date, gen], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (k, n) = row?;
        match k.as_str() {
            "added" => c.added = n as u64,
            "changed" => c.changed = n as u64,
            _ => c.removed = n as u64,
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests;
