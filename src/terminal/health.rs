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
/// it after every call): the snapshot, replaced whole when it changes, and the authinfo's
/// remaining time, which changes on every publish. The lock guards a pointer and a number,
/// so the engine and a reader never wait on each other for more than a copy of those.
#[derive(Debug, Default)]
pub(crate) struct Published {
    snapshot: Arc<Health>,
    authinfo_valid_for: Option<Duration>,
    /// Notified whenever the snapshot is replaced (the Kotlin `health` StateFlow's push).
    changed: Arc<tokio::sync::Notify>,
}

impl Published {
    pub(crate) fn read(shared: &Mutex<Published>) -> Health {
        let (snapshot, authinfo_valid_for) = {
            let p = shared.lock();
            (p.snapshot.clone(), p.authinfo_valid_for)
        };
        Health { authinfo_valid_for, ..Health::clone(&snapshot) }
    }

    /// `snapshot` is the new one when it changed.
    pub(crate) fn write(
        shared: &Mutex<Published>,
        snapshot: Option<&Arc<Health>>,
        authinfo_valid_for: Option<Duration>,
    ) {
        let mut p = shared.lock();
        p.authinfo_valid_for = authinfo_valid_for;
        if let Some(s) = snapshot {
            p.snapshot = s.clone();
            p.changed.notify_one();
        }
    }

    /// Notified (one permit, one waiter) whenever the snapshot changes.
    pub(crate) fn changed(shared: &Mutex<Published>) -> Arc<tokio::sync::Notify> {
        shared.lock().changed.clone()
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
