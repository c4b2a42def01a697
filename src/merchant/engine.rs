//! The durable deduction engine (SPEC B5, B4 asynchronous deduction): payments, orders
//! and attempts live in SQLite; every attempt is recorded *before* it is sent, so after a
//! crash an attempt without an answer is an unknown outcome and the order is queried
//! first. [`Engine::drive`] applies [`super::deduction::next_action`] until the payment is
//! final; [`Engine::submit`] is idempotent by key and deducts asynchronously. Time comes
//! from the core's [`Clock`] (wall time in Unix seconds, waits through the clock), so tests
//! run the 24 h window instantly on a [`crate::clock::ManualClock`].

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::client::WechatPayClient;
use super::deduction::{beijing_day, next_action, Action, OrderFacts, Outcome};
use super::models::{Amount, Business, TransactionRequest};
use super::MerchantError;
use crate::clock::{unix_s, Clock};
use crate::error::Secret;
use crate::store::{Store, StorePath};
use crate::wire::{PaymentRequest, PaymentState, PaymentStatus};

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
  orders INTEGER NOT NULL DEFAULT 0);
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
  outcome TEXT);
CREATE INDEX IF NOT EXISTS mch_attempts_payment ON mch_attempts(payment_id, id);
";

/// Merchant parameters of every deduction.
#[derive(Debug, Clone)]
pub struct DeductionParams {
    pub sp_appid: String,
    pub sp_mchid: String,
    pub sub_mchid: String,
    pub business_product_id: u32,
    pub business_scene_id: u32,
    pub description: String,
}

/// One attempt, as reported (one JSON line per attempt in `facepay backend deduct`).
#[derive(Debug, Clone, Serialize)]
pub struct AttemptReport {
    pub payment_id: String,
    pub out_trade_no: String,
    pub kind: &'static str,
    pub at: u64,
    pub outcome: String,
}

type Observer = Box<dyn Fn(&AttemptReport) + Send + Sync>;

/// A payment as loaded for one step: state, current order, last outcome, and the facts
/// (order count included).
type Loaded = (PaymentState, Option<String>, Option<Outcome>, OrderFacts);

pub struct Engine {
    store: Mutex<Store>,
    client: Arc<WechatPayClient>,
    clock: Arc<dyn Clock>,
    params: DeductionParams,
    active: Mutex<HashSet<String>>,
    observer: Mutex<Option<Observer>>,
}

impl Engine {
    pub fn open(
        path: &StorePath,
        client: Arc<WechatPayClient>,
        clock: Arc<dyn Clock>,
        params: DeductionParams,
    ) -> Result<Arc<Self>, MerchantError> {
        let store = Store::open(path)?;
        store.ensure_schema(SCHEMA)?;
        // Erased credentials (see `finish`) are overwritten on disk, not just unlinked.
        store.conn().execute_batch("PRAGMA secure_delete = ON;")?;
        Ok(Arc::new(Engine {
            store: Mutex::new(store),
            client,
            clock,
            params,
            active: Mutex::new(HashSet::new()),
            observer: Mutex::new(None),
        }))
    }

    /// The engine's clock (the reference backend's authinfo cache keeps time by it too).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Wall time in Unix seconds (the B5 policy's time).
    fn now(&self) -> u64 {
        unix_s(self.clock.wall())
    }

    /// Waits until the Unix second `at` on the engine's clock.
    async fn sleep_until(&self, at: u64) {
        let d = at.saturating_sub(self.now());
        if d > 0 {
            self.clock.sleep(std::time::Duration::from_secs(d)).await;
        }
    }

    /// Called after every attempt is answered (or found unanswerable).
    pub fn set_observer(&self, f: impl Fn(&AttemptReport) + Send + Sync + 'static) {
        *self.observer.lock() = Some(Box::new(f));
    }

    /// Records a payment (idempotent by key) and returns it; the same key with another
    /// body is refused.
    pub fn record(&self, req: &PaymentRequest) -> Result<(PaymentStatus, bool), MerchantError> {
        let body = serde_json::to_string(req)?;
        let st = self.store.lock();
        let c = st.conn();
        let existing: Option<(String, String, String)> = c
            .query_row(
                "SELECT payment_id, request, state FROM mch_payments WHERE idempotency_key = ?1",
                [&req.idempotency_key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        if let Some((id, stored, state)) = existing {
            if stored != body && stored != erased_form(req)? {
                return Err(MerchantError::Api {
                    status: 409,
                    code: "IDEMPOTENCY_KEY_REUSED".into(),
                    message: "same key, other body".into(),
                });
            }
            return Ok((PaymentStatus { payment_id: id, state: state.parse()? }, false));
        }
        let id = format!("P{}", &super::sign::nonce()[..15]);
        c.execute(
            "INSERT INTO mch_payments (payment_id, idempotency_key, request, state, created_at) VALUES (?1, ?2, ?3, 'PROCESSING', ?4)",
            params![id, req.idempotency_key, body, self.now() as i64],
        )?;
        Ok((PaymentStatus { payment_id: id, state: PaymentState::Processing }, true))
    }

    /// B4/B5: records the payment and deducts asynchronously; answers at once.
    pub fn submit(self: &Arc<Self>, req: &PaymentRequest) -> Result<PaymentStatus, MerchantError> {
        let (st, _) = self.record(req)?;
        if !st.state.is_final() {
            let me = self.clone();
            let id = st.payment_id.clone();
            tokio::spawn(async move {
                if let Err(e) = me.drive(&id).await {
                    tracing::warn!(payment_id = %id, error = %e, "deduction stopped");
                }
            });
        }
        Ok(st)
    }

    pub fn status(&self, payment_id: &str) -> Result<Option<(PaymentStatus, Option<String>)>, MerchantError> {
        let st = self.store.lock();
        Ok(st
            .conn()
            .query_row("SELECT state, reason FROM mch_payments WHERE payment_id = ?1", [payment_id], |r| {
                Ok((PaymentStatus { payment_id: payment_id.into(), state: r.get(0)? }, r.get(1)?))
            })
            .optional()?)
    }

    /// Payments not final yet (resumed after a restart).
    pub fn open_payments(&self) -> Result<Vec<String>, MerchantError> {
        let st = self.store.lock();
        let mut s = st.conn().prepare("SELECT payment_id FROM mch_payments WHERE state = 'PROCESSING'")?;
        let v = s.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(v)
    }

    /// Resumes every open payment in the background.
    pub fn resume_all(self: &Arc<Self>) -> Result<usize, MerchantError> {
        let open = self.open_payments()?;
        for id in &open {
            let me = self.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let _ = me.drive(&id).await;
            });
        }
        Ok(open.len())
    }

    /// Loads the last outcome and the facts of the current order.
    fn load(&self, payment_id: &str) -> Result<Loaded, MerchantError> {
        let st = self.store.lock();
        let c = st.conn();
        let (state, order_no, orders): (String, Option<String>, u32) =
            c.query_row("SELECT state, order_no, orders FROM mch_payments WHERE payment_id = ?1", [payment_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        let mut facts = OrderFacts { orders, ..Default::default() };
        let mut last = None;
        if let Some(o) = &order_no {
            facts.created_at = c
                .query_row("SELECT created_at FROM mch_orders WHERE out_trade_no = ?1", [o], |r| r.get::<_, i64>(0))?
                as u64;
            let mut s =
                c.prepare_cached("SELECT sent_at, outcome FROM mch_attempts WHERE out_trade_no = ?1 ORDER BY id")?;
            let rows = s.query_map([o], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Option<String>>(1)?)))?;
            let today = beijing_day(self.now());
            for row in rows {
                let (at, oc) = row?;
                let oc = oc.map(|c| Outcome::from_code(&c)).unwrap_or(Outcome::Unknown);
                match &oc {
                    Outcome::SystemError if beijing_day(at) == today => facts.system_errors_today += 1,
                    Outcome::State(super::models::TradeState::Notpay | super::models::TradeState::Userpaying) => {
                        facts.pending += 1
                    }
                    _ => {}
                }
                facts.rate_limits = if oc == Outcome::RateLimited { facts.rate_limits + 1 } else { 0 };
                facts.unknowns = if oc == Outcome::Unknown { facts.unknowns + 1 } else { 0 };
                last = Some(oc);
            }
        }
        Ok((state.parse()?, order_no, last, facts))
    }

    /// Drives one payment to its final state (B5). Safe to call again after a crash.
    pub async fn drive(&self, payment_id: &str) -> Result<PaymentState, MerchantError> {
        if !self.active.lock().insert(payment_id.to_string()) {
            return Ok(PaymentState::Processing);
        }
        let r = self.drive_inner(payment_id).await;
        self.active.lock().remove(payment_id);
        r
    }

    async fn drive_inner(&self, payment_id: &str) -> Result<PaymentState, MerchantError> {
        loop {
            let (state, order_no, last, facts) = self.load(payment_id)?;
            if state.is_final() {
                return Ok(state);
            }
            let now = self.now();
            match next_action(last.as_ref(), &facts, now) {
                Action::Paid => return self.finish(payment_id, PaymentState::Paid, None),
                Action::Failed(r) => return self.finish(payment_id, PaymentState::Failed, Some(r.as_code())),
                Action::Pay { new_order, at } => {
                    self.sleep_until(at).await;
                    let order = match (new_order, order_no) {
                        (false, Some(o)) => o,
                        _ => self.new_order(payment_id, facts.orders)?,
                    };
                    let attempt = self.begin(payment_id, &order, "pay")?;
                    let req = self.request(payment_id, &order)?;
                    let oc = classify(self.client.transaction(&req).await.map(|t| t.trade_state));
                    self.end(attempt, payment_id, &order, "pay", &oc)?;
                }
                Action::Query { at } => {
                    self.sleep_until(at).await;
                    let order = order_no.expect("an unknown outcome belongs to an order");
                    let attempt = self.begin(payment_id, &order, "query")?;
                    let p = &self.params;
                    let r = self.client.query(&order, &p.sp_mchid, &p.sub_mchid, p.business_product_id).await;
                    let oc = match r {
                        Ok(t) => Outcome::State(t.trade_state),
                        Err(MerchantError::Api { status: 404, .. }) => Outcome::OrderNotExist,
                        // A failed query leaves the deduction's outcome unknown.
                        Err(_) => Outcome::Unknown,
                    };
                    self.end(attempt, payment_id, &order, "query", &oc)?;
                }
            }
        }
    }

    fn finish(&self, payment_id: &str, s: PaymentState, reason: Option<String>) -> Result<PaymentState, MerchantError> {
        if let Some(r) = &reason {
            tracing::warn!(payment_id, reason = %r, "payment failed: operator attention");
        }
        // The credential is single-use: erased in the statement that makes the payment
        // final (as the terminal's outbox does), leaving only its hash for idempotency.
        let st = self.store.lock();
        let body: String =
            st.conn()
                .query_row("SELECT request FROM mch_payments WHERE payment_id = ?1", [payment_id], |r| r.get(0))?;
        let erased = erased_form(&serde_json::from_str(&body)?)?;
        st.conn().execute(
            "UPDATE mch_payments SET state = ?2, reason = ?3, request = ?4 WHERE payment_id = ?1",
            params![payment_id, s, reason, erased],
        )?;
        Ok(s)
    }

    /// The device that submitted a payment (S2: a device reads only its own).
    pub fn owner(&self, payment_id: &str) -> Result<Option<String>, MerchantError> {
        let st = self.store.lock();
        let body: Option<String> = st
            .conn()
            .query_row("SELECT request FROM mch_payments WHERE payment_id = ?1", [payment_id], |r| r.get(0))
            .optional()?;
        Ok(match body {
            Some(b) => Some(serde_json::from_str::<PaymentRequest>(&b)?.device_id),
            None => None,
        })
    }

    /// Uses `out_trade_no` as the first order number of a payment not started yet.
    pub fn set_first_order(&self, payment_id: &str, out_trade_no: &str) -> Result<(), MerchantError> {
        if !crate::config::is_out_trade_no(out_trade_no) {
            return Err(MerchantError::Config("out_trade_no: 1-32 characters of [A-Za-z0-9_-|*]".into()));
        }
        if self.order_no_used(out_trade_no, payment_id)? {
            return Err(MerchantError::Config(format!(
                "out_trade_no {out_trade_no} is already used by another payment ({})",
                crate::wire::CODE_ORDER_NO_USED
            )));
        }
        self.store.lock().conn().execute(
            "UPDATE mch_payments SET first_order = ?2 WHERE payment_id = ?1 AND orders = 0",
            params![payment_id, out_trade_no],
        )?;
        Ok(())
    }

    /// The payment recorded under an idempotency key, if any.
    pub fn payment_for_key(&self, idempotency_key: &str) -> Result<Option<String>, MerchantError> {
        let st = self.store.lock();
        Ok(st
            .conn()
            .query_row("SELECT payment_id FROM mch_payments WHERE idempotency_key = ?1", [idempotency_key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// True when another payment already holds `out_trade_no` (as an order or as its
    /// chosen first order): one order number never names two payments.
    pub fn order_no_used(&self, out_trade_no: &str, payment_id: &str) -> Result<bool, MerchantError> {
        let st = self.store.lock();
        let n: i64 = st.conn().query_row(
            "SELECT (SELECT COUNT(*) FROM mch_orders WHERE out_trade_no = ?1 AND payment_id != ?2)
                  + (SELECT COUNT(*) FROM mch_payments WHERE first_order = ?1 AND payment_id != ?2)",
            params![out_trade_no, payment_id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    fn new_order(&self, payment_id: &str, orders: u32) -> Result<String, MerchantError> {
        let mut st = self.store.lock();
        let first: Option<String> =
            st.conn()
                .query_row("SELECT first_order FROM mch_payments WHERE payment_id = ?1", [payment_id], |r| r.get(0))?;
        let order = match first {
            Some(f) if orders == 0 => f,
            _ => format!("{payment_id}_{}", orders + 1),
        };
        let tx = st.conn_mut().transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO mch_orders (out_trade_no, payment_id, created_at) VALUES (?1, ?2, ?3)",
            params![order, payment_id, self.now() as i64],
        )?;
        tx.execute(
            "UPDATE mch_payments SET order_no = ?2, orders = ?3 WHERE payment_id = ?1",
            params![payment_id, order, orders + 1],
        )?;
        tx.commit()?;
        Ok(order)
    }

    /// Records an attempt before it is sent.
    fn begin(&self, payment_id: &str, order: &str, kind: &str) -> Result<i64, MerchantError> {
        let st = self.store.lock();
        st.conn().execute(
            "INSERT INTO mch_attempts (payment_id, out_trade_no, kind, sent_at) VALUES (?1, ?2, ?3, ?4)",
            params![payment_id, order, kind, self.now() as i64],
        )?;
        Ok(st.conn().last_insert_rowid())
    }

    fn end(
        &self,
        attempt: i64,
        payment_id: &str,
        order: &str,
        kind: &'static str,
        oc: &Outcome,
    ) -> Result<(), MerchantError> {
        self.store
            .lock()
            .conn()
            .execute("UPDATE mch_attempts SET outcome = ?2 WHERE id = ?1", params![attempt, oc.as_code()])?;
        if let Some(f) = self.observer.lock().as_ref() {
            f(&AttemptReport {
                payment_id: payment_id.into(),
                out_trade_no: order.into(),
                kind,
                at: self.now(),
                outcome: oc.as_code(),
            });
        }
        Ok(())
    }

    fn request(&self, payment_id: &str, order: &str) -> Result<TransactionRequest, MerchantError> {
        let body: String = self.store.lock().conn().query_row(
            "SELECT request FROM mch_payments WHERE payment_id = ?1",
            [payment_id],
            |r| r.get(0),
        )?;
        let req: PaymentRequest = serde_json::from_str(&body)?;
        let p = &self.params;
        Ok(TransactionRequest {
            auth_code: Secret::new(req.face_token.expose()),
            sp_appid: p.sp_appid.clone(),
            sp_mchid: p.sp_mchid.clone(),
            sub_mchid: p.sub_mchid.clone(),
            amount: Amount { total: req.amount_fen, currency: "CNY".into(), pay_total: None, pay_currency: None },
            description: p.description.clone(),
            attach: payment_id.into(),
            out_trade_no: order.into(),
            business: Business { business_product_id: p.business_product_id, business_scene_id: p.business_scene_id },
        })
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

/// A request as stored once its payment is final: the credential replaced by its SHA-256
/// (so a late resubmission of the same body still finds the same payment).
fn erased_form(req: &PaymentRequest) -> Result<String, MerchantError> {
    use sha2::Digest;
    let t = req.face_token.expose();
    let hashed = if t.starts_with("erased:sha256:") {
        t.to_string()
    } else {
        format!("erased:sha256:{}", hex::encode(sha2::Sha256::digest(t.as_bytes())))
    };
    let r = PaymentRequest { face_token: Secret::new(hashed), ..req.clone() };
    Ok(serde_json::to_string(&r)?)
}

/// Maps a deduction answer onto the B5 table.
pub fn classify(r: Result<super::models::TradeState, MerchantError>) -> Outcome {
    match r {
        Ok(s) => Outcome::State(s),
        Err(MerchantError::Api { code, .. }) => match code.as_str() {
            "SYSTEM_ERROR" => Outcome::SystemError,
            "RATELIMIT_EXCEEDED" => Outcome::RateLimited,
            "PARAM_ERROR" => Outcome::ParamError,
            "INVALID_REQUEST" => Outcome::InvalidRequest,
            _ => Outcome::Other(code),
        },
        // Timeouts, dropped connections, forged or unverifiable answers: unknown.
        Err(_) => Outcome::Unknown,
    }
}
