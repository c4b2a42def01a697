//! Method 2, the daily bill (SPEC R5–R9). [`pull_day`] pulls `GetWeChatBillDetails` for one
//! Beijing day page by page (first cursor 0, then `NextCursor` while `HasNextPage`, R5),
//! committing each page in one transaction together with the cursor of the next page, so a
//! crash resumes where it stopped and a re-pull never duplicates: every `ChargeDetail` is
//! keyed by (BizToken, Seq) (R6). A re-pull of a complete day is a new generation; whatever
//! it adds, changes or removes is recorded as late data when it completes. A cursor that
//! comes back twice stops the pull and leaves the day incomplete. R5's time window is
//! checked by the caller with [`super::calendar::check_pull_window`]. R9: every row belongs
//! to a [`Scope`] (account and rule filter), so pulls of one day for all rules, for one
//! rule, or for two accounts never mix.
//!
//! Storage keeps memory flat whatever the size of the day: a token row per `WeChatBillDetail`
//! (numbered in arrival order) and its details in a table clustered by (token row, Seq), so
//! a page commit appends and a detail twice under one token is refused by its key. A token
//! seen twice in one pull is caught by a fixed-size filter ([`bloom`]); the rare hits are
//! merged when the pull completes ([`finish`]), which also diffs against the previous
//! generation in SQL.

mod bloom;
mod finish;

use std::collections::HashSet;
use std::future::Future;

use chrono::NaiveDate;
use rusqlite::{params, OptionalExtension, Transaction};

use super::calendar::format_date;
use super::error::{ReconError, ReconResult};
use super::ledger::seq_key;
use super::models::{parse_req_time, GetWeChatBillDetailsResponse, WeChatBillDetail};
use super::scope::Scope;
use crate::store::Store;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS recon_day_pulls (
    scope_id INTEGER NOT NULL,
    bill_date TEXT NOT NULL,
    generation INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    next_cursor INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    details INTEGER NOT NULL,
    started_at_ms INTEGER NOT NULL,
    completed_at_ms INTEGER,
    PRIMARY KEY (scope_id, bill_date)
);
CREATE TABLE IF NOT EXISTS recon_day_cursors (
    scope_id INTEGER NOT NULL,
    bill_date TEXT NOT NULL,
    generation INTEGER NOT NULL,
    cursor INTEGER NOT NULL,
    PRIMARY KEY (scope_id, bill_date, generation, cursor)
);
CREATE TABLE IF NOT EXISTS recon_day_tokens (
    token_row INTEGER PRIMARY KEY,
    scope_id INTEGER NOT NULL,
    bill_date TEXT NOT NULL,
    generation INTEGER NOT NULL,
    biz_token TEXT NOT NULL,
    rule_id TEXT,
    charge_count INTEGER,
    suspect INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS recon_day_tokens_day ON recon_day_tokens (scope_id, bill_date, generation);
CREATE TABLE IF NOT EXISTS recon_day_details (
    token_row INTEGER NOT NULL,
    seq_key TEXT NOT NULL,
    seq_kind INTEGER NOT NULL,
    req_time_ms INTEGER,
    sim TEXT,
    is_need_charge INTEGER,
    charge_type TEXT,
    error_code TEXT,
    error_message TEXT,
    PRIMARY KEY (token_row, seq_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recon_day_changes (
    scope_id INTEGER NOT NULL,
    bill_date TEXT NOT NULL,
    generation INTEGER NOT NULL,
    biz_token TEXT NOT NULL,
    seq_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    before TEXT,
    after TEXT,
    PRIMARY KEY (scope_id, bill_date, generation, biz_token, seq_key)
);
";

pub fn open(store: &Store) -> ReconResult<()> {
    store.ensure_schema(SCHEMA)?;
    Ok(())
}

/// How a detail's `Seq` is stored (it is not kept twice): it equals the row's `seq_key`, it
/// was null, or it was empty (then the key is positional, see [`seq_key`]).
pub const SEQ_IS_KEY: i64 = 0;
pub const SEQ_NULL: i64 = 1;
pub const SEQ_EMPTY: i64 = 2;

pub fn seq_kind(seq: Option<&str>) -> i64 {
    match seq {
        Some(s) if !s.is_empty() => SEQ_IS_KEY,
        Some(_) => SEQ_EMPTY,
        None => SEQ_NULL,
    }
}

/// The SQL expression of the `Seq` of detail row alias `d`.
pub fn seq_sql(d: &str) -> String {
    format!("(CASE {d}.seq_kind WHEN {SEQ_IS_KEY} THEN {d}.seq_key WHEN {SEQ_EMPTY} THEN '' END)")
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
    #[serde(skip)]
    pub scope_id: i64,
    pub account: String,
    pub bill_date: String,
    pub rule_key: String,
    pub generation: i64,
    pub complete: bool,
    pub next_cursor: u64,
    pub pages: i64,
    pub details: i64,
}

pub fn pull_state(store: &Store, scope: &Scope, date: &str) -> ReconResult<Option<PullState>> {
    let Some(scope_id) = scope.find(store)? else { return Ok(None) };
    Ok(store
        .conn()
        .query_row(
            "SELECT generation, complete, next_cursor, pages, details FROM recon_day_pulls
             WHERE scope_id = ?1 AND bill_date = ?2",
            params![scope_id, date],
            |r| {
                Ok(PullState {
                    scope_id,
                    account: scope.account.to_string(),
                    bill_date: date.to_string(),
                    rule_key: scope.rule_key().to_string(),
                    generation: r.get(0)?,
                    complete: r.get(1)?,
                    next_cursor: r.get::<_, i64>(2)? as u64,
                    pages: r.get(3)?,
                    details: r.get(4)?,
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
    pub account: String,
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
fn begin(store: &Store, scope: &Scope, date: &str, now_ms: i64) -> ReconResult<(PullState, bool)> {
    let scope_id = scope.id(store)?;
    match pull_state(store, scope, date)? {
        Some(s) if !s.complete => Ok((s, true)),
        Some(s) => {
            store.conn().execute(
                "UPDATE recon_day_pulls SET generation = ?3, complete = 0, next_cursor = 0, pages = 0, details = 0,
                    started_at_ms = ?4, completed_at_ms = NULL WHERE scope_id = ?1 AND bill_date = ?2",
                params![scope_id, date, s.generation + 1, now_ms],
            )?;
            Ok((
                PullState { generation: s.generation + 1, complete: false, next_cursor: 0, pages: 0, details: 0, ..s },
                false,
            ))
        }
        None => {
            store.conn().execute(
                "INSERT INTO recon_day_pulls (scope_id, bill_date, generation, complete, next_cursor, pages, details,
                    started_at_ms) VALUES (?1, ?2, 1, 0, 0, 0, 0, ?3)",
                params![scope_id, date, now_ms],
            )?;
            Ok((
                PullState {
                    scope_id,
                    account: scope.account.to_string(),
                    bill_date: date.into(),
                    rule_key: scope.rule_key().into(),
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
        .prepare("SELECT cursor FROM recon_day_cursors WHERE scope_id = ?1 AND bill_date = ?2 AND generation = ?3")?;
    let set = q
        .query_map(params![st.scope_id, st.bill_date, st.generation], |r| r.get::<_, i64>(0))?
        .map(|c| c.map(|c| c as u64))
        .collect::<rusqlite::Result<HashSet<u64>>>()?;
    Ok(set)
}

/// The filter of the tokens already stored by this generation (rebuilt when a pull resumes).
fn load_filter(store: &Store, st: &PullState) -> ReconResult<bloom::Bloom> {
    let mut f = bloom::Bloom::new();
    let mut q = store
        .conn()
        .prepare("SELECT biz_token FROM recon_day_tokens WHERE scope_id = ?1 AND bill_date = ?2 AND generation = ?3")?;
    let mut rows = q.query(params![st.scope_id, st.bill_date, st.generation])?;
    while let Some(r) = rows.next()? {
        f.insert(r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?);
    }
    Ok(f)
}

#[derive(Default)]
struct PageStats {
    details: u64,
    tokens: u64,
    duplicates: u64,
}

/// Commits one page and the cursor of the next one, atomically; the last page also
/// finishes the generation ([`finish::complete`]). `seen` is updated as tokens are written;
/// if the transaction is not committed the caller drops it (the next pull rebuilds it).
fn commit_page(
    tx: &Transaction<'_>,
    st: &PullState,
    cursor: u64,
    page: &BillPage,
    now_ms: i64,
    seen: &mut bloom::Bloom,
) -> ReconResult<PageStats> {
    let (date, gen) = (st.bill_date.as_str(), st.generation);
    let fresh = tx.execute(
        "INSERT INTO recon_day_cursors (scope_id, bill_date, generation, cursor) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO NOTHING",
        params![st.scope_id, date, gen, cursor as i64],
    )?;
    if fresh == 0 {
        return Err(ReconError::CursorLoop { date: date.into(), cursor });
    }
    let mut s = PageStats::default();
    let mut ins_tok = tx.prepare_cached(
        "INSERT INTO recon_day_tokens (scope_id, bill_date, generation, biz_token, rule_id, charge_count, suspect)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut ins = tx.prepare_cached(
        "INSERT OR IGNORE INTO recon_day_details (token_row, seq_key, seq_kind, req_time_ms, sim, is_need_charge,
            charge_type, error_code, error_message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (ti, w) in page.details.iter().enumerate() {
        let token = w
            .biz_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ReconError::Protocol(format!("WeChatBillDetails[{ti}].BizToken is null or empty")))?;
        s.tokens += 1;
        // Maybe seen before in this pull: stored as its own row, merged when the pull completes.
        let suspect = !seen.insert(token);
        ins_tok.execute(params![
            st.scope_id,
            date,
            gen,
            token,
            w.rule_id,
            w.charge_count.map(|c| c as i64),
            suspect
        ])?;
        let row = tx.last_insert_rowid();
        for (i, d) in w.charge_details.as_deref().unwrap_or(&[]).iter().enumerate() {
            s.details += 1;
            let n = ins.execute(params![
                row,
                seq_key(d.seq.as_deref(), i),
                seq_kind(d.seq.as_deref()),
                parse_req_time(d.req_time.as_deref()),
                d.sim,
                d.is_need_charge,
                d.charge_type,
                d.error_code,
                d.error_message
            ])?;
            if n == 0 {
                s.duplicates += 1; // the same (BizToken, Seq) twice under one token: kept once
            }
        }
    }
    tx.execute(
        "UPDATE recon_day_pulls SET next_cursor = ?3, pages = pages + 1, details = details + ?4
         WHERE scope_id = ?1 AND bill_date = ?2",
        params![st.scope_id, date, page.next_cursor as i64, s.details as i64],
    )?;
    if !page.has_next {
        s.duplicates += finish::complete(tx, st, now_ms)?;
    }
    Ok(s)
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
    scope: &Scope,
    date: NaiveDate,
    now_ms: i64,
    progress: &mut dyn FnMut(PullProgress),
) -> ReconResult<PullOutcome> {
    let date_s = format_date(date);
    let (st, resumed) = begin(store, scope, &date_s, now_ms)?;
    let mut seen = used_cursors(store, &st)?;
    let mut filter = load_filter(store, &st)?;
    let (tx_pages, mut rx) = tokio::sync::mpsc::channel::<Msg>(2);
    let fetch_date = date_s.clone();
    let fetch_rule = scope.rule.clone();
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
        account: st.account.clone(),
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
                let s = match commit_page(&tx, &st, cursor, &page, now_ms, &mut filter) {
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
        out.changes = change_counts(store, st.scope_id, &date_s, out.generation)?;
    }
    Ok(out)
}

/// The late-data changes recorded by generation `gen` of `date` in scope `scope_id`.
pub fn change_counts(store: &Store, scope_id: i64, date: &str, gen: i64) -> ReconResult<ChangeCounts> {
    let mut c = ChangeCounts::default();
    let mut q = store.conn().prepare(
        "SELECT kind, COUNT(*) FROM recon_day_changes WHERE scope_id = ?1 AND bill_date = ?2 AND generation = ?3
         GROUP BY kind",
    )?;
    let rows = q.query_map(params![scope_id, date, gen], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
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
