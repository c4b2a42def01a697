//! The durable deduction engine (SPEC B5, B4 asynchronous deduction): payments, orders
//! and attempts live in SQLite; every attempt is recorded *before* it is sent, so after a
//! crash an attempt without an answer is an unknown outcome and the order is queried
//! first. [`Engine::drive`] applies [`super::deduction::next_action`] until the payment is
//! final; [`Engine::submit`] is idempotent by key and deducts asynchronously. Time comes
//! from the core's [`Clock`] (wall time in Unix seconds, waits through the clock), so tests
//! run the 24 h window instantly on a [`crate::clock::ManualClock`]. B5.1: every attempt
//! keeps the answer's `Request-ID` and error `detail`; a payment unresolved after an hour
//! is logged once as an operator alert and listed by [`Engine::unresolved`]. B5.2:
//! `debt_state`, `transaction_id` and `repayment_transaction_id` of a paid order are
//! recorded. B7: a deduction for a user whose contract is known to be terminated is refused
//! before it is sent (`CONTRACT_TERMINATED`). The deduction's `scene_info.device_ip` is the
//! terminal's address as the backend saw the connection ([`Engine::record_from`]), or the
//! configured `device_ip` for payments recorded without one (the CLI, the in-process demo).

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::client::{Answered, WechatPayClient};
use super::deduction::{beijing_day, is_paid, next_action, Action, OrderFacts, Outcome};
use super::models::{Amount, Business, SceneInfo, TradeState, Transaction, TransactionRequest};
use super::MerchantError;
use crate::clock::{unix_s, Clock};
use crate::error::Secret;
use crate::store::{Store, StorePath};
use crate::wire::{PaymentRequest, PaymentState, PaymentStatus};
use rows::{erased_form, Inputs, Loaded};

mod report;
mod rows;
mod schema;
pub use report::PaymentDetails;

/// Merchant parameters of every deduction.
#[derive(Debug, Clone)]
pub struct DeductionParams {
    pub sp_appid: String,
    pub sp_mchid: String,
    pub sub_mchid: String,
    pub business_product_id: u32,
    pub business_scene_id: u32,
    pub description: String,
    /// `scene_info.device_ip` of payments recorded without the terminal's address.
    pub device_ip: String,
    pub sub_appid: Option<String>,
    pub goods_tag: Option<String>,
}

/// One attempt, as reported (one JSON line per attempt in `facepay backend deduct`).
#[derive(Debug, Clone, Serialize)]
pub struct AttemptReport {
    pub payment_id: String,
    pub out_trade_no: String,
    pub kind: &'static str,
    pub at: u64,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// What one answered attempt brings besides its outcome.
#[derive(Debug, Default)]
struct AttemptInfo {
    request_id: Option<String>,
    detail: Option<String>,
    paid: Option<Transaction>,
}

type Observer = Box<dyn Fn(&AttemptReport) + Send + Sync>;

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
        schema::ensure(&store)?;
        // Erased credentials (see `finish`) are overwritten on disk, not just unlinked.
        store.conn().execute_batch("PRAGMA secure_delete = ON;")?;
        // Every statement of a deduction is prepared once and reused (`prepare_cached`):
        // parsing SQL anew was ~4 % of a deduction's client CPU (bench/peers/run.sh).
        store.conn().set_prepared_statement_cache_capacity(64);
        // The query planner's stability guarantee: a plan never depends on the values bound.
        // Without it the bundled SQLite (STAT4) prepares `… WHERE out_trade_no = ?1 ORDER
        // BY id` anew on every run, ~10 µs each time (bench/peers/run.sh).
        store.conn().set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        Ok(Arc::new(Engine {
            store: Mutex::new(store),
            client,
            clock,
            params,
            active: Mutex::new(HashSet::new()),
            observer: Mutex::new(None),
        }))
    }

    /// Runs `f` on the engine's store (the B7 contract registry lives beside the payments).
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.store.lock())
    }

    /// The engine's clock (the reference backend's authinfo cache keeps time by it too).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Wall time in Unix seconds (the B5 policy's time).
    fn now(&self) -> u64 {
        unix_s(self.clock.wall())
    }

    /// Waits until the Unix second `at` on the engine's clock; whether it waited.
    async fn sleep_until(&self, at: u64) -> bool {
        let d = at.saturating_sub(self.now());
        if d > 0 {
            self.clock.sleep(std::time::Duration::from_secs(d)).await;
        }
        d > 0
    }

    /// Called after every attempt is answered (or found unanswerable).
    pub fn set_observer(&self, f: impl Fn(&AttemptReport) + Send + Sync + 'static) {
        *self.observer.lock() = Some(Box::new(f));
    }

    /// Records a payment (idempotent by key) and returns it; the same key with another
    /// body is refused. `scene_info.device_ip` will be the configured `device_ip`.
    pub fn record(&self, req: &PaymentRequest) -> Result<(PaymentStatus, bool), MerchantError> {
        self.record_from(req, None)
    }

    /// [`Engine::record`] for a payment that arrived from `device_ip` (the terminal's
    /// address as the backend saw the connection: `scene_info.device_ip`).
    pub fn record_from(
        &self,
        req: &PaymentRequest,
        device_ip: Option<std::net::IpAddr>,
    ) -> Result<(PaymentStatus, bool), MerchantError> {
        let body = serde_json::to_string(req)?;
        let st = self.store.lock();
        let c = st.conn();
        // A new key (the common case) is one statement; a key seen before inserts nothing
        // and is read back below.
        let id = format!("P{}", &super::sign::nonce()[..15]);
        let inserted = c
            .prepare_cached("INSERT INTO mch_payments (payment_id, idempotency_key, request, state, created_at, device_ip) VALUES (?1, ?2, ?3, 'PROCESSING', ?4, ?5) ON CONFLICT(idempotency_key) DO NOTHING")?
            .execute(params![id, req.idempotency_key, body, self.now() as i64, device_ip.map(|i| i.to_string())])?;
        if inserted == 1 {
            return Ok((PaymentStatus { payment_id: id, state: PaymentState::Processing }, true));
        }
        let existing: Option<(String, String, String)> = c
            .prepare_cached("SELECT payment_id, request, state FROM mch_payments WHERE idempotency_key = ?1")?
            .query_row([&req.idempotency_key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((id, stored, state)) = existing else {
            return Err(MerchantError::Unknown("payment neither recorded nor found by its key".into()));
        };
        {
            if stored != body && stored != erased_form(req)? {
                return Err(MerchantError::Api {
                    status: 409,
                    code: "IDEMPOTENCY_KEY_REUSED".into(),
                    message: "same key, other body".into(),
                    detail: None,
                    request_id: None,
                });
            }
            Ok((PaymentStatus { payment_id: id, state: state.parse()? }, false))
        }
    }

    /// Whether a payment with this idempotency key is recorded.
    pub fn knows_key(&self, idempotency_key: &str) -> Result<bool, MerchantError> {
        let st = self.store.lock();
        let n: i64 = st
            .conn()
            .prepare_cached("SELECT COUNT(*) FROM mch_payments WHERE idempotency_key = ?1")?
            .query_row([idempotency_key], |r| r.get(0))?;
        Ok(n > 0)
    }

    /// B4/B5: records the payment and deducts asynchronously; answers at once.
    pub fn submit(self: &Arc<Self>, req: &PaymentRequest) -> Result<PaymentStatus, MerchantError> {
        self.submit_from(req, None)
    }

    /// [`Engine::submit`] for a payment that arrived from `device_ip`.
    pub fn submit_from(
        self: &Arc<Self>,
        req: &PaymentRequest,
        device_ip: Option<std::net::IpAddr>,
    ) -> Result<PaymentStatus, MerchantError> {
        let (st, _) = self.record_from(req, device_ip)?;
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
        let found = st
            .conn()
            .prepare_cached("SELECT state, reason FROM mch_payments WHERE payment_id = ?1")?
            .query_row([payment_id], |r| {
                Ok((PaymentStatus { payment_id: payment_id.into(), state: r.get(0)? }, r.get(1)?))
            })
            .optional()?;
        Ok(found)
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

    /// Loads the payment's row and, while it is open, the last outcome and the facts of
    /// its current order.
    fn load(&self, payment_id: &str) -> Result<Loaded, MerchantError> {
        let st = self.store.lock();
        let c = st.conn();
        let (state, order_no, orders, inputs): (String, Option<String>, u32, Inputs) = c
            .prepare_cached(
                "SELECT state, order_no, orders, request, device_ip, first_order FROM mch_payments WHERE payment_id = ?1",
            )?
            .query_row([payment_id], |r| {
                let inputs = Inputs { request: r.get(3)?, device_ip: r.get(4)?, first_order: r.get(5)? };
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, inputs))
            })?;
        let state: PaymentState = state.parse()?;
        let mut facts = OrderFacts { orders, ..Default::default() };
        let mut last = None;
        if let Some(o) = order_no.as_ref().filter(|_| !state.is_final()) {
            facts.created_at = c
                .prepare_cached("SELECT created_at FROM mch_orders WHERE out_trade_no = ?1")?
                .query_row([o], |r| r.get::<_, i64>(0))? as u64;
            let mut s = c.prepare_cached(
                "SELECT sent_at, kind = 'pay', outcome FROM mch_attempts WHERE out_trade_no = ?1 ORDER BY id",
            )?;
            let rows = s.query_map([o], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, bool>(1)?, r.get::<_, Option<String>>(2)?))
            })?;
            let today = beijing_day(self.now());
            let mut last_pay = None;
            let mut last_is_pay = false;
            for row in rows {
                let (at, is_pay, oc) = row?;
                let oc = oc.map(|c| Outcome::from_code(&c)).unwrap_or(Outcome::Unknown);
                if let Some(prev) = &last {
                    facts.retried |= Outcome::retried_or_unknown(prev);
                }
                match &oc {
                    Outcome::SystemError if beijing_day(at) == today => facts.system_errors_today += 1,
                    Outcome::State(TradeState::Notpay | TradeState::Userpaying) => facts.pending += 1,
                    _ => {}
                }
                facts.rate_limits = if oc == Outcome::RateLimited { facts.rate_limits + 1 } else { 0 };
                facts.unavailable = if oc == Outcome::Unavailable { facts.unavailable + 1 } else { 0 };
                facts.unknowns = if oc == Outcome::Unknown { facts.unknowns + 1 } else { 0 };
                if is_pay {
                    last_pay = Some(oc.clone());
                }
                last_is_pay = is_pay;
                last = Some(oc);
            }
            facts.after_invalid = !last_is_pay && last_pay == Some(Outcome::InvalidRequest);
        }
        Ok(Loaded { state, order_no, last, facts, inputs })
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
            let Loaded { state, order_no, last, facts, inputs } = self.load(payment_id)?;
            if state.is_final() {
                return Ok(state);
            }
            let now = self.now();
            match next_action(last.as_ref(), &facts, now) {
                Action::Paid => return self.finish(payment_id, PaymentState::Paid, None),
                Action::Failed(r) => return self.finish(payment_id, PaymentState::Failed, Some(r.as_code())),
                Action::Pay { new_order, at } => {
                    // After a wait the row is read again (as it is then, not as it was).
                    let inputs = if self.sleep_until(at).await { self.inputs(payment_id)? } else { inputs };
                    let req = inputs.parsed()?;
                    // B7: refused before it is sent; a state not known is no reason.
                    let known =
                        super::contracts::state(self.store.lock().conn(), &req.0.organization_id, &req.0.out_user_id)?;
                    if known.as_deref() == Some(super::contracts::STATE_TERMINATED) {
                        let code = super::contracts::CODE_CONTRACT_TERMINATED.to_string();
                        return self.finish(payment_id, PaymentState::Failed, Some(code));
                    }
                    let (order, opens) = match (new_order, order_no) {
                        (false, Some(o)) => (o, None),
                        _ => (new_order_no(payment_id, facts.orders, inputs.first_order), Some(facts.orders)),
                    };
                    let attempt = self.begin(payment_id, &order, opens, "pay")?;
                    let (oc, info) = classify(self.client.transaction(&self.request(payment_id, &order, &req)).await);
                    self.end(attempt, payment_id, &order, "pay", &oc, info, Some(&req.0))?;
                }
                Action::Query { at } => {
                    self.sleep_until(at).await;
                    self.alert_if_unresolved(payment_id)?;
                    let order = order_no.expect("an unknown outcome belongs to an order");
                    let attempt = self.begin(payment_id, &order, None, "query")?;
                    let p = &self.params;
                    let r = self.client.query(&order, &p.sp_mchid, &p.sub_mchid, p.business_product_id).await;
                    let (oc, info) = match r {
                        // B5.1: "no such order" only by its code, never by a bare 404.
                        Err(MerchantError::Api { code, request_id, .. }) if code == "ORDER_NOT_EXIST" => {
                            (Outcome::OrderNotExist, AttemptInfo { request_id, ..Default::default() })
                        }
                        // A failed query leaves the deduction's outcome unknown.
                        Err(MerchantError::Api { request_id, detail, .. }) => {
                            (Outcome::Unknown, AttemptInfo { request_id, detail, paid: None })
                        }
                        Err(_) => (Outcome::Unknown, AttemptInfo::default()),
                        ok => classify(ok),
                    };
                    self.end(attempt, payment_id, &order, "query", &oc, info, None)?;
                }
            }
        }
    }

    /// B5.1: the first time a payment is still open an hour after it was recorded, one
    /// operator alert (ids only, no personal data).
    fn alert_if_unresolved(&self, payment_id: &str) -> Result<(), MerchantError> {
        let cutoff = self.now().saturating_sub(super::deduction::UNRESOLVED_ALERT_S) as i64;
        let n = self.store.lock().conn().prepare_cached("UPDATE mch_payments SET alerted = 1 WHERE payment_id = ?1 AND alerted = 0 AND state = 'PROCESSING' AND created_at <= ?2")?.execute(params![payment_id, cutoff],
        )?;
        if n == 1 {
            tracing::warn!(
                payment_id,
                "payment unresolved for more than 1 h, still querying (B5.1): operator attention (facepay backend payments --unresolved)"
            );
        }
        Ok(())
    }

    fn finish(&self, payment_id: &str, s: PaymentState, reason: Option<String>) -> Result<PaymentState, MerchantError> {
        if let Some(r) = &reason {
            tracing::warn!(payment_id, reason = %r, "payment failed: operator attention");
        }
        // The credential is single-use: erased in the statement that makes the payment
        // final (as the terminal's outbox does), leaving only its hash for idempotency.
        rows::finalize(self.store.lock().conn(), payment_id, s, reason.as_deref(), None, None)?;
        Ok(s)
    }

    /// The device that submitted a payment (S2: a device reads only its own).
    pub fn owner(&self, payment_id: &str) -> Result<Option<String>, MerchantError> {
        let st = self.store.lock();
        let body: Option<String> = st
            .conn()
            .prepare_cached("SELECT request FROM mch_payments WHERE payment_id = ?1")?
            .query_row([payment_id], |r| r.get(0))
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
        self.store
            .lock()
            .conn()
            .prepare_cached("UPDATE mch_payments SET first_order = ?2 WHERE payment_id = ?1 AND orders = 0")?
            .execute(params![payment_id, out_trade_no])?;
        Ok(())
    }

    /// The payment recorded under an idempotency key, if any.
    pub fn payment_for_key(&self, idempotency_key: &str) -> Result<Option<String>, MerchantError> {
        let st = self.store.lock();
        let found = st
            .conn()
            .prepare_cached("SELECT payment_id FROM mch_payments WHERE idempotency_key = ?1")?
            .query_row([idempotency_key], |r| r.get(0))
            .optional()?;
        Ok(found)
    }

    /// True when another payment already holds `out_trade_no` (as an order or as its
    /// chosen first order): one order number never names two payments.
    pub fn order_no_used(&self, out_trade_no: &str, payment_id: &str) -> Result<bool, MerchantError> {
        let st = self.store.lock();
        let n: i64 = st
            .conn()
            .prepare_cached(
                "SELECT (SELECT COUNT(*) FROM mch_orders WHERE out_trade_no = ?1 AND payment_id != ?2)
                  + (SELECT COUNT(*) FROM mch_payments WHERE first_order = ?1 AND payment_id != ?2)",
            )?
            .query_row(params![out_trade_no, payment_id], |r| r.get(0))?;
        Ok(n > 0)
    }

    /// Records an attempt before it is sent; `opens` (the payment's order count) when it
    /// opens `order` as a new order number — both in one transaction.
    fn begin(&self, payment_id: &str, order: &str, opens: Option<u32>, kind: &str) -> Result<i64, MerchantError> {
        rows::open_attempt(self.store.lock().conn(), payment_id, order, opens, kind, self.now())
    }

    /// Records an attempt's answer. An answer that pays (SUCCESS / REFUND: final whatever
    /// else is known, see [`is_paid`]) makes the payment PAID in the same transaction,
    /// with its B5.2 facts; `req` is the payment as stored, when the caller holds it.
    #[allow(clippy::too_many_arguments)]
    fn end(
        &self,
        attempt: i64,
        payment_id: &str,
        order: &str,
        kind: &'static str,
        oc: &Outcome,
        info: AttemptInfo,
        req: Option<&PaymentRequest>,
    ) -> Result<(), MerchantError> {
        rows::write_tx(self.store.lock().conn(), |c| {
            c.prepare_cached("UPDATE mch_attempts SET outcome = ?2, request_id = ?3, detail = ?4 WHERE id = ?1")?
                .execute(params![attempt, oc.as_code(), info.request_id, info.detail])?;
            if is_paid(oc) {
                // B5.2 (a K12 deduction may succeed as a debt) in the statement that pays.
                rows::finalize(c, payment_id, PaymentState::Paid, None, req, info.paid.as_ref())?;
            } else if let Some(t) = &info.paid {
                c.prepare_cached("UPDATE mch_payments SET debt_state = ?2, transaction_id = ?3, repayment_transaction_id = ?4 WHERE payment_id = ?1")?.execute(params![payment_id, t.debt_state, t.transaction_id, t.repayment_transaction_id],
                )?;
            }
            Ok(())
        })?;
        if let Some(f) = self.observer.lock().as_ref() {
            f(&AttemptReport {
                payment_id: payment_id.into(),
                out_trade_no: order.into(),
                kind,
                at: self.now(),
                outcome: oc.as_code(),
                request_id: info.request_id,
            });
        }
        Ok(())
    }

    /// What the next attempt needs from the payment's row, read now.
    fn inputs(&self, payment_id: &str) -> Result<Inputs, MerchantError> {
        let inputs = self
            .store
            .lock()
            .conn()
            .prepare_cached("SELECT request, device_ip, first_order FROM mch_payments WHERE payment_id = ?1")?
            .query_row([payment_id], |r| {
                Ok(Inputs { request: r.get(0)?, device_ip: r.get(1)?, first_order: r.get(2)? })
            })?;
        Ok(inputs)
    }

    fn request(&self, payment_id: &str, order: &str, req: &(PaymentRequest, Option<String>)) -> TransactionRequest {
        let (req, ip) = req;
        let p = &self.params;
        TransactionRequest {
            auth_code: Secret::new(req.face_token.expose()),
            sp_appid: p.sp_appid.clone(),
            sp_mchid: p.sp_mchid.clone(),
            sub_appid: p.sub_appid.clone(),
            sub_mchid: p.sub_mchid.clone(),
            amount: Amount { total: req.amount_fen, currency: "CNY".into(), pay_total: None, pay_currency: None },
            scene_info: SceneInfo { device_ip: ip.clone().unwrap_or_else(|| p.device_ip.clone()) },
            goods_tag: p.goods_tag.clone(),
            settle_info: None,
            description: p.description.clone(),
            attach: payment_id.into(),
            out_trade_no: order.into(),
            business: Business { business_product_id: p.business_product_id, business_scene_id: p.business_scene_id },
        }
    }
}

/// Maps a deduction (or query) answer onto the B5 table, with what it brings along.
fn classify(r: Result<Answered<Transaction>, MerchantError>) -> (Outcome, AttemptInfo) {
    match r {
        Ok(a) => {
            let oc = classify_outcome(Ok(a.value.trade_state));
            let paid = matches!(oc, Outcome::State(TradeState::Success | TradeState::Refund)).then_some(a.value);
            (oc, AttemptInfo { request_id: a.request_id, detail: None, paid })
        }
        Err(MerchantError::Api { status, code, message, detail, request_id }) => {
            let oc =
                classify_outcome(Err(MerchantError::Api { status, code, message, detail: None, request_id: None }));
            (oc, AttemptInfo { request_id, detail, paid: None })
        }
        Err(e) => (classify_outcome(Err(e)), AttemptInfo::default()),
    }
}

/// The payment's next order number: its chosen first order for the first one, else
/// `{payment_id}_{n}`.
fn new_order_no(payment_id: &str, orders: u32, first_order: Option<String>) -> String {
    match first_order {
        Some(f) if orders == 0 => f,
        _ => format!("{payment_id}_{}", orders + 1),
    }
}

/// Maps a deduction answer onto the B5 table.
pub fn classify_outcome(r: Result<TradeState, MerchantError>) -> Outcome {
    match r {
        // B5.1: a state we do not know is an unknown outcome (queried), not a failure.
        Ok(TradeState::Unrecognized) => Outcome::Unknown,
        Ok(s) => Outcome::State(s),
        // B5.1: 502 / 503 / 504 mean "retry later", whatever the body says.
        Err(MerchantError::Api { status: 502..=504, .. }) => Outcome::Unavailable,
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
