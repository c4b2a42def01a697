//! The engine's reads and writes of one payment that must be few and atomic (SPEC B5:
//! every attempt recorded before it is sent; B5.2 and the final state recorded with the
//! answer that decides them). [`write_tx`] is `BEGIN IMMEDIATE … COMMIT` with both
//! statements prepared once (rusqlite's `Transaction` parses them anew each time);
//! [`open_attempt`] records a new order number and the attempt in one transaction, so an
//! order is never left without the attempt that was about to be sent; [`finalize`] makes a
//! payment final and erases its single-use credential in the same statement.

use rusqlite::{params, Connection};

use crate::merchant::deduction::{OrderFacts, Outcome};
use crate::merchant::models::Transaction;
use crate::merchant::MerchantError;
use crate::wire::{PaymentRequest, PaymentState};

/// One payment as loaded for one step: its row, and (while it is open) the last outcome
/// and the facts of its current order.
pub(super) struct Loaded {
    pub state: PaymentState,
    pub order_no: Option<String>,
    pub last: Option<Outcome>,
    pub facts: OrderFacts,
    /// The payment as the terminal sent it (JSON), and what a new order needs.
    pub inputs: Inputs,
}

/// What sending the next attempt needs from the payment's row.
pub(super) struct Inputs {
    pub request: String,
    pub device_ip: Option<String>,
    pub first_order: Option<String>,
}

impl Inputs {
    /// The payment request and the device IP it came from.
    pub fn parsed(&self) -> Result<(PaymentRequest, Option<String>), MerchantError> {
        Ok((serde_json::from_str(&self.request)?, self.device_ip.clone()))
    }
}

/// Runs `f` inside `BEGIN IMMEDIATE … COMMIT` (immediate: the write lock is taken at the
/// start, so a second process waits in the busy handler instead of failing to upgrade);
/// rolled back when `f` or the commit fails.
pub(super) fn write_tx<R>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> Result<R, MerchantError>,
) -> Result<R, MerchantError> {
    c.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let r = f(c).and_then(|v| {
        c.prepare_cached("COMMIT")?.execute([])?;
        Ok(v)
    });
    if r.is_err() && !c.is_autocommit() {
        // The error that matters is `r`'s; a failed rollback leaves SQLite to roll back
        // when the connection closes.
        let _ = c.execute_batch("ROLLBACK");
    }
    r
}

/// Records the attempt of `kind` about to be sent, under `order` — first opening it as the
/// payment's next order number when `new_order` holds the payment's current order count —
/// in one transaction (B5: recorded before it is sent). Returns the attempt's id.
pub(super) fn open_attempt(
    c: &Connection,
    payment_id: &str,
    order: &str,
    new_order: Option<u32>,
    kind: &str,
    now: u64,
) -> Result<i64, MerchantError> {
    write_tx(c, |c| {
        if let Some(orders) = new_order {
            c.prepare_cached(
                "INSERT OR IGNORE INTO mch_orders (out_trade_no, payment_id, created_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![order, payment_id, now as i64])?;
            c.prepare_cached("UPDATE mch_payments SET order_no = ?2, orders = ?3 WHERE payment_id = ?1")?
                .execute(params![payment_id, order, orders + 1])?;
        }
        c.prepare_cached("INSERT INTO mch_attempts (payment_id, out_trade_no, kind, sent_at) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![payment_id, order, kind, now as i64])?;
        Ok(c.last_insert_rowid())
    })
}

/// Makes the payment final (`s`, with `reason`) and erases its credential in the same
/// statement (single use: only its hash stays, for idempotency); with `paid`, the paid
/// order's B5.2 facts (`debt_state`, ids) go into the same statement. `req` is the
/// payment as stored when the caller holds it already; otherwise it is read.
pub(super) fn finalize(
    c: &Connection,
    payment_id: &str,
    s: PaymentState,
    reason: Option<&str>,
    req: Option<&PaymentRequest>,
    paid: Option<&Transaction>,
) -> Result<(), MerchantError> {
    let erased = match req {
        Some(r) => erased_form(r)?,
        None => {
            let body: String = c
                .prepare_cached("SELECT request FROM mch_payments WHERE payment_id = ?1")?
                .query_row([payment_id], |r| r.get(0))?;
            erased_form(&serde_json::from_str(&body)?)?
        }
    };
    match paid {
        Some(t) => c
            .prepare_cached(
                "UPDATE mch_payments SET state = ?2, reason = ?3, request = ?4, debt_state = ?5, transaction_id = ?6, repayment_transaction_id = ?7 WHERE payment_id = ?1",
            )?
            .execute(params![payment_id, s, reason, erased, t.debt_state, t.transaction_id, t.repayment_transaction_id])?,
        None => c
            .prepare_cached("UPDATE mch_payments SET state = ?2, reason = ?3, request = ?4 WHERE payment_id = ?1")?
            .execute(params![payment_id, s, reason, erased])?,
    };
    Ok(())
}

/// A request as stored once its payment is final: the credential replaced by its SHA-256
/// (so a late resubmission of the same body still finds the same payment).
pub(super) fn erased_form(req: &PaymentRequest) -> Result<String, MerchantError> {
    use sha2::Digest;
    let t = req.face_token.expose();
    let hashed = if t.starts_with("erased:sha256:") {
        t.to_string()
    } else {
        format!("erased:sha256:{}", hex::encode(sha2::Sha256::digest(t.as_bytes())))
    };
    let r = PaymentRequest { face_token: crate::error::Secret::new(hashed), ..req.clone() };
    Ok(serde_json::to_string(&r)?)
}
