//! The end of a bill pull, in the transaction of its last page (SPEC R6, R9): tokens the
//! filter suspected of coming twice are confirmed against the store and merged (their
//! details kept once, the last `ChargeCount` kept), then a re-pull is diffed against the
//! previous generation of the same scope and day — added, changed and removed details are
//! recorded as late data — and the previous generation is deleted. All of it is SQL over
//! indexed keys and temporary tables, so memory does not grow with the day.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Transaction};

use super::PullState;
use crate::recon::error::ReconResult;

/// Finishes `st`'s generation; returns the details merged away as duplicates.
pub fn complete(tx: &Transaction<'_>, st: &PullState, now_ms: i64) -> ReconResult<u64> {
    let dups = merge_suspects(tx, st)?;
    if st.generation > 1 {
        diff_previous(tx, st)?;
    }
    tx.execute(
        "UPDATE recon_day_pulls SET complete = 1, completed_at_ms = ?3 WHERE scope_id = ?1 AND bill_date = ?2",
        params![st.scope_id, st.bill_date, now_ms],
    )?;
    Ok(dups)
}

const DAY: &str = "scope_id = ?1 AND bill_date = ?2 AND generation = ?3";

fn merge_suspects(tx: &Transaction<'_>, st: &PullState) -> ReconResult<u64> {
    let p = params![st.scope_id, st.bill_date, st.generation];
    let suspects: HashSet<String> = {
        let mut q =
            tx.prepare(&format!("SELECT DISTINCT biz_token FROM recon_day_tokens WHERE {DAY} AND suspect = 1"))?;
        let rows = q.query_map(p, |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    if suspects.is_empty() {
        return Ok(0);
    }
    // One pass over the day in arrival order: the first row of a token keeps it.
    let mut first: HashMap<String, i64> = HashMap::new();
    let mut merges: Vec<(i64, i64, Option<i64>, Option<String>)> = Vec::new();
    {
        let mut q = tx.prepare(&format!(
            "SELECT token_row, biz_token, charge_count, rule_id FROM recon_day_tokens WHERE {DAY} ORDER BY token_row"
        ))?;
        let mut rows = q.query(p)?;
        while let Some(r) = rows.next()? {
            let tok = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
            if !suspects.contains(tok) {
                continue;
            }
            let row: i64 = r.get(0)?;
            match first.get(tok) {
                Some(&keep) => merges.push((keep, row, r.get(2)?, r.get(3)?)),
                None => {
                    first.insert(tok.to_string(), row);
                }
            }
        }
    }
    let mut dups = 0u64;
    for (keep, dup, charge_count, rule_id) in merges {
        let total: i64 =
            tx.query_row("SELECT COUNT(*) FROM recon_day_details WHERE token_row = ?1", [dup], |r| r.get(0))?;
        let moved = tx.execute(
            "INSERT OR IGNORE INTO recon_day_details (token_row, seq_key, seq_kind, req_time_ms, sim, is_need_charge,
                charge_type, error_code, error_message)
             SELECT ?1, seq_key, seq_kind, req_time_ms, sim, is_need_charge, charge_type, error_code, error_message
             FROM recon_day_details WHERE token_row = ?2",
            params![keep, dup],
        )?;
        dups += (total as u64).saturating_sub(moved as u64);
        tx.execute("DELETE FROM recon_day_details WHERE token_row = ?1", [dup])?;
        tx.execute("DELETE FROM recon_day_tokens WHERE token_row = ?1", [dup])?;
        tx.execute(
            "UPDATE recon_day_tokens SET charge_count = ?2, rule_id = ?3 WHERE token_row = ?1",
            params![keep, charge_count, rule_id],
        )?;
    }
    tx.execute(&format!("UPDATE recon_day_tokens SET suspect = 0 WHERE {DAY} AND suspect = 1"), p)?;
    Ok(dups)
}

/// The JSON of one detail row `d` as late data records it.
fn detail_json(d: &str) -> String {
    let seq = super::seq_sql(d);
    format!(
        "json_object('BillDate', ?2, 'Seq', {seq}, 'ReqTime', {d}.req_time_ms, 'Sim', {d}.sim, 'IsNeedCharge',
            CASE WHEN {d}.is_need_charge IS NULL THEN NULL WHEN {d}.is_need_charge THEN json('true') ELSE json('false') END,
            'ChargeType', {d}.charge_type, 'ErrorCode', {d}.error_code, 'ErrorMessage', {d}.error_message)"
    )
}

fn diff_previous(tx: &Transaction<'_>, st: &PullState) -> ReconResult<()> {
    let p = params![st.scope_id, st.bill_date, st.generation];
    tx.execute_batch("DROP TABLE IF EXISTS temp.recon_old; DROP TABLE IF EXISTS temp.recon_new;")?;
    tx.execute(
        "CREATE TEMP TABLE recon_old AS SELECT biz_token AS tok, token_row AS row FROM recon_day_tokens
         WHERE scope_id = ?1 AND bill_date = ?2 AND generation < ?3",
        p,
    )?;
    tx.execute(&format!("CREATE TEMP TABLE recon_new AS SELECT biz_token AS tok, token_row AS row FROM recon_day_tokens WHERE {DAY}"), p)?;
    tx.execute_batch(
        "CREATE INDEX temp.recon_old_tok ON recon_old (tok); CREATE INDEX temp.recon_new_tok ON recon_new (tok);",
    )?;
    let insert = "INSERT OR REPLACE INTO recon_day_changes (scope_id, bill_date, generation, biz_token, seq_key, kind,
        before, after)";
    let differs = ["seq_kind", "req_time_ms", "sim", "is_need_charge", "charge_type", "error_code", "error_message"]
        .iter()
        .map(|c| format!("nd.{c} IS NOT od.{c}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let (nj, oj) = (detail_json("nd"), detail_json("od"));
    tx.execute(
        &format!(
            "{insert} SELECT ?1, ?2, ?3, n.tok, nd.seq_key, 'changed', {oj}, {nj}
             FROM recon_new n JOIN recon_old o ON o.tok = n.tok
             JOIN recon_day_details nd ON nd.token_row = n.row
             JOIN recon_day_details od ON od.token_row = o.row AND od.seq_key = nd.seq_key
             WHERE {differs}"
        ),
        p,
    )?;
    tx.execute(
        &format!(
            "{insert} SELECT ?1, ?2, ?3, n.tok, nd.seq_key, 'added', NULL, {nj}
             FROM recon_new n JOIN recon_day_details nd ON nd.token_row = n.row
             LEFT JOIN recon_old o ON o.tok = n.tok
             WHERE o.row IS NULL OR NOT EXISTS
                (SELECT 1 FROM recon_day_details od WHERE od.token_row = o.row AND od.seq_key = nd.seq_key)"
        ),
        p,
    )?;
    tx.execute(
        &format!(
            "{insert} SELECT ?1, ?2, ?3, o.tok, od.seq_key, 'removed', {oj}, NULL
             FROM recon_old o JOIN recon_day_details od ON od.token_row = o.row
             LEFT JOIN recon_new n ON n.tok = o.tok
             WHERE n.row IS NULL OR NOT EXISTS
                (SELECT 1 FROM recon_day_details nd WHERE nd.token_row = n.row AND nd.seq_key = od.seq_key)"
        ),
        p,
    )?;
    tx.execute_batch(
        "DELETE FROM recon_day_details WHERE token_row IN (SELECT row FROM temp.recon_old);
         DELETE FROM recon_day_tokens WHERE token_row IN (SELECT row FROM temp.recon_old);
         DROP TABLE temp.recon_old; DROP TABLE temp.recon_new;",
    )?;
    Ok(())
}
