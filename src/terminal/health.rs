//! What the engine tells the app: the event stream and the health snapshot (SPEC T1.4:
//! every disconnect and reconnect is an event and a counter; T4.3 stale features; T3
//! authinfo refreshes; flow outcomes with per-stage timings; T8 restart advice). Events
//! carry ids and codes only, never personal data.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use serde::Serialize;

use crate::error::ErrorCode;
use crate::terminal::backend::PaymentState;
use crate::terminal::lifecycle::{LinkState, LossReason};
use crate::terminal::verify::{FlowId, Outcome};

/// Per-stage timings of a flow, from `startVerify`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StageTimings {
    pub first_frame: Option<Duration>,
    pub recognised: Option<Duration>,
    pub finished: Option<Duration>,
    pub credential: Option<Duration>,
    pub total: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowReport {
    pub flow_id: FlowId,
    pub outcome: Outcome,
    pub recognition_failures: u32,
    pub timings: StageTimings,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum EngineEvent {
    StateChanged {
        state: LinkState,
    },
    /// T1.4
    Disconnected {
        reason: LossReason,
    },
    /// T1.4
    Reconnected {
        after: Duration,
    },
    /// T4.3: `age` None = never updated.
    FeaturesStale {
        age: Option<Duration>,
    },
    FeaturesFresh,
    FeaturesUpdated {
        ok: bool,
    },
    AuthInfoRefreshed {
        expires_in: Duration,
    },
    AuthInfoFailed {
        code: ErrorCode,
    },
    /// T3.5: configuration error; no retry.
    ConfigMismatch,
    PreviewBound {
        width: u32,
        height: u32,
    },
    /// T6.4
    PreviewAspect {
        width: u32,
        height: u32,
    },
    RecognitionFailed {
        flow_id: FlowId,
        err_code: i64,
    },
    FlowEnded(FlowReport),
    /// Gate mode (T1.3): a user was recognised.
    GateRecognised {
        user_id: String,
    },
    /// The credential of a flow is in the outbox under this key.
    PaymentQueued {
        flow_id: FlowId,
        idempotency_key: String,
    },
    PaymentFinal {
        idempotency_key: String,
        state: PaymentState,
    },
    /// T8
    RestartPlanned {
        at_unix_ms: i64,
    },
    RestartNow,
}

/// The health as the engine publishes it for `Terminal::health` (the Kotlin wrapper reads
/// it after every call). The engine copies its working health in field by field once per
/// turn of its loop, allocating nothing in the steady state; a reader copies it out. The
/// lock is held for one such copy, so neither waits on the other for longer than that.
#[derive(Debug, Default)]
pub(crate) struct Published {
    snapshot: Health,
    /// Notified whenever the snapshot changes (the Kotlin `health` StateFlow's push);
    /// the authinfo's remaining time, which changes on every publish, does not count.
    changed: Arc<tokio::sync::Notify>,
}

impl Published {
    /// A copy of the snapshot (the reader pays for the copy, under the lock).
    pub(crate) fn read(shared: &Mutex<Published>) -> Health {
        shared.lock().snapshot.clone()
    }

    /// Copies the engine's working health into the snapshot in place: fields are
    /// assigned, and the counter maps (whose keys only ever get added) are updated entry
    /// by entry, so a publish allocates nothing once every key has been seen. Wakes the
    /// `changed` waiter when anything but the authinfo's remaining time differs.
    pub(crate) fn write(shared: &Mutex<Published>, h: &Health, authinfo_valid_for: Option<Duration>) {
        let mut p = shared.lock();
        let s = &mut p.snapshot;
        let Health {
            state,
            features_ready,
            features_stale,
            last_feature_update_unix_ms,
            authinfo_valid_for: _,
            authinfo_refreshes,
            config_mismatch,
            disconnects,
            reconnects,
            init_calls,
            late_answers_dropped,
            sequences,
            preview_bound,
            flow_running,
            gate_running,
            flows,
            last_outcome,
            payments_queued,
            payments_final,
            next_restart_unix_ms,
        } = h;
        let mut changed = false;
        set(&mut s.state, *state, &mut changed);
        set(&mut s.features_ready, *features_ready, &mut changed);
        set(&mut s.features_stale, *features_stale, &mut changed);
        set(&mut s.last_feature_update_unix_ms, *last_feature_update_unix_ms, &mut changed);
        s.authinfo_valid_for = authinfo_valid_for;
        set(&mut s.authinfo_refreshes, *authinfo_refreshes, &mut changed);
        set(&mut s.config_mismatch, *config_mismatch, &mut changed);
        set(&mut s.disconnects, *disconnects, &mut changed);
        set(&mut s.reconnects, *reconnects, &mut changed);
        set(&mut s.init_calls, *init_calls, &mut changed);
        set(&mut s.late_answers_dropped, *late_answers_dropped, &mut changed);
        set(&mut s.sequences, *sequences, &mut changed);
        set(&mut s.preview_bound, *preview_bound, &mut changed);
        set(&mut s.flow_running, *flow_running, &mut changed);
        set(&mut s.gate_running, *gate_running, &mut changed);
        copy_counts(flows, &mut s.flows, &mut changed);
        set(&mut s.last_outcome, *last_outcome, &mut changed);
        set(&mut s.payments_queued, *payments_queued, &mut changed);
        copy_counts(payments_final, &mut s.payments_final, &mut changed);
        set(&mut s.next_restart_unix_ms, *next_restart_unix_ms, &mut changed);
        if changed {
            p.changed.notify_one();
        }
    }

    /// Notified (one permit, one waiter) whenever the snapshot changes.
    pub(crate) fn changed(shared: &Mutex<Published>) -> Arc<tokio::sync::Notify> {
        shared.lock().changed.clone()
    }
}

/// `*dst = src`, noting whether it differed.
fn set<T: PartialEq>(dst: &mut T, src: T, changed: &mut bool) {
    if *dst != src {
        *dst = src;
        *changed = true;
    }
}

/// `dst = src` for counter maps whose keys are never removed, noting whether it differed.
fn copy_counts<K: Ord + Copy>(src: &BTreeMap<K, u64>, dst: &mut BTreeMap<K, u64>, changed: &mut bool) {
    if dst.len() > src.len() {
        dst.clear();
        *changed = true;
    }
    for (k, v) in src {
        match dst.get_mut(k) {
            Some(d) => set(d, *v, changed),
            None => {
                dst.insert(*k, *v);
                *changed = true;
            }
        }
    }
}

/// A snapshot, cheap to read from any thread (the Kotlin `StateFlow` polls it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub state: LinkState,
    pub features_ready: bool,
    pub features_stale: bool,
    pub last_feature_update_unix_ms: Option<i64>,
    pub authinfo_valid_for: Option<Duration>,
    pub authinfo_refreshes: u64,
    pub config_mismatch: bool,
    pub disconnects: u64,
    pub reconnects: u64,
    pub init_calls: u64,
    /// T9: real answers that followed the library's timeout FAIL, dropped (one counts).
    pub late_answers_dropped: u64,
    /// T3.6/T9: start-up sequences completed (the first and one per reconnect).
    pub sequences: u64,
    pub preview_bound: bool,
    pub flow_running: bool,
    pub gate_running: bool,
    pub flows: BTreeMap<&'static str, u64>,
    pub last_outcome: Option<&'static str>,
    pub payments_queued: u64,
    pub payments_final: BTreeMap<PaymentState, u64>,
    pub next_restart_unix_ms: Option<i64>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            state: LinkState::Uninitialised,
            features_ready: false,
            features_stale: false,
            last_feature_update_unix_ms: None,
            authinfo_valid_for: None,
            authinfo_refreshes: 0,
            config_mismatch: false,
            disconnects: 0,
            reconnects: 0,
            init_calls: 0,
            late_answers_dropped: 0,
            sequences: 0,
            preview_bound: false,
            flow_running: false,
            gate_running: false,
            flows: BTreeMap::new(),
            last_outcome: None,
            payments_queued: 0,
            payments_final: BTreeMap::new(),
            next_restart_unix_ms: None,
        }
    }
}
