//! The engine's read side for operators, demo and bench summaries: per-payment details
//! (state, reason, B5.2 `debt_state`, transaction ids), the payments unresolved past the
//! B5.1 hour, and the counts of outcomes and states.

use serde::Serialize;

use super::Engine;
use crate::merchant::MerchantError;
use crate::wire::PaymentState;

/// One payment as an operator sees it (no personal data: no auth code, no user names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentDetails {
    pub payment_id: String,
    pub state: PaymentState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// B5.2 `NOT_DEBT` / `DEBT` / `REPAYMENT` of a paid K12 order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debt_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repayment_transaction_id: Option<String>,
    pub created_at: u64,
    pub order_no: Option<String>,
    pub attempts: u64,
    /// `Request-ID` of the last answered attempt (for WeChat Pay support).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_request_id: Option<String>,
}

const DETAILS: &str = "SELECT p.payment_id, p.state, p.reason, p.debt_state, p.transaction_id, p.repayment_transaction_id,
    p.created_at, p.order_no,
    (SELECT COUNT(*) FROM mch_attempts a WHERE a.payment_id = p.payment_id),
    (SELECT a.request_id FROM mch_attempts a WHERE a.payment_id = p.payment_id AND a.request_id IS NOT NULL ORDER BY a.id DESC LIMIT 1)
    FROM mch_payments p";

fn details_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PaymentDetails> {
    Ok(PaymentDetails {
        payment_id: r.get(0)?,
        state: r.get(1)?,
        reason: r.get(2)?,
        debt_state: r.get(3)?,
        transaction_id: r.get(4)?,
        repayment_transaction_id: r.get(5)?,
        created_at: r.get::<_, i64>(6)? as u64,
        order_no: r.get(7)?,
        attempts: r.get::<_, i64>(8)? as u64,
        last_request_id: r.get(9)?,
    })
}

impl Engine {
    /// One payment's details, `None` when there is no such payment.
    pub fn details(&self, payment_id: &str) -> Result<Option<PaymentDetails>, MerchantError> {
        use rusqlite::OptionalExtension;
        let st = self.store.lock();
        Ok(st.conn().query_row(&format!("{DETAILS} WHERE p.payment_id = ?1"), [payment_id], details_row).optional()?)
    }

    /// B5.1: payments still open `older_than_s` seconds after they were recorded (the
    /// operator's list; `facepay backend payments --unresolved` uses one hour).
    pub fn unresolved(&self, older_than_s: u64) -> Result<Vec<PaymentDetails>, MerchantError> {
        let cutoff = self.now().saturating_sub(older_than_s) as i64;
        let st = self.store.lock();
        let mut s = st
            .conn()
            .prepare(&format!("{DETAILS} WHERE p.state = 'PROCESSING' AND p.created_at <= ?1 ORDER BY p.created_at"))?;
        let v = s.query_map([cutoff], details_row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }

    /// Every payment's details, newest first, at most `limit`.
    pub fn recent(&self, limit: u32) -> Result<Vec<PaymentDetails>, MerchantError> {
        let st = self.store.lock();
        let mut s = st.conn().prepare(&format!("{DETAILS} ORDER BY p.created_at DESC LIMIT ?1"))?;
        let v = s.query_map([limit], details_row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }

    /// Attempts per outcome code (demo and bench summaries).
    pub fn outcome_counts(&self) -> Result<Vec<(String, u64)>, MerchantError> {
        let st = self.store.lock();
        let mut s = st
            .conn()
            .prepare("SELECT COALESCE(outcome, 'UNANSWERED'), COUNT(*) FROM mch_attempts GROUP BY 1 ORDER BY 1")?;
        let v = s.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?.collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }

    /// Every payment and its state.
    pub fn payment_states(&self) -> Result<Vec<(String, PaymentState)>, MerchantError> {
        let st = self.store.lock();
        let mut s = st.conn().prepare("SELECT payment_id, state FROM mch_payments")?;
        let v = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }

    /// `(deduction attempts, order queries)` so far.
    pub fn attempt_totals(&self) -> Result<(u64, u64), MerchantError> {
        let st = self.store.lock();
        Ok(st.conn().query_row(
            "SELECT COALESCE(SUM(kind = 'pay'), 0), COALESCE(SUM(kind = 'query'), 0) FROM mch_attempts",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }

    /// Final payments per state and reason.
    pub fn payment_counts(&self) -> Result<Vec<(String, u64)>, MerchantError> {
        let st = self.store.lock();
        let mut s = st
            .conn()
            .prepare("SELECT state || COALESCE(':' || reason, ''), COUNT(*) FROM mch_payments GROUP BY 1 ORDER BY 1")?;
        let v = s.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?.collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }
}
