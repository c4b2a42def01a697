//! Migration of a reconciliation store written before R9 (accounts and RuleIds in every
//! key). The old layout keyed ledger tokens by BizToken alone and bill details by date
//! alone, so it cannot tell whose data it holds: [`migrate`] is run once by the operator,
//! naming the account whose credentials filled the store. Ledger tokens and details move
//! over under that account (their RuleId was stored). A bill day moves over when it was
//! pulled completely with a single rule filter; a day pulled with several filters had its
//! details mixed in one set of rows, and an incomplete day proves nothing, so those are
//! dropped and listed, to be pulled again. All in one transaction: a crash leaves the old
//! store as it was. Until migrated, [`super::open_store`] refuses the store.

use rusqlite::{params, OptionalExtension};

use super::error::ReconResult;
use super::scope::{Account, Scope};
use crate::store::Store;

/// The `kv` key holding the recon schema version, and the version of this layout.
pub const SCHEMA_KEY: &str = "recon.schema";
pub const SCHEMA_VERSION: &str = "2";

const OLD_TABLES: [&str; 7] = [
    "recon_tokens",
    "recon_liveness",
    "recon_bill_pulls",
    "recon_bill_cursors",
    "recon_bill_tokens",
    "recon_charge_details",
    "recon_bill_changes",
];

/// Whether the store holds tables of the layout before R9.
pub fn needs_migration(store: &Store) -> ReconResult<bool> {
    let n: i64 = store.conn().query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('recon_tokens', 'recon_bill_pulls')",
        [],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// What a migration moved and what it dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MigrationReport {
    pub account: String,
    pub ledger_tokens: u64,
    pub ledger_details: u64,
    /// `(date, rule filter)` of the bill days moved over ("" = all rules).
    pub days_moved: Vec<(String, String)>,
    /// `(date, why)` of the bill days dropped: pull them again.
    pub days_dropped: Vec<(String, String)>,
}

/// One row of the old pull table: date, filters pulled that day, rule key, complete,
/// generation, pages, details, started, completed.
type OldPull = (String, i64, String, bool, i64, i64, i64, i64, Option<i64>);

fn table_exists(store: &Store, name: &str) -> ReconResult<bool> {
    Ok(store
        .conn()
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Moves an old store's data under `account` (see the module comment). A store that needs
/// no migration is left alone (an empty report).
pub fn migrate(store: &mut Store, account: &Account) -> ReconResult<MigrationReport> {
    let mut rep = MigrationReport { account: account.to_string(), ..Default::default() };
    if !needs_migration(store)? {
        return Ok(rep);
    }
    for t in OLD_TABLES {
        if !table_exists(store, t)? {
            // A partly created old store: give it the missing old tables, empty.
            store.conn().execute_batch(V1_SCHEMA)?;
            break;
        }
    }
    super::create_tables(store)?;
    let acct = account.as_str();
    let days: Vec<OldPull> = {
        let mut q = store.conn().prepare(
            "SELECT bill_date, COUNT(*) OVER (PARTITION BY bill_date), rule_key, complete, generation, pages, details,
                started_at_ms, completed_at_ms FROM recon_bill_pulls ORDER BY bill_date, rule_key",
        )?;
        let rows = q.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let tx = store.conn_mut().transaction()?;
    rep.ledger_tokens = tx.execute(
        "INSERT INTO recon_ledger_tokens (account, rule_id, biz_token, extra, issued_at_ms, fetched, is_final, lost,
            err_code, fetch_count, last_fetch_ms, last_error, charges)
         SELECT ?1, rule_id, biz_token, NULL, issued_at_ms, fetched, is_final, lost, err_code, fetch_count,
            last_fetch_ms, last_error, charges FROM recon_tokens",
        [acct],
    )? as u64;
    rep.ledger_details = tx.execute(
        "INSERT INTO recon_ledger_details (account, rule_id, biz_token, seq_key, seq, idx, req_time_ms, is_need_charge,
            errcode, errmsg, livestatus, comparestatus, sim, compare_lib_type, liveness_mode)
         SELECT ?1, t.rule_id, l.biz_token, l.seq_key, l.seq, l.idx, l.req_time_ms, l.is_need_charge, l.errcode,
            l.errmsg, l.livestatus, l.comparestatus, l.sim, l.compare_lib_type, l.liveness_mode
         FROM recon_liveness l JOIN recon_tokens t ON t.biz_token = l.biz_token",
        [acct],
    )? as u64;
    tx.execute_batch("CREATE INDEX recon_migrate_tok ON recon_day_tokens (scope_id, bill_date, biz_token);")?;
    for (date, filters, rule_key, complete, gen, pages, details, started, completed) in days {
        if filters > 1 {
            rep.days_dropped.push((date, "pulled with several rule filters: its details were mixed".into()));
            continue;
        }
        if !complete {
            rep.days_dropped.push((date, "incomplete".into()));
            continue;
        }
        let scope = Scope::new(account.clone(), (!rule_key.is_empty()).then_some(rule_key.as_str()));
        tx.execute(
            "INSERT INTO recon_scopes (account, rule_key) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![acct, rule_key],
        )?;
        let scope_id: i64 = tx.query_row(
            "SELECT scope_id FROM recon_scopes WHERE account = ?1 AND rule_key = ?2",
            params![acct, scope.rule_key()],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO recon_day_pulls (scope_id, bill_date, generation, complete, next_cursor, pages, details,
                started_at_ms, completed_at_ms) VALUES (?1, ?2, ?3, 1, 0, ?4, ?5, ?6, ?7)",
            params![scope_id, date, gen, pages, details, started, completed],
        )?;
        tx.execute(
            "INSERT INTO recon_day_tokens (scope_id, bill_date, generation, biz_token, rule_id, charge_count)
             SELECT ?1, bill_date, ?3, biz_token, rule_id, charge_count FROM recon_bill_tokens WHERE bill_date = ?2
             ORDER BY rowid",
            params![scope_id, date, gen],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO recon_day_details (token_row, seq_key, seq_kind, req_time_ms, sim, is_need_charge,
                charge_type, error_code, error_message)
             SELECT t.token_row, d.seq_key, CASE WHEN d.seq IS NULL THEN 1 WHEN d.seq = '' THEN 2 ELSE 0 END,
                d.req_time_ms, d.sim, d.is_need_charge, d.charge_type,
                d.error_code, d.error_message
             FROM recon_charge_details d JOIN recon_day_tokens t
                ON t.scope_id = ?1 AND t.bill_date = d.bill_date AND t.biz_token = d.biz_token
             WHERE d.bill_date = ?2 ORDER BY t.token_row",
            params![scope_id, date],
        )?;
        tx.execute(
            "INSERT INTO recon_day_changes (scope_id, bill_date, generation, biz_token, seq_key, kind, before, after)
             SELECT ?1, bill_date, generation, biz_token, seq_key, kind, before, after FROM recon_bill_changes
             WHERE bill_date = ?2",
            params![scope_id, date],
        )?;
        rep.days_moved.push((date, rule_key));
    }
    tx.execute_batch("DROP INDEX recon_migrate_tok;")?;
    for t in OLD_TABLES {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {t};"))?;
    }
    tx.execute(
        "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![SCHEMA_KEY, SCHEMA_VERSION],
    )?;
    tx.commit()?;
    tracing::info!(
        moved = rep.days_moved.len(),
        dropped = rep.days_dropped.len(),
        "reconciliation store migrated (R9)"
    );
    Ok(rep)
}

/// The layout before R9, kept to recognise and migrate old stores (and to build one in tests).
pub const V1_SCHEMA: &str = "
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

#[cfg(test)]
mod tests;
