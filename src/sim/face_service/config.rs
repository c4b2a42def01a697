//! Configuration, scripted presence and statistics of the simulated face service: the
//! latencies and fault probabilities a run is built from ([`SimConfig`]), who stands in
//! front of the camera for the next verification ([`Presence`]), and the counters that let
//! tests prove the engine never breaks the vendor's ordering rules ([`SimStats`], SPEC T7).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::terminal::face_service::Op;

/// A latency range `(min, max)`; a value is drawn uniformly from it. `min >= max` means
/// exactly `min`.
pub type Latency = (Duration, Duration);

const fn ms(min: u64, max: u64) -> Latency {
    (Duration::from_millis(min), Duration::from_millis(max))
}

/// No latency.
pub const ZERO: Latency = (Duration::ZERO, Duration::ZERO);

/// How the simulated service behaves. Probabilities are clamped to `[0, 1]`.
#[derive(Clone)]
pub struct SimConfig {
    /// Seeds every random choice (population, latencies, faults, ids, tokens).
    pub seed: u64,
    pub init: Latency,
    /// Ordinary calls: raw_data, sdk_info, preview, stop, finish, credential, release.
    pub call: Latency,
    pub update_features: Latency,
    pub preload: Latency,
    /// From `start_verify` to `FirstFrame`.
    pub first_frame: Latency,
    /// From the first frame (and from each automatic restart, then at least 50 ms so that
    /// zero latency cannot spin) to a result.
    pub recognition: Latency,
    /// Added to the first frame when the camera is cold (not preloaded since init, or
    /// after release/OTA). SPEC T5: 1–2 s.
    pub camera_reopen_cost: Latency,
    /// Probability that an init answers `FAIL` (with an `InitCallback{ok:false}`).
    pub p_init_fail: f64,
    /// The first N init calls after start answer `FAIL` + `ERR_INITIALISING` (after an OTA
    /// restart the library initialises the new service itself, VENDOR-API §3.2).
    pub initialising_answers: u32,
    /// Probability that a feature update answers `FAIL` although the network is up.
    pub p_update_fail: f64,
    /// Per recognition attempt: a `Failed` event with a random recognition code, after
    /// which recognition restarts by itself (T7.1).
    pub p_recognition_fail: f64,
    /// Probability that a success carries `need_ext_verify = true` (T7.6).
    pub p_need_ext_verify: f64,
    /// Size of the enrolled population generated from the seed.
    pub users: usize,
    /// Period of the service's own feature refresh (T4.2: 90 s), without callback.
    pub auto_refresh_every: Duration,
    /// The real library may answer `setCameraPreview` more than once (VENDOR-API §7.3):
    /// the extra answer goes to the listener as a `LateAnswer`.
    pub double_preview_callback: bool,
    /// Wall clock for `last_update_data_time`; `None` = a [`super::VirtualWallClock`]
    /// started when the service is built (follows paused tokio time).
    pub clock: Option<Arc<dyn Clock>>,
}

impl Default for SimConfig {
    /// Realistic latencies and occasional faults (the demo's setting).
    fn default() -> Self {
        SimConfig {
            seed: 0,
            init: ms(300, 800),
            call: ms(5, 30),
            update_features: ms(200, 1500),
            preload: ms(300, 800),
            first_frame: ms(150, 400),
            recognition: ms(400, 1500),
            camera_reopen_cost: ms(1000, 2000),
            p_init_fail: 0.02,
            initialising_answers: 1,
            p_update_fail: 0.05,
            p_recognition_fail: 0.15,
            p_need_ext_verify: 0.03,
            users: 200,
            auto_refresh_every: Duration::from_secs(90),
            double_preview_callback: false,
            clock: None,
        }
    }
}

impl SimConfig {
    /// Realistic defaults with this seed.
    pub fn seeded(seed: u64) -> Self {
        SimConfig { seed, ..SimConfig::default() }
    }

    /// Zero latency and no random faults: measures engine overhead only (`bench flow`).
    pub fn instant(seed: u64) -> Self {
        SimConfig {
            seed,
            init: ZERO,
            call: ZERO,
            update_features: ZERO,
            preload: ZERO,
            first_frame: ZERO,
            recognition: ZERO,
            camera_reopen_cost: ZERO,
            p_init_fail: 0.0,
            initialising_answers: 0,
            p_update_fail: 0.0,
            p_recognition_fail: 0.0,
            p_need_ext_verify: 0.0,
            users: 50,
            ..SimConfig::default()
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("seed", &self.seed)
            .field("init", &self.init)
            .field("call", &self.call)
            .field("update_features", &self.update_features)
            .field("preload", &self.preload)
            .field("first_frame", &self.first_frame)
            .field("recognition", &self.recognition)
            .field("camera_reopen_cost", &self.camera_reopen_cost)
            .field("p_init_fail", &self.p_init_fail)
            .field("initialising_answers", &self.initialising_answers)
            .field("p_update_fail", &self.p_update_fail)
            .field("p_recognition_fail", &self.p_recognition_fail)
            .field("p_need_ext_verify", &self.p_need_ext_verify)
            .field("users", &self.users)
            .field("auto_refresh_every", &self.auto_refresh_every)
            .field("double_preview_callback", &self.double_preview_callback)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// Who stands in front of the camera for one verification (queued with
/// `SimFaceService::present`; without a queued entry, [`Presence::Random`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// A random user enrolled in the cloud (the default).
    Random,
    /// This user (index into the population). Not in the device library → every attempt
    /// fails with `ERR_NO_MATCHING_USER` until an update brings the user in.
    User(usize),
    /// Nobody: after the first frame, no result at all until stopped.
    Nobody,
    /// Every attempt fails with this code (recognition keeps restarting).
    Failing(i64),
    /// This user, recognised with `need_ext_verify = true` (similar faces).
    ExtVerify(usize),
}

/// Counters of everything the service saw. The `*_without_*` / `*_after_*` counters are
/// ordering violations: a correct engine keeps them at zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    calls: [u64; OPS],
    pub inits_ok: u64,
    pub inits_failed: u64,
    /// Init calls answered `ERR_INITIALISING`.
    pub initialising_answers: u64,
    pub releases: u64,
    pub ota_restarts: u64,
    /// Calls that will never answer (made while down, or pending across an OTA restart).
    pub hung_calls: u64,
    /// Calls answered `ERR_NOT_INITIALISED`.
    pub not_initialised_answers: u64,
    pub updates_ok: u64,
    pub updates_failed: u64,
    /// Refreshes the service did by itself (T4.2), whether or not the network was up.
    pub auto_refreshes: u64,
    /// `start_verify` refused because features were not updated since init (T4.4).
    pub verify_without_features: u64,
    pub verifications_started: u64,
    pub recognitions_ok: u64,
    pub recognitions_failed: u64,
    pub ext_verify_requests: u64,
    pub finishes: u64,
    /// T7.3: finish with no `Recognised` in the current session (a "lost user").
    pub finish_without_recognition: u64,
    /// T7.6: finish with `need_ext_verify` pending and no or a wrong phone.
    pub finish_ext_verify_failed: u64,
    pub credentials_issued: u64,
    /// T7.4: credential before a successful finish of the current session ("userId is
    /// empty"), or for another user than the finished one.
    pub credential_without_finish: u64,
    /// T7.5/T7.7: credential asked for a stopped (cancelled) session.
    pub credential_after_stop: u64,
    pub preview_binds: u64,
    pub preview_removes: u64,
    pub preview_double_callbacks: u64,
    /// First frames that paid the camera reopen cost (T5).
    pub camera_cold_starts: u64,
    /// T3.6: calls after rawdata without the authed map (refused "机构id不匹配").
    pub calls_without_authinfo: u64,
    /// T9: calls made while disconnected that overwrote the pending one (which then never
    /// answers). A correct engine keeps at most one call outstanding: zero.
    pub pending_overwrites: u64,
    /// T9: FAIL answers of the library's 10 s timeout (the call stays pending).
    pub timeout_fails: u64,
    /// T9: real answers that followed such a FAIL (the engine must count only one).
    pub late_answers_after_fail: u64,
    /// T9: inits the library ran by itself at a reconnect (no app callback).
    pub library_inits: u64,
    /// The library's silent re-preloads after a reconnect (not the SDK's sequence).
    pub library_repreloads: u64,
    /// T2.4: inits with a proxy map (the 3-argument form).
    pub inits_with_proxy: u64,
    pub raw_data_given: u64,
    /// T7.10: credentials asked with a `recog_mode` that does not match the finish (phone
    /// entered or not) or a `total_fee` that is not a positive integer String.
    pub credential_bad_params: u64,
    /// Finish or credential calls the library replayed to a restarted service (which has
    /// no session any more) and that it refused: the library's doing, not an engine order.
    pub replayed_to_restarted: u64,
}

const OPS: usize = Op::ALL.len();

impl SimStats {
    /// Calls made to `op` (answered, failed or hung).
    pub fn calls(&self, op: Op) -> u64 {
        self.calls[op.index()]
    }

    /// Calls per operation, every operation listed (for summaries).
    pub fn calls_by_op(&self) -> impl Iterator<Item = (Op, u64)> + '_ {
        Op::ALL.iter().map(|&op| (op, self.calls(op)))
    }

    /// Sum of the ordering-violation counters (T7.3–T7.6, T7.10).
    pub fn order_violations(&self) -> u64 {
        self.finish_without_recognition
            + self.finish_ext_verify_failed
            + self.credential_without_finish
            + self.credential_after_stop
            + self.credential_bad_params
    }

    pub(super) fn count_call(&mut self, op: Op) {
        self.calls[op.index()] += 1;
    }
}
