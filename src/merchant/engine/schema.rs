//! The engine's tables (SPEC B5: payments, orders, attempts recorded before they are
//! sent; B7: the contract registry beside them) and the columns added since the first
//! schema, added to an older store when it is opened.

use crate::merchant::MerchantError;
use crate::store::Store;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mch_payments (
  payment_id TEXT PRIMARY KEY NOT NULL,
  idempotency_key TEXT UNIQUE NOT NULL,
  request TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT,
  created_at INTEGER NOT NULL,
  order_no TEXT,
  first_order TEXT,
  orders INTEGER NOT NULL DEFAULT 0,
  device_ip TEXT,
  debt_state TEXT,
  transaction_id TEXT,
  repayment_transaction_id TEXT,
  alerted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS mch_orders (
  out_trade_no TEXT PRIMARY KEY NOT NULL,
  payment_id TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mch_attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  payment_id TEXT NOT NULL,
  out_trade_no TEXT NOT NULL,
  kind TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  outcome TEXT,
  request_id TEXT,
  detail TEXT);
CREATE INDEX IF NOT EXISTS mch_attempts_payment ON mch_attempts(payment_id, id);
CREATE INDEX IF NOT EXISTS mch_attempts_order ON mch_attempts(out_trade_no, id);
";

/// Columns added after the first schema: added to an older store on open.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("mch_payments", "device_ip", "TEXT"),
    ("mch_payments", "debt_state", "TEXT"),
    ("mch_payments", "transaction_id", "TEXT"),
    ("mch_payments", "repayment_transaction_id", "TEXT"),
    ("mch_payments", "alerted", "INTEGER NOT NULL DEFAULT 0"),
    ("mch_attempts", "request_id", "TEXT"),
    ("mch_attempts", "detail", "TEXT"),
];

/// Creates the tables and adds any column an older store lacks.
pub(super) fn ensure(store: &Store) -> Result<(), MerchantError> {
    store.ensure_schema(SCHEMA)?;
    store.ensure_schema(crate::merchant::contracts::SCHEMA)?;
    for (table, column, decl) in ADDED_COLUMNS {
        let has: bool = store.conn().query_row(
            &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
            [column],
            |r| r.get(0),
        )?;
        if !has {
            store.conn().execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    Ok(())
}
