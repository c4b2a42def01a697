//! The durable payment outbox: it owns every payment credential (`face_token`, T7.8) from
//! the moment the engine obtains it until the merchant backend has a final answer, and
//! serves DESIGN "Nothing is lost" and the terminal ↔ backend contract (`POST/GET
//! /facepay/v1/payments`, `docs/merchant-protocol.md`). An entry is committed to SQLite
//! before [`OutboxHandle::enqueue`] returns; a worker delivers it at least once with
//! exponential backoff and jitter (the backend deduplicates by `idempotency_key`, so
//! at-least-once delivery is exactly-once payment), polls a `Processing` payment until it
//! is `Paid` or `Failed`, commits and reports every state change, and erases the
//! single-use credential once the entry is final. A restarted process resumes every
//! non-final entry. On a file store every statement runs off the caller's thread, in
//! order (`store_jobs`), so an fsync never stalls the engine's actor or the app. No
//! credential, phone or name ever reaches a log line or an error.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, OptionalExtension};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::error::{Error, Result, Secret};
use crate::store::{Store, StorePath};
use crate::terminal::backend::{PaymentBackend, PaymentRequest, PaymentState};
use crate::terminal::config::Timing;

mod store_jobs;
mod worker;

use store_jobs::Pending;
use store_jobs::StoreJobs;

const SCHEMA: &str = "
PRAGMA synchronous = FULL;
PRAGMA secure_delete = ON;
CREATE TABLE IF NOT EXISTS outbox (
    -- A plain rowid: rows are never deleted, so it only grows, and AUTOINCREMENT's extra
    -- write to sqlite_sequence on every insert is saved.
    seq INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    face_token TEXT,
    user_id TEXT NOT NULL,
    out_user_id TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    organization_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    state TEXT NOT NULL,
    payment_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    polls INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
-- Only open entries are indexed: finding the next delivery costs the same after a
-- million payments as after ten.
CREATE INDEX IF NOT EXISTS outbox_open ON outbox (seq) WHERE state IN ('PENDING','PROCESSING');
";

const OPEN_STATES: &str = "('PENDING','PROCESSING')";

/// Delivery timing of the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxTiming {
    /// First retry / poll delay (before jitter).
    pub backoff_initial: Duration,
    /// Cap of the retry / poll delay.
    pub backoff_max: Duration,
    /// How many entries are delivered at the same time (oldest first).
    pub max_in_flight: usize,
}

impl OutboxTiming {
    /// The engine's configured outbox backoff, 4 entries in flight.
    pub fn from_timing(t: &Timing) -> Self {
        OutboxTiming {
            backoff_initial: Timing::ms(t.outbox_backoff_initial_ms),
            backoff_max: Timing::ms(t.outbox_backoff_max_ms),
            max_in_flight: 4,
        }
    }
}

impl Default for OutboxTiming {
    fn default() -> Self {
        OutboxTiming::from_timing(&Timing::default())
    }
}

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxState {
    /// Committed; the backend has not acknowledged it yet.
    Pending,
    /// The backend accepted it (`payment_id` known); deduction under way.
    Processing,
    /// Final: paid.
    Paid,
    /// Final: rejected by the backend or the deduction failed (see `last_error`).
    Failed,
}

impl OutboxState {
    pub fn is_final(self) -> bool {
        matches!(self, OutboxState::Paid | OutboxState::Failed)
    }
    fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "PENDING",
            OutboxState::Processing => "PROCESSING",
            OutboxState::Paid => "PAID",
            OutboxState::Failed => "FAILED",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "PENDING" => OutboxState::Pending,
            "PROCESSING" => OutboxState::Processing,
            "PAID" => OutboxState::Paid,
            "FAILED" => OutboxState::Failed,
            other => return Err(Error::Internal(format!("outbox: unknown state {other:?}"))),
        })
    }
    fn from_payment(s: PaymentState) -> Self {
        match s {
            PaymentState::Processing => OutboxState::Processing,
            PaymentState::Paid => OutboxState::Paid,
            PaymentState::Failed => OutboxState::Failed,
        }
    }
}

/// What the outbox knows of one payment. Holds no credential, so `Debug` is safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub key: String,
    pub payment_id: Option<String>,
    pub state: OutboxState,
    pub amount_fen: u64,
    /// Submissions sent, each counted before it was sent (the first in the statement that
    /// commits the entry). It may exceed them by one when an entry was picked up again
    /// from the store (a restart, a shutdown, store trouble) before that first one went.
    pub attempts: u32,
    /// Status polls sent.
    pub polls: u32,
    /// Code of the last failure: the backend's code (`PARAM_ERROR`, `ORG_MCH_MISMATCH`, …)
    /// or our error code name (`Network`, …).
    pub last_error: Option<String>,
}

/// A committed state change of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxEvent {
    /// The backend acknowledged the payment under this id.
    Accepted { key: String, payment_id: String },
    /// A submission or poll failed retryably; the next try is in `delay`.
    Retrying { key: String, attempt: u32, delay: Duration, error: String },
    /// The entry is final (its credential is erased). `payment_id` is `None` when the
    /// backend rejected the submission itself; `error` then holds its code.
    Final { key: String, payment_id: Option<String>, state: PaymentState, error: Option<String> },
}

/// The outbox constructor.
pub struct Outbox;

impl Outbox {
    /// Opens the store, creates the table, and starts the worker, which resumes every
    /// non-final entry left by an earlier process. Must be called inside a tokio runtime.
    pub fn spawn(
        store: StorePath,
        backend: Arc<dyn PaymentBackend>,
        timing: OutboxTiming,
        clock: Arc<dyn Clock>,
        events: UnboundedSender<OutboxEvent>,
    ) -> Result<OutboxHandle> {
        Self::start(Self::open_store(&store)?, backend, timing, clock, events)
    }

    /// Opens the outbox's store and creates its table (file I/O: the engine runs it on
    /// tokio's blocking pool, never on its own thread or the app's).
    pub fn open_store(store: &StorePath) -> Result<Store> {
        let db = Store::open(store)?;
        if db.is_memory() {
            // A memory store (tests, benchmarks) survives no crash, so its rollback journal
            // protects nothing: it only copied every page a statement touched (about a
            // sixth of a flow's instructions). The outbox runs single-row autocommit
            // statements and never rolls back, and a file store keeps its WAL journal.
            db.ensure_schema("PRAGMA journal_mode = OFF;")?;
        }
        db.ensure_schema(SCHEMA)?;
        Ok(db)
    }

    /// Starts the worker on a store [`Outbox::open_store`] opened. Must be called inside
    /// a tokio runtime.
    pub fn start(
        db: Store,
        backend: Arc<dyn PaymentBackend>,
        timing: OutboxTiming,
        clock: Arc<dyn Clock>,
        events: UnboundedSender<OutboxEvent>,
    ) -> Result<OutboxHandle> {
        if timing.backoff_initial.is_zero() || timing.backoff_max < timing.backoff_initial {
            return Err(Error::invalid_config("timing.outbox_backoff", "need 0 < initial <= max"));
        }
        let store = if db.is_memory() { StoreJobs::inline() } else { StoreJobs::start()? };
        let inner = Arc::new(Inner {
            db: Mutex::new(db),
            store,
            backend,
            timing: OutboxTiming { max_in_flight: timing.max_in_flight.max(1), ..timing },
            clock,
            events,
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            // An earlier process may have left open entries: the worker scans first.
            queue: Mutex::new(Handover { fresh: VecDeque::new(), rescan: true }),
        });
        let worker = tokio::spawn(worker::run_worker(inner.clone()));
        Ok(OutboxHandle { inner, worker: Arc::new(Mutex::new(Some(worker))) })
    }
}

/// A handle on a running outbox. Cheap to clone.
#[derive(Clone)]
pub struct OutboxHandle {
    inner: Arc<Inner>,
    worker: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for OutboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxHandle").field("timing", &self.inner.timing).finish_non_exhaustive()
    }
}

impl OutboxHandle {
    /// Commits the payment durably, then wakes the worker, blocking the calling thread
    /// until it is committed (never call it on a runtime's thread: see [`Self::submit`]).
    /// Enqueueing a key that is already there is a no-op (never two payments); reusing a
    /// key for a payment with different user, amount, organisation or device is refused.
    pub fn enqueue(&self, req: PaymentRequest) -> Result<()> {
        self.submit(req)?.wait()
    }

    /// [`Self::enqueue`] without blocking: the request is checked at once, and committed on
    /// the outbox's store jobs (`store_jobs`); the answer says when it is durable (T7.8: the app hears
    /// of the payment only then).
    pub(crate) fn submit(&self, req: PaymentRequest) -> Result<Pending<()>> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        check_request(&req)?;
        Ok(self.inner.on_store(move |i| i.insert(req)))
    }

    /// What the outbox knows of the payment with this idempotency key.
    pub fn get(&self, key: &str) -> Result<Option<OutboxRecord>> {
        let db = self.inner.db.lock();
        db.conn()
            .query_row(
                "SELECT idempotency_key, payment_id, state, amount_fen, attempts, polls, last_error
                 FROM outbox WHERE idempotency_key = ?1",
                [key],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, u32>(4)?,
                        r.get::<_, u32>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                },
            )
            .optional()?
            .map(|(key, payment_id, state, amount, attempts, polls, last_error)| {
                Ok::<_, Error>(OutboxRecord {
                    key,
                    payment_id,
                    state: OutboxState::parse(&state)?,
                    amount_fen: amount as u64,
                    attempts,
                    polls,
                    last_error,
                })
            })
            .transpose()
    }

    /// Number of entries that are not final yet.
    pub fn pending(&self) -> Result<u64> {
        let db = self.inner.db.lock();
        let n: i64 =
            db.conn()
                .query_row(&format!("SELECT COUNT(*) FROM outbox WHERE state IN {OPEN_STATES}"), [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Stops the worker and every delivery in flight, and waits for it. Safe at any
    /// point: every state change is committed, so the next [`Outbox::spawn`] resumes.
    /// Later `enqueue` calls answer `Closed`.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.wake.notify_one();
        let worker = self.worker.lock().take();
        if let Some(w) = worker {
            // A panic in the worker is a bug; it has already been reported by tokio.
            let _ = w.await;
        }
        // Every job submitted so far (a commit, a delivery's last state) has run.
        let _ = self.inner.on_store(|_| Ok(())).await;
    }
}

fn check_request(req: &PaymentRequest) -> Result<()> {
    if req.idempotency_key.trim().is_empty() || req.idempotency_key.len() > crate::config::MAX_FIELD_LEN {
        return Err(Error::invalid_arg("idempotency_key", "must be 1..=256 bytes"));
    }
    if req.face_token.is_empty() {
        return Err(Error::invalid_arg("face_token", "must not be empty"));
    }
    if req.amount_fen == 0 {
        return Err(Error::invalid_arg("amount_fen", "must be greater than 0"));
    }
    Ok(())
}

struct Inner {
    db: Mutex<Store>,
    /// Where every statement of the delivery and every commit runs.
    store: StoreJobs,
    backend: Arc<dyn PaymentBackend>,
    timing: OutboxTiming,
    /// Timestamps of the rows (wall time) and the worker's waits.
    clock: Arc<dyn Clock>,
    events: UnboundedSender<OutboxEvent>,
    wake: Notify,
    closed: AtomicBool,
    queue: Mutex<Handover>,
}

/// Entries committed by this process and not yet taken by the worker, handed over in
/// memory so that the worker neither scans the store for them nor reads them back.
/// `rescan` is set while the store may hold open entries that are not here (at start,
/// after store trouble): the worker then scans the store, and `enqueue` hands nothing over.
struct Handover {
    fresh: VecDeque<(i64, PaymentRequest)>,
    rescan: bool,
}

impl Handover {
    /// The oldest handed-over entries, at most `limit`.
    fn take_fresh(&mut self, limit: usize) -> Vec<Work> {
        let n = limit.min(self.fresh.len());
        self.fresh.drain(..n).map(|(seq, req)| Work::Fresh(seq, req)).collect()
    }
}

/// An entry for the worker to deliver.
enum Work {
    /// Found in the store: read it back first.
    Stored(i64),
    /// Handed over by `enqueue`, with its first submission already counted.
    Fresh(i64, PaymentRequest),
}

impl Work {
    fn seq(&self) -> i64 {
        match self {
            Work::Stored(seq) | Work::Fresh(seq, _) => *seq,
        }
    }
}

/// One open entry, as loaded for delivery (holds the credential while not final).
struct Entry {
    req: PaymentRequest,
    state: OutboxState,
    payment_id: Option<String>,
}

impl Inner {
    /// The commit behind [`OutboxHandle::submit`] (a store job).
    fn insert(&self, req: PaymentRequest) -> Result<()> {
        let now = self.now_ms();
        {
            // The hand-over lock is held across the insert, so that the worker's scan of
            // the store and this entry's hand-over never miss each other (`Inner::scan`).
            let mut queue = self.queue.lock();
            let hand_over = !queue.rescan;
            // One autocommit statement is atomic, and the connection lock serialises this
            // insert with the conflict check below: no explicit transaction is needed.
            let db = self.db.lock();
            let tx = db.conn();
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO outbox (idempotency_key, face_token, user_id, out_user_id, amount_fen,
                     organization_id, device_id, state, attempts, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'PENDING', ?8, ?9, ?9)
                 ON CONFLICT(idempotency_key) DO NOTHING",
                )?
                .execute(params![
                    req.idempotency_key,
                    req.face_token.expose(),
                    req.user_id,
                    req.out_user_id,
                    req.amount_fen as i64,
                    req.organization_id,
                    req.device_id,
                    // An entry handed over in memory is submitted next: its first
                    // submission is counted here, before it is sent.
                    hand_over as i64,
                    now
                ])?;
            if inserted == 0 {
                let same: bool = tx.query_row(
                    "SELECT user_id = ?2 AND out_user_id = ?3 AND amount_fen = ?4 AND organization_id = ?5
                         AND device_id = ?6
                     FROM outbox WHERE idempotency_key = ?1",
                    params![
                        req.idempotency_key,
                        req.user_id,
                        req.out_user_id,
                        req.amount_fen as i64,
                        req.organization_id,
                        req.device_id
                    ],
                    |r| r.get(0),
                )?;
                if !same {
                    return Err(Error::invalid_arg("idempotency_key", "already used for a different payment"));
                }
                return Ok(());
            }
            if hand_over {
                queue.fresh.push_back((tx.last_insert_rowid(), req));
            }
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Runs `f` as a store job (every statement of the outbox runs as one).
    fn on_store<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Pending<T> {
        let me = self.clone();
        self.store.run(move || f(&me))
    }

    fn now_ms(&self) -> i64 {
        crate::clock::unix_ms(self.clock.wall())
    }

    fn emit(&self, ev: OutboxEvent) {
        // Nobody listening is fine: the store is the source of truth.
        let _ = self.events.send(ev);
    }

    /// Entries handed over in memory, at most `limit`; `None` while a scan of the store
    /// is due (then [`Self::scan`], as a store job).
    fn take_fresh(&self, limit: usize) -> Option<Vec<Work>> {
        let mut queue = self.queue.lock();
        (!queue.rescan).then(|| queue.take_fresh(limit))
    }

    /// The oldest open entries in the store, at most `limit`, none of them in `in_flight`.
    /// A scan that finds fewer than `limit` has found every open entry, and hand-over
    /// resumes. The hand-over lock is held throughout, so no `insert` falls between the
    /// scan and the switch.
    fn scan(&self, in_flight: &HashSet<i64>, limit: usize) -> Result<Vec<Work>> {
        let mut queue = self.queue.lock();
        if !queue.rescan {
            // Switched back meanwhile: hand-over is the truth again.
            return Ok(queue.take_fresh(limit));
        }
        let seqs = self.next_open(in_flight, limit)?;
        queue.rescan = seqs.len() >= limit;
        Ok(seqs.into_iter().map(Work::Stored).collect())
    }

    /// Store trouble left an entry open: scan the store again. Every handed-over entry
    /// is in the store too, so the scan finds them as well.
    fn rescan(&self) {
        let mut queue = self.queue.lock();
        queue.rescan = true;
        queue.fresh.clear();
    }

    /// Oldest open entries not in `skip`, at most `limit`.
    fn next_open(&self, skip: &HashSet<i64>, limit: usize) -> Result<Vec<i64>> {
        let db = self.db.lock();
        // A literal LIMIT: a bound one makes SQLite re-plan the statement on every run.
        let sql =
            format!("SELECT seq FROM outbox WHERE state IN {OPEN_STATES} ORDER BY seq LIMIT {}", limit + skip.len());
        let mut st = db.conn().prepare_cached(&sql)?;
        let rows = st.query_map([], |r| r.get::<_, i64>(0))?;
        let mut out = Vec::new();
        for seq in rows {
            let seq = seq?;
            if !skip.contains(&seq) && out.len() < limit {
                out.push(seq);
            }
        }
        Ok(out)
    }

    fn load(&self, seq: i64) -> Result<Option<Entry>> {
        let db = self.db.lock();
        let row = db
            .conn()
            .prepare_cached(
                "SELECT idempotency_key, face_token, user_id, out_user_id, amount_fen, organization_id,
                        device_id, state, payment_id
                 FROM outbox WHERE seq = ?1",
            )?
            .query_row([seq], |r| {
                Ok((
                    PaymentRequest {
                        idempotency_key: r.get(0)?,
                        face_token: Secret::new(r.get::<_, Option<String>>(1)?.unwrap_or_default()),
                        user_id: r.get(2)?,
                        out_user_id: r.get(3)?,
                        amount_fen: r.get::<_, i64>(4)? as u64,
                        organization_id: r.get(5)?,
                        device_id: r.get(6)?,
                    },
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            })
            .optional()?;
        row.map(|(req, state, payment_id)| Ok(Entry { req, state: OutboxState::parse(&state)?, payment_id }))
            .transpose()
    }

    /// Counts one more submission (or poll) before it is sent; returns the new count.
    fn record_attempt(&self, seq: i64, poll: bool) -> Result<u32> {
        let db = self.db.lock();
        let sql = if poll {
            "UPDATE outbox SET polls = polls + 1, updated_ms = ?2 WHERE seq = ?1 RETURNING polls"
        } else {
            "UPDATE outbox SET attempts = attempts + 1, updated_ms = ?2 WHERE seq = ?1 RETURNING attempts"
        };
        let n = db.conn().prepare_cached(sql)?.query_row(params![seq, self.now_ms()], |r| r.get(0))?;
        Ok(n)
    }

    fn record_error(&self, seq: i64, code: &str) -> Result<()> {
        let db = self.db.lock();
        db.conn().execute(
            "UPDATE outbox SET last_error = ?2, updated_ms = ?3 WHERE seq = ?1",
            params![seq, code, self.now_ms()],
        )?;
        Ok(())
    }

    /// Commits a new state (with the payment id or error code when given). A final state
    /// erases the credential in the same statement, so the two never disagree. The state
    /// list is [`OPEN_STATES`] written out, so the statement is a literal (no formatting).
    fn record_state(&self, seq: i64, state: OutboxState, payment_id: Option<&str>, error: Option<&str>) -> Result<()> {
        let db = self.db.lock();
        db.conn()
            .prepare_cached(
                "UPDATE outbox SET state = ?2, payment_id = COALESCE(?3, payment_id),
                     last_error = COALESCE(?4, last_error), updated_ms = ?5,
                     face_token = CASE WHEN ?6 THEN NULL ELSE face_token END
                 WHERE seq = ?1 AND state IN ('PENDING','PROCESSING')",
            )?
            .execute(params![seq, state.as_str(), payment_id, error, self.now_ms(), state.is_final()])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
