//! The simulated service's operations (the [`FaceService`] implementation, SPEC T2–T7,
//! T9): each goes through the library model (`link`: pending slot, timeout FAIL then late
//! answer), then its latency (hung by an OTA restart meanwhile), then the authed-map check
//! (T3.6) and its body under the state lock.

use std::sync::Arc;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc::UnboundedSender;

use super::link::{self, Entered, Wake};
use super::{
    chance, fail, hang, recognition, sample, spawn_auto_refresh, InFlight, Inner, Latency, Presence, Session,
    SimFaceService, State, SIM_ERR_FEATURES_NOT_UPDATED, SIM_ERR_INIT_FAILED, SIM_ERR_INVALID_PARAM,
    SIM_ERR_UPDATE_FAILED,
};
use crate::clock::unix_ms;
use crate::error::Secret;
use crate::terminal::face_service::{
    Authed, BoxFut, Credential, CredentialParams, FaceService, FinishParams, InitParams, Op, RecogMode, ReturnCode,
    SdkInfo, ServiceEvent, Surface, UserInfo, VResult, VerifyParams, ERR_INITIALISING, ERR_NO_USER_INFO,
    ERR_SIMILAR_FACES,
};

/// Waits out a call's latency; hangs if an OTA restart happens meanwhile.
async fn wait_latency(inner: &Inner, latency: Latency) -> parking_lot::MutexGuard<'_, State> {
    let (generation, wait) = {
        let mut s = inner.state.lock();
        let wait = sample(&mut s.rng, latency);
        if wait.is_zero() {
            return s;
        }
        s.in_flight += 1;
        (s.generation, wait)
    };
    let parked = InFlight { inner, generation };
    tokio::time::sleep(wait).await;
    std::mem::forget(parked);
    {
        let mut s = inner.state.lock();
        if s.generation == generation {
            s.in_flight -= 1;
            return s;
        }
        // Counted as hung by `ota_restart`.
    }
    hang().await
}

fn answer<T>(inner: &Arc<Inner>, s: &mut State, authed: Option<&Authed>, body: Body<T>) -> VResult<T> {
    if let Some(m) = authed {
        s.require_authed(m)?;
    }
    body(inner, s)
}

type Body<T> = Box<dyn FnOnce(&Arc<Inner>, &mut State) -> VResult<T> + Send>;

impl SimFaceService {
    /// One operation through the library: `authed` is the map of a call after rawdata.
    fn run<T: Send + 'static>(
        &self,
        op: Op,
        latency: Latency,
        authed: Option<Authed>,
        body: Body<T>,
    ) -> BoxFut<'_, VResult<T>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let entered = {
                let mut s = inner.state.lock();
                s.stats.count_call(op);
                if authed.as_ref().is_some_and(|m| !m.authinfo.is_empty()) {
                    s.link.authed_seen = true;
                }
                link::enter(&mut s, op)
            };
            let mut replayed = false;
            if let Entered::Slot(mut rx, id) = entered {
                match rx.recv().await {
                    Some(Wake::Go) => replayed = true,
                    Some(Wake::Fail(code)) => {
                        // T9: FAIL now, and the call stays: its real answer follows.
                        let late: link::Late = Box::new(move |inner, s| {
                            s.replaying = true;
                            let _ = answer(inner, s, authed.as_ref(), body);
                            s.replaying = false;
                            s.stats.late_answers_after_fail += 1;
                            s.emit(ServiceEvent::LateAnswer { op });
                        });
                        let mut s = inner.state.lock();
                        link::keep_late(&inner, &mut s, id, late, &mut rx);
                        return Err(fail(ReturnCode::Fail, code));
                    }
                    // Overwritten by a later call: never answers.
                    None => return hang().await,
                }
            }
            let mut s = wait_latency(&inner, latency).await;
            s.replaying = replayed;
            let r = answer(&inner, &mut s, authed.as_ref(), body);
            s.replaying = false;
            r
        })
    }
}

impl FaceService for SimFaceService {
    fn set_listener(&self, tx: UnboundedSender<ServiceEvent>) {
        self.inner.state.lock().listener = Some(tx);
    }

    fn init(&self, p: InitParams) -> BoxFut<'_, VResult<()>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let parked = {
                let mut s = inner.state.lock();
                s.stats.count_call(Op::Init);
                if p.proxy.is_some() {
                    s.stats.inits_with_proxy += 1;
                }
                link::park_init(&mut s)
            };
            if let Some(rx) = parked {
                // Answered when the library connects (its remote init), never otherwise.
                return match rx.await {
                    Ok(()) => Ok(()),
                    Err(_) => hang().await,
                };
            }
            let mut s = wait_latency(&inner, inner.cfg.init).await;
            if s.initialised {
                // T2.1: already connected and initialised: the library answers SUCCESS
                // locally; no callback fires anywhere else (T9).
                s.stats.inits_ok += 1;
                return Ok(());
            }
            if s.initialising_left > 0 {
                s.initialising_left -= 1;
                s.stats.initialising_answers += 1;
                return Err(fail(ReturnCode::Fail, ERR_INITIALISING));
            }
            if chance(&mut s.rng, inner.cfg.p_init_fail) {
                s.stats.inits_failed += 1;
                return Err(fail(ReturnCode::Fail, SIM_ERR_INIT_FAILED));
            }
            s.initialised = true;
            s.updated_since_init = false;
            s.needs_sequence = false;
            s.life += 1;
            s.stats.inits_ok += 1;
            let life = s.life;
            drop(s);
            spawn_auto_refresh(&inner, life);
            Ok(())
        })
    }

    fn raw_data(&self) -> BoxFut<'_, VResult<String>> {
        self.run(
            Op::RawData,
            self.inner.cfg.call,
            None,
            Box::new(|_, s| {
                s.require_init()?;
                let (a, b) = (s.rng.next_u64(), s.rng.next_u64());
                s.stats.raw_data_given += 1;
                Ok(format!("rawdata_{a:016x}{b:016x}"))
            }),
        )
    }

    fn preload(&self, m: Authed) -> BoxFut<'_, VResult<()>> {
        self.run(
            Op::Preload,
            self.inner.cfg.preload,
            Some(m),
            Box::new(|_, s| {
                s.require_init()?;
                s.camera_warm = true;
                Ok(())
            }),
        )
    }

    fn update_features(&self, m: Authed) -> BoxFut<'_, VResult<()>> {
        self.run(
            Op::UpdateFeatures,
            self.inner.cfg.update_features,
            Some(m),
            Box::new(|inner, s| {
                s.require_init()?;
                // The SDK's own update: its sequence ran again after a restart.
                s.needs_sequence = false;
                let faulty = chance(&mut s.rng, inner.cfg.p_update_fail);
                if !s.network_up || faulty {
                    s.stats.updates_failed += 1;
                    // Seed §1.4: before the first recognition one update must have answered,
                    // success or failure (成功/失败都可以). The library itself is unchanged.
                    s.updated_since_init = true;
                    return Err(fail(ReturnCode::Fail, SIM_ERR_UPDATE_FAILED));
                }
                s.apply_update(unix_ms(inner.clock.wall()));
                s.stats.updates_ok += 1;
                Ok(())
            }),
        )
    }

    fn sdk_info(&self, m: Authed) -> BoxFut<'_, VResult<SdkInfo>> {
        self.run(
            Op::SdkInfo,
            self.inner.cfg.call,
            Some(m),
            Box::new(|_, s| {
                s.require_init()?;
                s.require_sequenced()?;
                Ok(SdkInfo {
                    sdk_version: "2.32.300.sim".into(),
                    face_feature_version: "5.3.1".into(),
                    user_info_dbcount: s.users.iter().filter(|u| u.on_device).count() as u64,
                    user_info_total_count: s.users.iter().filter(|u| u.in_cloud).count() as u64,
                    last_update_data_time_ms: s.last_update_ms,
                })
            }),
        )
    }

    fn set_preview(&self, surface: Surface, m: Authed) -> BoxFut<'_, VResult<()>> {
        self.run(
            Op::SetPreview,
            self.inner.cfg.call,
            Some(m),
            Box::new(move |inner, s| {
                s.require_init()?;
                if surface.id == 0 || surface.width == 0 || surface.height == 0 {
                    return Err(fail(ReturnCode::Error, SIM_ERR_INVALID_PARAM));
                }
                s.stats.preview_binds += 1;
                if inner.cfg.double_preview_callback {
                    // VENDOR-API §7.3: the callback may answer again on a later
                    // `surfaceChanged`; the second answer reaches the engine as a late one.
                    s.stats.preview_double_callbacks += 1;
                    s.emit(ServiceEvent::LateAnswer { op: Op::SetPreview });
                }
                Ok(())
            }),
        )
    }

    fn remove_preview(&self, m: Authed) -> BoxFut<'_, VResult<()>> {
        self.run(
            Op::RemovePreview,
            self.inner.cfg.call,
            Some(m),
            Box::new(|_, s| {
                s.require_init()?;
                s.stats.preview_removes += 1;
                Ok(())
            }),
        )
    }

    fn start_verify(&self, p: VerifyParams) -> BoxFut<'_, VResult<()>> {
        let session = p.session;
        self.run(
            Op::StartVerify,
            self.inner.cfg.call,
            Some(p.authed),
            Box::new(move |inner, s| {
                s.require_init()?;
                s.require_sequenced()?;
                if !s.updated_since_init {
                    s.stats.verify_without_features += 1;
                    return Err(fail(ReturnCode::Fail, SIM_ERR_FEATURES_NOT_UPDATED));
                }
                start_recognition(inner, s, session);
                Ok(())
            }),
        )
    }

    fn stop_verify(&self, m: Authed) -> BoxFut<'_, VResult<()>> {
        self.run(
            Op::StopVerify,
            self.inner.cfg.call,
            Some(m),
            Box::new(|_, s| {
                s.require_init()?;
                // T7.7: stops recognition, keeps the recognition data.
                s.verify_epoch += 1;
                if let Some(sess) = s.session.as_mut() {
                    sess.stopped = true;
                }
                Ok(())
            }),
        )
    }

    fn finish_verify(&self, p: FinishParams) -> BoxFut<'_, VResult<UserInfo>> {
        let phone = p.user_phone;
        self.run(
            Op::Finish,
            self.inner.cfg.call,
            Some(p.authed),
            Box::new(move |_, s| {
                s.require_init()?;
                s.require_sequenced()?;
                let matched =
                    s.session.as_ref().and_then(|x| x.recognised.as_ref()).map(|m| (m.user, m.need_ext_verify));
                let Some((idx, need_ext)) = matched else {
                    // T7.3: "no user info"; the payment side counts a lost user.
                    s.count_violation(|st| &mut st.finish_without_recognition);
                    return Err(fail(ReturnCode::Fail, ERR_NO_USER_INFO));
                };
                let user = &s.users[idx].user;
                if need_ext && !phone.as_ref().is_some_and(|ph| user.phone_matches(ph)) {
                    s.stats.finish_ext_verify_failed += 1;
                    return Err(fail(ReturnCode::Fail, ERR_SIMILAR_FACES));
                }
                let info = user.user_info();
                s.stats.finishes += 1;
                if let Some(sess) = s.session.as_mut() {
                    sess.finished = Some((idx, phone.is_some()));
                }
                Ok(info)
            }),
        )
    }

    fn credential(&self, p: CredentialParams) -> BoxFut<'_, VResult<Credential>> {
        let CredentialParams { authed, user_id, recog_mode, total_fee } = p;
        self.run(
            Op::Credential,
            self.inner.cfg.call,
            Some(authed),
            Box::new(move |_, s| {
                s.require_init()?;
                s.require_sequenced()?;
                let (stopped, finished) = match &s.session {
                    Some(x) => (x.stopped, x.finished),
                    None => (false, None),
                };
                if stopped {
                    // T7.5: the payment side would count a cancelled flow as a lost payment.
                    s.count_violation(|st| &mut st.credential_after_stop);
                }
                let Some((idx, with_phone)) = finished.filter(|(i, _)| s.users[*i].user.user_id == user_id) else {
                    // T7.4: "userId is empty".
                    s.count_violation(|st| &mut st.credential_without_finish);
                    return Err(fail(ReturnCode::Fail, ERR_NO_USER_INFO));
                };
                // T7.10: recog_mode 1 exactly when a phone was entered; total_fee a String of
                // fen (a positive integer).
                let mode_ok = recog_mode == if with_phone { RecogMode::WithPhone } else { RecogMode::Face };
                let fee_ok = total_fee.parse::<u64>().is_ok_and(|f| f > 0) && !total_fee.starts_with('0');
                if !mode_ok || !fee_ok {
                    s.stats.credential_bad_params += 1;
                    return Err(fail(ReturnCode::Fail, SIM_ERR_INVALID_PARAM));
                }
                let _ = idx;
                let (a, b) = (s.rng.next_u64(), s.rng.next_u64());
                s.stats.credentials_issued += 1;
                s.session = None;
                Ok(Credential { face_token: Secret::new(format!("ft_{a:016x}{b:016x}")) })
            }),
        )
    }

    fn release(&self) -> BoxFut<'_, VResult<()>> {
        self.run(
            Op::Release,
            self.inner.cfg.call,
            None,
            Box::new(|_, s| {
                // "Service not registered" when there is nothing to release.
                s.require_init()?;
                s.teardown();
                s.stats.releases += 1;
                Ok(())
            }),
        )
    }
}

/// Starts one verification's recognition task (T7.1).
fn start_recognition(inner: &Arc<Inner>, s: &mut State, session: u64) {
    let cfg = &inner.cfg;
    let presence = match s.presence.pop_front().unwrap_or(Presence::Random) {
        Presence::Random => {
            let enrolled = s.users.iter().filter(|u| u.in_cloud).count();
            if enrolled == 0 {
                Presence::Nobody
            } else {
                let nth = s.rng.random_range(0..enrolled);
                let (idx, _) = s.users.iter().enumerate().filter(|(_, u)| u.in_cloud).nth(nth).expect("nth < count");
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
    let weak = Arc::downgrade(inner);
    tokio::spawn(recognition::run(weak, epoch, session, rng, presence, first_frame));
}
