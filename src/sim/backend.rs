//! A mock of the merchant backend's terminal-facing protocol (DESIGN "Contracts",
//! `docs/merchant-protocol.md`), standing in until the reference backend exists. One
//! [`SimBackend`] holds the state; it implements [`AuthInfoSource`] and [`PaymentBackend`]
//! in process (tokio sleeps only, so the demo runs under the paused clock) and
//! [`http::serve`] (feature `mock`) exposes the same state over HTTP with axum. It enforces T3.5 (an organisation of
//! another merchant → 400 `ORG_MCH_MISMATCH`), keeps the B3 TTL itself (`expires_in`),
//! deduplicates payments by idempotency key (same key → same `payment_id`; same key with
//! another body → 409 `IDEMPOTENCY_KEY_REUSED`), injects faults (offline, random 500s
//! before or after the payment is recorded, latency) from a seeded ChaCha RNG, and
//! counts everything in [`SimBackendStats`] so tests can prove "exactly once, none lost".

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result, Secret};
use crate::terminal::backend::{AuthInfoSource, PaymentBackend};
use crate::wire::{
    error_from_answer, AuthInfoGrant, AuthInfoRequest, BoxFut, PaymentRequest, PaymentState, PaymentStatus,
    CODE_IDEMPOTENCY_KEY_REUSED, CODE_ORG_MCH_MISMATCH,
};

/// How the simulated backend behaves.
#[derive(Debug, Clone)]
pub struct SimBackendConfig {
    pub mch_id: String,
    /// Organisations created by `mch_id`; any other → 400 `ORG_MCH_MISMATCH` (T3.5).
    pub organizations: Vec<String>,
    /// `expires_in` of every authinfo, seconds (B3 gives none; default 3600).
    pub authinfo_ttl_s: u64,
    /// Each call waits a uniformly drawn latency in `[min, max]` (tokio time).
    pub latency: (Duration, Duration),
    /// Probability of an injected HTTP 500 `SYSTEM_ERROR` per call; half of those on
    /// `submit` happen after the payment was recorded (a lost answer).
    pub error_rate: f64,
    /// How many `status` polls a payment answers `PROCESSING` before it is final; 0 =
    /// `submit` answers the final state at once.
    pub processing_polls: u32,
    /// Payments above this amount (fen) end `FAILED` (insufficient balance, B5 PAYERROR).
    pub fail_amount_over: Option<u64>,
    pub seed: u64,
}

impl Default for SimBackendConfig {
    fn default() -> Self {
        SimBackendConfig {
            mch_id: "1900000100".into(),
            organizations: vec!["org-canteen-1".into()],
            authinfo_ttl_s: 3600,
            latency: (Duration::ZERO, Duration::ZERO),
            error_rate: 0.0,
            processing_polls: 0,
            fail_amount_over: None,
            seed: 1,
        }
    }
}

/// What the backend saw. `payments_created` equals the number of distinct keys accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimBackendStats {
    pub authinfo_fetches: u64,
    /// Payment submissions that reached the backend (duplicates and failures included).
    pub submissions: u64,
    /// Payments created (one per idempotency key).
    pub payments_created: u64,
    /// Submissions answered from an existing payment with the same key.
    pub duplicates: u64,
    pub status_polls: u64,
    pub paid: u64,
    pub failed: u64,
    /// Calls refused while offline.
    pub offline_refusals: u64,
    /// Injected HTTP 500s.
    pub injected_errors: u64,
    /// Submissions received per idempotency key.
    pub submissions_per_key: BTreeMap<String, u64>,
    /// Payments created per idempotency key (1 for every key, if idempotency holds).
    pub created_per_key: BTreeMap<String, u64>,
}

struct Payment {
    id: String,
    /// Fingerprint of the body (credential included) to detect key reuse.
    body: PaymentRequest,
    polls_left: u32,
    final_state: PaymentState,
    state: PaymentState,
}

struct SimState {
    rng: ChaCha8Rng,
    online: bool,
    next_id: u64,
    by_key: HashMap<String, Payment>,
    key_of: HashMap<String, String>,
    stats: SimBackendStats,
}

/// The simulated merchant backend.
pub struct SimBackend {
    cfg: SimBackendConfig,
    orgs: HashSet<String>,
    state: Mutex<SimState>,
}

/// A refusal of the backend: HTTP status and code.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    status: u16,
    code: &'static str,
}

impl Refusal {
    fn new(status: u16, code: &'static str) -> Self {
        Refusal { status, code }
    }
    /// In process, the same error the HTTP client would produce (offline = network).
    fn into_error(self) -> Error {
        if self.status == 503 {
            Error::Network("simulated backend offline".into())
        } else {
            error_from_answer(self.status, self.code)
        }
    }
}

impl SimBackend {
    pub fn new(cfg: SimBackendConfig) -> Arc<SimBackend> {
        let orgs = cfg.organizations.iter().cloned().collect();
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        Arc::new(SimBackend {
            cfg,
            orgs,
            state: Mutex::new(SimState {
                rng,
                online: true,
                next_id: 1,
                by_key: HashMap::new(),
                key_of: HashMap::new(),
                stats: SimBackendStats::default(),
            }),
        })
    }

    pub fn config(&self) -> &SimBackendConfig {
        &self.cfg
    }

    /// Offline: every call fails (network error in process, HTTP 503 over TCP).
    pub fn set_online(&self, online: bool) {
        self.state.lock().online = online;
    }

    pub fn stats(&self) -> SimBackendStats {
        self.state.lock().stats.clone()
    }

    async fn latency(&self) {
        let (lo, hi) = self.cfg.latency;
        if hi.is_zero() {
            return;
        }
        let d = {
            let mut g = self.state.lock();
            if hi > lo {
                g.rng.random_range(lo..=hi)
            } else {
                lo
            }
        };
        tokio::time::sleep(d).await;
    }

    /// Offline and injected-500 checks, common to every call.
    fn gate(&self, g: &mut SimState) -> std::result::Result<(), Refusal> {
        if !g.online {
            g.stats.offline_refusals += 1;
            return Err(Refusal::new(503, "UNAVAILABLE"));
        }
        if self.cfg.error_rate > 0.0 && g.rng.random_bool(self.cfg.error_rate.min(1.0)) {
            g.stats.injected_errors += 1;
            return Err(Refusal::new(500, "SYSTEM_ERROR"));
        }
        Ok(())
    }

    async fn do_authinfo(&self, req: AuthInfoRequest) -> std::result::Result<AuthInfoGrant, Refusal> {
        self.latency().await;
        let mut g = self.state.lock();
        self.gate(&mut g)?;
        if req.device_id.is_empty() || req.raw_data.is_empty() {
            return Err(Refusal::new(400, "PARAM_ERROR"));
        }
        if !self.orgs.contains(&req.organization_id) {
            return Err(Refusal::new(400, CODE_ORG_MCH_MISMATCH));
        }
        g.stats.authinfo_fetches += 1;
        let n = g.stats.authinfo_fetches;
        Ok(AuthInfoGrant {
            authinfo: Secret::new(format!("sim-authinfo-{}-{n}", self.cfg.mch_id)),
            expires_in: self.cfg.authinfo_ttl_s,
        })
    }

    async fn do_submit(&self, req: &PaymentRequest) -> std::result::Result<PaymentStatus, Refusal> {
        self.latency().await;
        let mut g = self.state.lock();
        if !g.online {
            g.stats.offline_refusals += 1;
            return Err(Refusal::new(503, "UNAVAILABLE"));
        }
        // An injected 500 strikes before or after the payment is recorded (lost answer).
        let fault = self.cfg.error_rate > 0.0 && g.rng.random_bool(self.cfg.error_rate.min(1.0));
        let after = fault && g.rng.random_bool(0.5);
        if fault && !after {
            g.stats.injected_errors += 1;
            return Err(Refusal::new(500, "SYSTEM_ERROR"));
        }
        g.stats.submissions += 1;
        *g.stats.submissions_per_key.entry(req.idempotency_key.clone()).or_default() += 1;
        if req.idempotency_key.is_empty() || req.face_token.is_empty() || req.amount_fen == 0 {
            return Err(Refusal::new(400, "PARAM_ERROR"));
        }
        if !self.orgs.contains(&req.organization_id) {
            return Err(Refusal::new(400, CODE_ORG_MCH_MISMATCH));
        }
        let answer = if let Some(p) = g.by_key.get(&req.idempotency_key) {
            if p.body != *req {
                return Err(Refusal::new(409, CODE_IDEMPOTENCY_KEY_REUSED));
            }
            let st = PaymentStatus { payment_id: p.id.clone(), state: p.state };
            g.stats.duplicates += 1;
            st
        } else {
            let id = format!("sim-pay-{:08}", g.next_id);
            g.next_id += 1;
            let fails = self.cfg.fail_amount_over.is_some_and(|limit| req.amount_fen > limit);
            let final_state = if fails { PaymentState::Failed } else { PaymentState::Paid };
            let polls = self.cfg.processing_polls;
            let state = if polls == 0 { final_state } else { PaymentState::Processing };
            let key = req.idempotency_key.clone();
            g.stats.payments_created += 1;
            *g.stats.created_per_key.entry(key.clone()).or_default() += 1;
            if polls == 0 {
                count_final(&mut g.stats, final_state);
            }
            g.key_of.insert(id.clone(), key.clone());
            g.by_key.insert(key, Payment { id: id.clone(), body: req.clone(), polls_left: polls, final_state, state });
            PaymentStatus { payment_id: id, state }
        };
        if after {
            g.stats.injected_errors += 1;
            return Err(Refusal::new(500, "SYSTEM_ERROR"));
        }
        Ok(answer)
    }

    async fn do_status(&self, payment_id: String) -> std::result::Result<PaymentStatus, Refusal> {
        self.latency().await;
        let mut g = self.state.lock();
        self.gate(&mut g)?;
        g.stats.status_polls += 1;
        let SimState { key_of, by_key, stats, .. } = &mut *g;
        let p = key_of.get(&payment_id).and_then(|k| by_key.get_mut(k)).ok_or(Refusal::new(404, "NOT_FOUND"))?;
        if p.state == PaymentState::Processing {
            if p.polls_left <= 1 {
                p.state = p.final_state;
                count_final(stats, p.final_state);
            }
            p.polls_left = p.polls_left.saturating_sub(1);
        }
        Ok(PaymentStatus { payment_id, state: p.state })
    }
}

fn count_final(stats: &mut SimBackendStats, s: PaymentState) {
    match s {
        PaymentState::Paid => stats.paid += 1,
        PaymentState::Failed => stats.failed += 1,
        PaymentState::Processing => {}
    }
}

impl AuthInfoSource for SimBackend {
    fn fetch(&self, req: AuthInfoRequest) -> BoxFut<'_, Result<AuthInfoGrant>> {
        Box::pin(async move { self.do_authinfo(req).await.map_err(Refusal::into_error) })
    }
}

impl PaymentBackend for SimBackend {
    fn submit<'a>(&'a self, req: &'a PaymentRequest) -> BoxFut<'a, Result<PaymentStatus>> {
        Box::pin(async move { self.do_submit(req).await.map_err(Refusal::into_error) })
    }
    fn status(&self, payment_id: String) -> BoxFut<'_, Result<PaymentStatus>> {
        Box::pin(async move { self.do_status(payment_id).await.map_err(Refusal::into_error) })
    }
}

#[cfg(feature = "mock")]
pub mod http;

#[cfg(test)]
mod tests;
