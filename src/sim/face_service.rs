//! The simulated vendor face service (`com.tencent.wxpayface`, VENDOR-API.md): a
//! [`FaceService`] with seeded randomness, tokio-time latencies and fault injection, driven
//! by the demo, the benchmarks, the engine's tests and the emulator sample. It owns the
//! vendor's observable behaviour so each SPEC situation can happen: OTA restarts that hang
//! calls and silence callbacks, then come back uninitialised (T1); `ERR_INITIALISING` and
//! init failures (T2); feature updates, the silent 90 s auto-refresh and stale libraries
//! without network (T4); camera reopen cost when not preloaded (T5); preview binding (T6);
//! recognition failures that restart by themselves, `need_ext_verify`, and the vendor's
//! ordering errors, counted in [`SimStats`] so tests prove the engine never triggers them
//! (T7). It also plays the vendor's client library (`link`, SPEC T9, VENDOR-API §3): while
//! the service is down, a call waits in the library's single pending slot (a second call
//! overwrites it and the first never answers), the library's 10 s timeout (armed once per
//! lifetime) answers FAIL 620/621 and keeps the call, whose real answer follows after the
//! reconnect, and the library re-initialises the restarted service itself without calling
//! any init callback. Every call after rawdata must carry the authed map (T3.6), or it
//! answers FAIL as the real service does for a mismatched organisation. It is stricter
//! than the vendor where the SPEC is: `start_verify` needs a feature update since the last
//! init (T4.4), also after an OTA restart. Update times come from an
//! injectable clock, by default a [`VirtualWallClock`] that follows paused tokio time. A
//! seed reproduces a run given the same call order: each verification draws its own RNG
//! from the service's RNG when it starts.

mod config;
mod link;
mod ops;
mod recognition;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

pub use self::config::{Latency, Presence, SimConfig, SimStats, ZERO};
pub use super::population::SimUser;
pub use super::virtual_clock::VirtualWallClock;
use crate::clock::{unix_ms, Clock};
use crate::terminal::face_service::{Authed, ReturnCode, ServiceEvent, VResult, VendorError, ERR_NOT_INITIALISED};

/// Simulator-private `err_code`s (not vendor codes: the vendor documents none for these).
/// Init answered `FAIL` (fault injection).
pub const SIM_ERR_INIT_FAILED: i64 = 990_000_001;
/// Feature update failed (network down or fault injection).
pub const SIM_ERR_UPDATE_FAILED: i64 = 990_000_002;
/// `start_verify` before any feature update since init (T4.4).
pub const SIM_ERR_FEATURES_NOT_UPDATED: i64 = 990_000_003;
/// A request parameter is missing or invalid (zero-sized surface, …).
pub const SIM_ERR_INVALID_PARAM: i64 = 990_000_004;
/// A call after rawdata without `authinfo` / `organization_id` (T3.6): the real service
/// answers "机构id不匹配" (organisation id mismatch); its code is not known.
pub const SIM_ERR_ORG_MISMATCH: i64 = 990_000_005;

/// The simulated service. Build with [`SimFaceService::new`]; drive faults with the
/// control methods (`ota_restart`, `set_network`, `enroll_user`, `cancel_user`, `present`).
pub struct SimFaceService {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: SimConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

struct UserRecord {
    user: SimUser,
    in_cloud: bool,
    on_device: bool,
}

struct Matched {
    user: usize,
    need_ext_verify: bool,
}

struct Session {
    stopped: bool,
    recognised: Option<Matched>,
    /// The finished user and whether a phone was entered (T7.10's recog_mode).
    finished: Option<(usize, bool)>,
}

struct State {
    rng: ChaCha8Rng,
    /// Bumped by every OTA restart: a call that started in an older generation never answers.
    generation: u64,
    down_until: Option<Instant>,
    /// Calls of this generation waiting out their latency.
    in_flight: u64,
    initialised: bool,
    initialising_left: u32,
    /// Bumped at every init and teardown: stale auto-refresh tasks exit.
    life: u64,
    updated_since_init: bool,
    camera_warm: bool,
    network_up: bool,
    last_update_ms: Option<i64>,
    users: Vec<UserRecord>,
    listener: Option<UnboundedSender<ServiceEvent>>,
    /// Bumped at every start/stop/teardown: stale recognition tasks stay silent.
    verify_epoch: u64,
    session: Option<Session>,
    presence: VecDeque<Presence>,
    stats: SimStats,
    /// The library's connection model (pending slot, timeout, reconnect): `link`.
    link: link::LinkState,
    /// The restarted service was initialised by the library alone: until the SDK's own
    /// sequence updated features again, it refuses `getSdkInfo`, verification, finish and
    /// credential with 620.
    needs_sequence: bool,
    /// The call being answered was replayed by the library after a reconnect.
    replaying: bool,
}

impl State {
    /// Not connected: inside an OTA restart window, until the library reconnected.
    fn is_down(&self) -> bool {
        !self.link.connected()
    }

    fn teardown(&mut self) {
        self.initialised = false;
        self.updated_since_init = false;
        self.camera_warm = false;
        self.life += 1;
        self.verify_epoch += 1;
        self.session = None;
    }

    fn require_init(&mut self) -> VResult<()> {
        if self.initialised {
            Ok(())
        } else {
            self.stats.not_initialised_answers += 1;
            Err(VendorError::new(ReturnCode::Fail, ERR_NOT_INITIALISED))
        }
    }

    /// An ordering error reached the service. A call the library replayed to a restarted
    /// service (made before anyone could know of the restart, VENDOR-API §3.3) is counted
    /// apart: it is the library's replay, not the engine's order.
    fn count_violation(&mut self, counter: impl FnOnce(&mut SimStats) -> &mut u64) {
        if self.replaying {
            self.stats.replayed_to_restarted += 1;
        } else {
            *counter(&mut self.stats) += 1;
        }
    }

    /// T3.6: every call after rawdata carries the authed map; the real service refuses a
    /// mismatched organisation ("机构id不匹配"), so a missing one is refused too.
    fn require_authed(&mut self, m: &Authed) -> VResult<()> {
        if m.is_complete() && !m.appid.is_empty() && !m.mch_name.is_empty() {
            Ok(())
        } else {
            self.stats.calls_without_authinfo += 1;
            Err(VendorError::new(ReturnCode::Fail, SIM_ERR_ORG_MISMATCH))
        }
    }

    /// After a restart the library re-initialised by itself (T9): the stricter choice for
    /// what the remote does before the SDK's own sequence ran (VENDOR-API §11 leaves it
    /// open) is "not initialised".
    fn require_sequenced(&mut self) -> VResult<()> {
        if self.needs_sequence {
            self.stats.not_initialised_answers += 1;
            return Err(VendorError::new(ReturnCode::Fail, ERR_NOT_INITIALISED));
        }
        Ok(())
    }

    fn apply_update(&mut self, wall_ms: i64) {
        for u in &mut self.users {
            u.on_device = u.in_cloud;
        }
        self.last_update_ms = Some(wall_ms);
        self.updated_since_init = true;
    }

    fn emit(&self, ev: ServiceEvent) {
        if let Some(tx) = &self.listener {
            // A dropped receiver means nobody listens any more: like a dead app process.
            let _ = tx.send(ev);
        }
    }
}

fn sample(rng: &mut impl RngCore, (min, max): Latency) -> Duration {
    if min >= max {
        return min;
    }
    let span = (max - min).as_nanos().min(u64::MAX as u128) as u64;
    min + Duration::from_nanos(rng.random_range(0..=span))
}

fn chance(rng: &mut impl RngCore, p: f64) -> bool {
    p > 0.0 && rng.random_bool(p.min(1.0))
}

async fn pause(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// A call to a dead service: never answers.
async fn hang<T>() -> T {
    std::future::pending().await
}

/// A call waiting out its latency. Dropped before it answers (the caller gave up), it
/// leaves the in-flight count; an OTA restart turns every in-flight call into a hung one.
struct InFlight<'a> {
    inner: &'a Inner,
    generation: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut s = self.inner.state.lock();
        if s.generation == self.generation {
            s.in_flight -= 1;
        }
    }
}

fn fail(code: ReturnCode, err_code: i64) -> VendorError {
    VendorError::new(code, err_code)
}

impl SimFaceService {
    /// Builds the service (not initialised, camera cold, network up, no features yet).
    pub fn new(cfg: SimConfig) -> Arc<SimFaceService> {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let users = (0..cfg.users)
            .map(|i| UserRecord { user: SimUser::generate(i, &mut rng), in_cloud: true, on_device: true })
            .collect();
        let clock = cfg.clock.clone().unwrap_or_else(|| Arc::new(VirtualWallClock::new()));
        let state = State {
            rng,
            generation: 0,
            down_until: None,
            in_flight: 0,
            initialised: false,
            initialising_left: cfg.initialising_answers,
            life: 0,
            updated_since_init: false,
            camera_warm: false,
            network_up: true,
            last_update_ms: None,
            users,
            listener: None,
            verify_epoch: 0,
            session: None,
            presence: VecDeque::new(),
            stats: SimStats::default(),
            link: link::LinkState::default(),
            needs_sequence: false,
            replaying: false,
        };
        Arc::new(SimFaceService { inner: Arc::new(Inner { cfg, clock, state: Mutex::new(state) }) })
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.cfg
    }

    /// The wall clock that stamps `last_update_data_time`: give the engine the same clock
    /// so that its "older than 10 minutes" check (T4.3) runs on the same (virtual) time.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// `last_update_data_time` as `sdk_info` would answer it, without making a call.
    pub fn last_update_data_time_ms(&self) -> Option<i64> {
        self.inner.state.lock().last_update_ms
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.inner.state.lock().stats.clone()
    }

    /// OTA upgrade: from now on every call in flight never answers (dead binder) and no
    /// callback fires; new calls wait in the library's pending slot (`link`). After
    /// `down_for` the library reconnects, initialises the new service itself (no init
    /// callback, T9) and replays the slot; the service keeps its feature library (and
    /// `last_update_data_time`), its camera is cold.
    pub fn ota_restart(&self, down_for: Duration) {
        let mut s = self.inner.state.lock();
        s.generation += 1;
        s.stats.hung_calls += std::mem::take(&mut s.in_flight);
        s.down_until = Some(Instant::now() + down_for);
        s.teardown();
        s.stats.ota_restarts += 1;
        let generation = s.generation;
        drop(s);
        tracing::debug!(down_for = ?down_for, "sim face service: OTA restart");
        link::on_disconnected(&self.inner, generation, down_for);
    }

    /// Whether the service is down (inside an OTA restart window).
    pub fn is_down(&self) -> bool {
        self.inner.state.lock().is_down()
    }

    pub fn is_initialised(&self) -> bool {
        let s = self.inner.state.lock();
        s.initialised && !s.is_down()
    }

    /// The device's network: when down, feature updates (manual and automatic) fail.
    pub fn set_network(&self, up: bool) {
        self.inner.state.lock().network_up = up;
    }

    /// Enrols a new user in the cloud; the device learns it at the next successful update.
    /// Returns its index.
    pub fn enroll_user(&self) -> usize {
        let mut s = self.inner.state.lock();
        let idx = s.users.len();
        let user = SimUser::generate(idx, &mut s.rng);
        s.users.push(UserRecord { user, in_cloud: true, on_device: false });
        idx
    }

    /// Cancels a user in the cloud (contract ended); the device still recognises the user
    /// until the next successful update. Unknown indices are ignored.
    pub fn cancel_user(&self, idx: usize) {
        if let Some(u) = self.inner.state.lock().users.get_mut(idx) {
            u.in_cloud = false;
        }
    }

    /// Sets a user's `UserInfo.status` (T7.10: only `FS_NORMAL` may pay). Unknown indices
    /// are ignored.
    pub fn set_user_status(&self, idx: usize, status: &str) {
        if let Some(u) = self.inner.state.lock().users.get_mut(idx) {
            u.user.status = status.to_string();
        }
    }

    /// A snapshot of the population (with personal data, as `Secret`s).
    pub fn users(&self) -> Vec<SimUser> {
        self.inner.state.lock().users.iter().map(|u| u.user.clone()).collect()
    }

    /// Queues who stands in front of the camera for the next verification (one entry per
    /// `start_verify`; without an entry, [`Presence::Random`]).
    pub fn present(&self, next: Presence) {
        self.inner.state.lock().presence.push_back(next);
    }
}

/// The service's own feature refresh (T4.2), every `auto_refresh_every`, without callback.
fn spawn_auto_refresh(inner: &Arc<Inner>, life: u64) {
    {
        let weak = Arc::downgrade(inner);
        let every = inner.cfg.auto_refresh_every;
        if every.is_zero() {
            return;
        }
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { return };
                let mut s = inner.state.lock();
                if s.life != life || !s.initialised || s.is_down() {
                    return;
                }
                s.stats.auto_refreshes += 1;
                if s.network_up {
                    s.apply_update(unix_ms(inner.clock.wall()));
                }
            }
        });
    }
}
