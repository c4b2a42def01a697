//! The simulated vendor face service (`com.tencent.wxpayface`, API-NOTES §1): a
//! [`FaceService`] with seeded randomness, tokio-time latencies and fault injection, driven
//! by the demo, the benchmarks, the engine's tests and the emulator sample. It owns the
//! vendor's observable behaviour so each SPEC situation can happen: OTA restarts that hang
//! calls and silence callbacks, then come back uninitialised (T1); `ERR_INITIALISING` and
//! init failures (T2); feature updates, the silent 90 s auto-refresh and stale libraries
//! without network (T4); camera reopen cost when not preloaded (T5); preview binding (T6);
//! recognition failures that restart by themselves, `need_ext_verify`, and the vendor's
//! ordering errors, counted in [`SimStats`] so tests prove the engine never triggers them
//! (T7). It is stricter than the vendor where the SPEC is: `start_verify` needs a feature
//! update since the last init (T4.4), also after an OTA restart. Update times come from an
//! injectable clock, by default a [`VirtualWallClock`] that follows paused tokio time. A
//! seed reproduces a run given the same call order: each verification draws its own RNG
//! from the service's RNG when it starts.

mod config;
mod recognition;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

pub use self::config::{Latency, Presence, SimConfig, SimStats, ZERO};
pub use super::population::SimUser;
pub use super::virtual_clock::VirtualWallClock;
use crate::clock::{unix_ms, Clock};
use crate::error::Secret;
use crate::terminal::face_service::{
    BoxFut, Credential, CredentialParams, FaceService, FinishParams, InitParams, Op, ReturnCode, SdkInfo, ServiceEvent,
    Surface, UserInfo, VResult, VendorError, VerifyParams, ERR_INITIALISING, ERR_NOT_INITIALISED, ERR_NO_USER_INFO,
    ERR_SIMILAR_FACES,
};

/// Simulator-private `err_code`s (not vendor codes: the vendor documents none for these).
/// Init answered `FAIL` (fault injection).
pub const SIM_ERR_INIT_FAILED: i64 = 990_000_001;
/// Feature update failed (network down or fault injection).
pub const SIM_ERR_UPDATE_FAILED: i64 = 990_000_002;
/// `start_verify` before any feature update since init (T4.4).
pub const SIM_ERR_FEATURES_NOT_UPDATED: i64 = 990_000_003;
/// A request parameter is missing or invalid (empty appid, zero-sized surface, …).
pub const SIM_ERR_INVALID_PARAM: i64 = 990_000_004;

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
    finished: Option<usize>,
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
}

impl State {
    fn is_down(&self) -> bool {
        self.down_until.is_some_and(|t| Instant::now() < t)
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
            Err(VendorError::new(ReturnCode::Error, ERR_NOT_INITIALISED))
        }
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

    /// OTA upgrade: from now on every pending and new call hangs and no callback fires;
    /// after `down_for` the service answers again, but not initialised, camera cold, its
    /// feature library (and `last_update_data_time`) kept. Calls parked before come back
    /// never answer (dead binder).
    pub fn ota_restart(&self, down_for: Duration) {
        let mut s = self.inner.state.lock();
        s.generation += 1;
        s.stats.hung_calls += std::mem::take(&mut s.in_flight);
        s.down_until = Some(Instant::now() + down_for);
        s.teardown();
        s.initialising_left = self.inner.cfg.initialising_answers;
        s.stats.ota_restarts += 1;
        let generation = s.generation;
        drop(s);
        tracing::debug!(down_for = ?down_for, "sim face service: OTA restart");
        if !self.inner.cfg.init_callback_on_reconnect {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let weak = Arc::downgrade(&self.inner);
        rt.spawn(async move {
            tokio::time::sleep(down_for).await;
            let Some(inner) = weak.upgrade() else { return };
            let s = inner.state.lock();
            if s.generation == generation {
                // The vendor client reconnects and fires its init callback again, although
                // the restarted service is not initialised.
                s.emit(ServiceEvent::InitCallback { ok: true });
            }
        });
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

    /// A snapshot of the population (with personal data, as `Secret`s).
    pub fn users(&self) -> Vec<SimUser> {
        self.inner.state.lock().users.iter().map(|u| u.user.clone()).collect()
    }

    /// Queues who stands in front of the camera for the next verification (one entry per
    /// `start_verify`; without an entry, [`Presence::Random`]).
    pub fn present(&self, next: Presence) {
        self.inner.state.lock().presence.push_back(next);
    }

    /// Common entry of every call: counts it, hangs while down, waits the latency, and
    /// hangs if an OTA restart happened meanwhile. Returns the locked state.
    async fn begin(&self, op: Op, latency: Latency) -> MutexGuard<'_, State> {
        let ticket = {
            let mut s = self.inner.state.lock();
            s.stats.count_call(op);
            if s.is_down() {
                s.stats.hung_calls += 1;
                None
            } else {
                let wait = sample(&mut s.rng, latency);
                if !wait.is_zero() {
                    s.in_flight += 1;
                }
                Some((s.generation, wait))
            }
        };
        let Some((generation, wait)) = ticket else { return hang().await };
        if wait.is_zero() {
            return self.inner.state.lock();
        }
        let parked = InFlight { inner: &self.inner, generation };
        tokio::time::sleep(wait).await;
        std::mem::forget(parked);
        {
            let mut s = self.inner.state.lock();
            if s.generation == generation {
                s.in_flight -= 1;
                return s;
            }
            // Counted as hung by `ota_restart`.
        }
        hang().await
    }

    fn spawn_auto_refresh(&self, life: u64) {
        let weak = Arc::downgrade(&self.inner);
        let every = self.inner.cfg.auto_refresh_every;
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

impl FaceService for SimFaceService {
    fn set_listener(&self, tx: UnboundedSender<ServiceEvent>) {
        self.inner.state.lock().listener = Some(tx);
    }

    fn init(&self, p: InitParams) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let mut s = self.begin(Op::Init, self.inner.cfg.init).await;
            if s.initialising_left > 0 {
                s.initialising_left -= 1;
                s.stats.initialising_answers += 1;
                return Err(fail(ReturnCode::Error, ERR_INITIALISING));
            }
            if p.appid.is_empty() || p.mch_id.is_empty() {
                s.stats.inits_failed += 1;
                return Err(fail(ReturnCode::Fail, SIM_ERR_INVALID_PARAM));
            }
            if s.initialised {
                // T2.1: harmless; the vendor SDK fires its init callback again.
                s.stats.inits_ok += 1;
                s.emit(ServiceEvent::InitCallback { ok: true });
                return Ok(());
            }
            if chance(&mut s.rng, self.inner.cfg.p_init_fail) {
                s.stats.inits_failed += 1;
                s.emit(ServiceEvent::InitCallback { ok: false });
                return Err(fail(ReturnCode::Fail, SIM_ERR_INIT_FAILED));
            }
            s.initialised = true;
            s.updated_since_init = false;
            s.life += 1;
            s.stats.inits_ok += 1;
            s.emit(ServiceEvent::InitCallback { ok: true });
            let life = s.life;
            drop(s);
            self.spawn_auto_refresh(life);
            Ok(())
        })
    }

    fn raw_data(&self) -> BoxFut<'_, VResult<String>> {
        Box::pin(async move {
            let mut s = self.begin(Op::RawData, self.inner.cfg.call).await;
            s.require_init()?;
            let (a, b) = (s.rng.next_u64(), s.rng.next_u64());
            Ok(format!("rawdata_{a:016x}{b:016x}"))
        })
    }

    fn preload(&self) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let mut s = self.begin(Op::Preload, self.inner.cfg.preload).await;
            s.require_init()?;
            s.camera_warm = true;
            Ok(())
        })
    }

    fn update_features(&self) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let mut s = self.begin(Op::UpdateFeatures, self.inner.cfg.update_features).await;
            s.require_init()?;
            let faulty = chance(&mut s.rng, self.inner.cfg.p_update_fail);
            if !s.network_up || faulty {
                s.stats.updates_failed += 1;
                // Seed §1.4: before the first recognition one update must have answered,
                // success or failure (成功/失败都可以). The library itself is unchanged.
                s.updated_since_init = true;
                return Err(fail(ReturnCode::Fail, SIM_ERR_UPDATE_FAILED));
            }
            s.apply_update(unix_ms(self.inner.clock.wall()));
            s.stats.updates_ok += 1;
            Ok(())
        })
    }

    fn sdk_info(&self) -> BoxFut<'_, VResult<SdkInfo>> {
        Box::pin(async move {
            let mut s = self.begin(Op::SdkInfo, self.inner.cfg.call).await;
            s.require_init()?;
            Ok(SdkInfo {
                sdk_version: "2.21.0.sim".into(),
                face_feature_version: "5.3.1".into(),
                user_info_dbcount: s.users.iter().filter(|u| u.on_device).count() as u64,
                user_info_total_count: s.users.iter().filter(|u| u.in_cloud).count() as u64,
                last_update_data_time_ms: s.last_update_ms,
            })
        })
    }

    fn set_preview(&self, surface: Surface) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let mut s = self.begin(Op::SetPreview, self.inner.cfg.call).await;
            s.require_init()?;
            if surface.id == 0 || surface.width == 0 || surface.height == 0 {
                return Err(fail(ReturnCode::Fail, SIM_ERR_INVALID_PARAM));
            }
            s.stats.preview_binds += 1;
            if self.inner.cfg.double_preview_callback {
                s.stats.preview_double_callbacks += 1;
            }
            Ok(())
        })
    }

    fn remove_preview(&self) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let mut s = self.begin(Op::RemovePreview, self.inner.cfg.call).await;
            s.require_init()?;
            s.stats.preview_removes += 1;
            Ok(())
        })
    }

    fn start_verify(&self, p: VerifyParams) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let mut s = self.begin(Op::StartVerify, self.inner.cfg.call).await;
            s.require_init()?;
            if !s.updated_since_init {
                s.stats.verify_without_features += 1;
                return Err(fail(ReturnCode::Fail, SIM_ERR_FEATURES_NOT_UPDATED));
            }
            if p.authinfo.is_empty() {
                return Err(fail(ReturnCode::Fail, SIM_ERR_INVALID_PARAM));
            }
            let cfg = &self.inner.cfg;
            let presence = match s.presence.pop_front().unwrap_or(Presence::Random) {
                Presence::Random => {
                    let enrolled = s.users.iter().filter(|u| u.in_cloud).count();
                    if enrolled == 0 {
                        Presence::Nobody
                    } else {
                        let nth = s.rng.random_range(0..enrolled);
                        let (idx, _) =
                            s.users.iter().enumerate().filter(|(_, u)| u.in_cloud).nth(nth).expect("nth < count");
                        Presence::User(idx)
                    }
                }
                other => other,
            };
            let mut first_frame = sample(&mut s.rng, cfg.first_frame);
            if !s.camera_warm {
                first_frame += sample(&mut s.rng, cfg.camera_reopen_cost);
                s.camera_warm = true;
                s.stats.camera_cold_starts += 1;
            }
            let rng = ChaCha8Rng::seed_from_u64(s.rng.next_u64());
            // A second start while one runs restarts: the old session goes silent.
            s.verify_epoch += 1;
            s.session = Some(Session { stopped: false, recognised: None, finished: None });
            s.stats.verifications_started += 1;
            let epoch = s.verify_epoch;
            drop(s);
            let weak = Arc::downgrade(&self.inner);
            tokio::spawn(recognition::run(weak, epoch, p.session, rng, presence, first_frame));
            Ok(())
        })
    }

    fn stop_verify(&self) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let mut s = self.begin(Op::StopVerify, self.inner.cfg.call).await;
            s.require_init()?;
            // T7.7: stops recognition, keeps the recognition data.
            s.verify_epoch += 1;
            if let Some(sess) = s.session.as_mut() {
                sess.stopped = true;
            }
            Ok(())
        })
    }

    fn finish_verify(&self, p: FinishParams) -> BoxFut<'_, VResult<UserInfo>> {
        Box::pin(async move {
            let mut s = self.begin(Op::Finish, self.inner.cfg.call).await;
            s.require_init()?;
            let matched = s.session.as_ref().and_then(|x| x.recognised.as_ref()).map(|m| (m.user, m.need_ext_verify));
            let Some((idx, need_ext)) = matched.filter(|(i, _)| s.users[*i].user.user_id == p.user_id) else {
                // T7.3: "no user info"; the payment side counts a lost user.
                s.stats.finish_without_recognition += 1;
                return Err(fail(ReturnCode::Fail, ERR_NO_USER_INFO));
            };
            let user = &s.users[idx].user;
            if need_ext && !p.user_phone.as_ref().is_some_and(|ph| user.phone_matches(ph)) {
                s.stats.finish_ext_verify_failed += 1;
                return Err(fail(ReturnCode::Fail, ERR_SIMILAR_FACES));
            }
            let info = user.user_info();
            s.stats.finishes += 1;
            if let Some(sess) = s.session.as_mut() {
                sess.finished = Some(idx);
            }
            Ok(info)
        })
    }

    fn credential(&self, p: CredentialParams) -> BoxFut<'_, VResult<Credential>> {
        Box::pin(async move {
            let mut s = self.begin(Op::Credential, self.inner.cfg.call).await;
            s.require_init()?;
            let (stopped, finished) = match &s.session {
                Some(x) => (x.stopped, x.finished),
                None => (false, None),
            };
            if stopped {
                // T7.5: the payment side would count a cancelled flow as a lost payment.
                s.stats.credential_after_stop += 1;
            }
            if finished.is_none_or(|i| s.users[i].user.user_id != p.user_id) {
                // T7.4: "userId is empty".
                s.stats.credential_without_finish += 1;
                return Err(fail(ReturnCode::Fail, ERR_NO_USER_INFO));
            }
            let (a, b) = (s.rng.next_u64(), s.rng.next_u64());
            s.stats.credentials_issued += 1;
            s.session = None;
            Ok(Credential { face_token: Secret::new(format!("ft_{a:016x}{b:016x}")) })
        })
    }

    fn release(&self) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let mut s = self.begin(Op::Release, self.inner.cfg.call).await;
            // "Service not registered" when there is nothing to release.
            s.require_init()?;
            s.teardown();
            s.stats.releases += 1;
            Ok(())
        })
    }
}
