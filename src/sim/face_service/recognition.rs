//! The recognition task of the simulated face service: one spawned task per verification
//! that emits the first frame (after the camera reopen cost if cold, T5), then recognition
//! attempts that fail and restart by themselves or succeed and stop (T7.1), with
//! `need_ext_verify` when faces are similar (T7.6). It draws only from the verification's
//! own RNG, so a seed reproduces results whatever other calls interleave.

use std::sync::Weak;
use std::time::Duration;

use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

use super::{chance, pause, sample, Inner, Matched, Presence};
use crate::terminal::face_service::{
    RecognitionEvent, ServiceEvent, ERR_FACE_NOT_RECOGNISED, ERR_NO_MATCHING_USER, ERR_RISK_CONTROL, ERR_SIMILAR_FACES,
};

/// Recognition failure codes drawn for random failures: answered with
/// `need_restart_verify: false`, so recognition goes on (VENDOR-API §9.3). `271378526`
/// ("fail directly") comes only from [`Presence::Failing`].
pub(super) const RECOGNITION_FAILURES: [i64; 4] = [ERR_NO_MATCHING_USER, ERR_SIMILAR_FACES, ERR_RISK_CONTROL, -1];

/// The least time between a failure and the next attempt: with zero latencies a face that
/// keeps failing must not spin the runtime or flood the listener.
pub(super) const RESTART_FLOOR: Duration = Duration::from_millis(50);

/// One verification, run as one spawned task: first frame, then attempts until a success
/// (or forever for failures, or nothing for [`Presence::Nobody`]). Every event is sent
/// under the lock after checking the epoch, so nothing fires after a stop, a restart or
/// an OTA restart.
pub(super) async fn run(
    weak: Weak<Inner>,
    epoch: u64,
    session: u64,
    mut rng: ChaCha8Rng,
    presence: Presence,
    first_frame: Duration,
) {
    pause(first_frame).await;
    let recognition = {
        let Some(inner) = weak.upgrade() else { return };
        let s = inner.state.lock();
        if s.verify_epoch != epoch {
            return;
        }
        s.emit(ServiceEvent::Recognition { session, event: RecognitionEvent::FirstFrame });
        inner.cfg.recognition
    };
    if presence == Presence::Nobody {
        return;
    }
    let mut restart = false;
    loop {
        let wait = sample(&mut rng, recognition);
        pause(if restart { wait.max(RESTART_FLOOR) } else { wait }).await;
        let Some(inner) = weak.upgrade() else { return };
        let mut s = inner.state.lock();
        if s.verify_epoch != epoch {
            return;
        }
        let cfg = &inner.cfg;
        let (user, forced_ext) = match presence {
            Presence::User(i) => (Some(i), false),
            Presence::ExtVerify(i) => (Some(i), true),
            Presence::Failing(_) | Presence::Random | Presence::Nobody => (None, false),
        };
        let failure = if let Presence::Failing(code) = presence {
            Some(code)
        } else if chance(&mut rng, cfg.p_recognition_fail) {
            Some(RECOGNITION_FAILURES[rng.random_range(0..RECOGNITION_FAILURES.len())])
        } else if !user.and_then(|i| s.users.get(i)).is_some_and(|u| u.on_device) {
            Some(ERR_NO_MATCHING_USER)
        } else {
            None
        };
        if let Some(err_code) = failure {
            s.stats.recognitions_failed += 1;
            s.emit(ServiceEvent::Recognition {
                session,
                event: RecognitionEvent::Failed {
                    err_code,
                    // The service restarts by itself unless it "fails directly" (§10).
                    need_restart_verify: Some(err_code == ERR_FACE_NOT_RECOGNISED),
                },
            });
            restart = true;
            continue;
        }
        let idx = user.expect("a failure is chosen when no user is present");
        let need_ext_verify = forced_ext || chance(&mut rng, cfg.p_need_ext_verify);
        let face_verify_id = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
        let info = s.users[idx].user.user_info();
        s.stats.recognitions_ok += 1;
        if need_ext_verify {
            s.stats.ext_verify_requests += 1;
        }
        if let Some(sess) = s.session.as_mut() {
            sess.recognised = Some(Matched { user: idx, need_ext_verify });
        }
        s.emit(ServiceEvent::Recognition {
            session,
            event: RecognitionEvent::Recognised { need_ext_verify, face_verify_id, users: vec![info] },
        });
        return;
    }
}
