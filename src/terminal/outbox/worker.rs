//! The outbox worker: it takes open entries (handed over in memory by `enqueue`, or found
//! in the store after a restart or store trouble), delivers each at least once with
//! exponential backoff and jitter, polls a `Processing` payment until it is final, and
//! commits every step before the next (DESIGN "Nothing is lost", T7.8). Kept beside
//! `outbox.rs` so that each stays under 600 lines.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::task::JoinSet;

use super::{Entry, Inner, OutboxEvent, OutboxState, OutboxTiming, Work};
use crate::error::{Error, Result};
use crate::terminal::backend::PaymentState;
use crate::terminal::backend_http::{is_rejection, is_retryable};

/// Exponential backoff with "equal jitter": the n-th (1-based) delay is drawn from
/// `[d/2, d]` with `d = initial · 2^(n-1)` capped at `max`, and never below `initial`.
pub(super) fn backoff_delay(t: &OutboxTiming, n: u32, rng: &mut u64) -> Duration {
    let d = crate::clock::backoff(t.backoff_initial, t.backoff_max, n.saturating_sub(1));
    let half = d / 2;
    let span = (d - half).as_nanos() as u64;
    let jitter = Duration::from_nanos(splitmix64(rng) % span.saturating_add(1));
    (half + jitter).clamp(t.backoff_initial, t.backoff_max)
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The error code stored and reported for a failure: the backend's own code when it
/// answered, else the name of our error code. Never carries personal data.
fn error_label(e: &Error) -> String {
    match e {
        Error::Backend { code, .. } => code.clone(),
        Error::ConfigMismatch(_) => "ORG_MCH_MISMATCH".to_string(),
        other => format!("{:?}", other.code()),
    }
}

pub(super) async fn run_worker(inner: Arc<Inner>) {
    let mut in_flight: HashSet<i64> = HashSet::new();
    let mut task_seq: HashMap<tokio::task::Id, i64> = HashMap::new();
    // Each task answers whether its entry is still open after store trouble.
    let mut tasks: JoinSet<bool> = JoinSet::new();
    loop {
        if inner.closed.load(Ordering::Acquire) {
            break;
        }
        let free = inner.timing.max_in_flight.saturating_sub(in_flight.len());
        if free > 0 {
            let work = match inner.take_fresh(free) {
                Some(work) => Ok(work),
                None => {
                    let skip = in_flight.clone();
                    inner.on_store(move |i| i.scan(&skip, free)).await
                }
            };
            match work {
                Ok(work) => {
                    for w in work {
                        let seq = w.seq();
                        in_flight.insert(seq);
                        let inner = inner.clone();
                        let handle = tasks.spawn(async move {
                            let outcome = AssertUnwindSafe(deliver(&inner, w)).catch_unwind().await;
                            match outcome {
                                Ok(Ok(())) => return false,
                                // Store trouble: the entry stays open and is found again by a
                                // scan of the store once this task has ended.
                                Ok(Err(e)) => tracing::warn!(seq, code = ?e.code(), "outbox: delivery interrupted"),
                                Err(_) => tracing::error!(seq, "outbox: delivery panicked (a bug in facepay)"),
                            }
                            // Not at once: an entry that fails every time must not spin.
                            inner.clock.sleep(inner.timing.backoff_max).await;
                            true
                        });
                        task_seq.insert(handle.id(), seq);
                    }
                }
                Err(e) => {
                    tracing::warn!(code = ?e.code(), "outbox: cannot read the store");
                    inner.clock.sleep(inner.timing.backoff_initial).await;
                    continue;
                }
            }
        }
        tokio::select! {
            _ = inner.wake.notified() => {}
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, still_open) = match done {
                    Ok((id, still_open)) => (id, still_open),
                    Err(e) => {
                        tracing::error!(panic = e.is_panic(), "outbox: delivery task ended abnormally");
                        (e.id(), true)
                    }
                };
                if let Some(seq) = task_seq.remove(&id) {
                    in_flight.remove(&seq);
                }
                if still_open {
                    // Only now, with the entry out of `in_flight`, can a scan find it.
                    inner.rescan();
                }
            }
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// Drives one entry to a final state: submit until the backend answers (or rejects),
/// then poll while it is `Processing`. Every step is committed before the next.
async fn deliver(inner: &Arc<Inner>, work: Work) -> Result<()> {
    let (seq, entry, mut first_counted) = match work {
        Work::Stored(seq) => match inner.on_store(move |i| i.load(seq)).await? {
            Some(entry) => (seq, entry, false),
            None => return Ok(()),
        },
        // `enqueue` committed the entry with its first submission already counted.
        Work::Fresh(seq, req) => (seq, Entry { req, state: OutboxState::Pending, payment_id: None }, true),
    };
    if entry.state.is_final() {
        return Ok(());
    }
    let key = entry.req.idempotency_key.clone();
    let mut payment_id = entry.payment_id.filter(|_| entry.state == OutboxState::Processing);
    let mut rng = std::collections::hash_map::RandomState::new().hash_one(seq);
    let (mut failures, mut polls) = (0u32, 0u32);
    let mut next_poll: Option<Duration> = None;
    loop {
        let polling = payment_id.is_some();
        let (attempt, answer) = match &payment_id {
            None => {
                let attempt = if std::mem::take(&mut first_counted) {
                    1
                } else {
                    inner.on_store(move |i| i.record_attempt(seq, false)).await?
                };
                (attempt, inner.backend.submit(&entry.req).await)
            }
            Some(id) => {
                polls += 1;
                let wait = next_poll.take().unwrap_or_else(|| backoff_delay(&inner.timing, polls, &mut rng));
                inner.clock.sleep(wait).await;
                let polled = inner.on_store(move |i| i.record_attempt(seq, true)).await?;
                (polled, inner.backend.status(id.clone()).await)
            }
        };
        match answer {
            Ok(st) => {
                if !polling || st.state.is_final() {
                    let (state, id) = (OutboxState::from_payment(st.state), st.payment_id.clone());
                    inner.on_store(move |i| i.record_state(seq, state, Some(&id), None)).await?;
                }
                if !polling {
                    inner.emit(OutboxEvent::Accepted { key: key.clone(), payment_id: st.payment_id.clone() });
                    payment_id = Some(st.payment_id.clone());
                }
                if st.state.is_final() {
                    inner.emit(OutboxEvent::Final { key, payment_id, state: st.state, error: None });
                    return Ok(());
                }
            }
            Err(e) if is_rejection(&e) => {
                let code = error_label(&e);
                let c = code.clone();
                inner.on_store(move |i| i.record_state(seq, OutboxState::Failed, None, Some(&c))).await?;
                tracing::warn!(seq, code = %code, polling, "outbox: rejected by the backend");
                let state = PaymentState::Failed;
                inner.emit(OutboxEvent::Final { key, payment_id, state, error: Some(code) });
                return Ok(());
            }
            Err(e) => {
                let code = error_label(&e);
                if !is_retryable(&e) {
                    // Neither a clear rejection nor a known transient failure (e.g. an
                    // unreadable answer): the backend may hold the payment; keep trying.
                    tracing::warn!(seq, code = %code, "outbox: unexpected failure, retrying");
                }
                let c = code.clone();
                inner.on_store(move |i| i.record_error(seq, &c)).await?;
                let delay = if polling {
                    let d = backoff_delay(&inner.timing, polls + 1, &mut rng);
                    next_poll = Some(d);
                    d
                } else {
                    failures += 1;
                    backoff_delay(&inner.timing, failures, &mut rng)
                };
                inner.emit(OutboxEvent::Retrying { key: key.clone(), attempt, delay, error: code });
                if !polling {
                    inner.clock.sleep(delay).await;
                }
            }
        }
    }
}
