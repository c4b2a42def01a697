//! A scripted face service for engine tests that need exact control (a call that never
//! answers, a recognition that never comes), and in-process backend fakes. The seeded
//! simulator (`sim::face_service`) covers realistic, randomised behaviour.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use facepay::error::{Error, Result, Secret};
use facepay::terminal::backend::{
    AuthInfoGrant, AuthInfoRequest, AuthInfoSource, PaymentBackend, PaymentRequest, PaymentState, PaymentStatus,
};
use facepay::terminal::face_service::{
    Authed, BoxFut, Credential, CredentialParams, FaceService, FinishParams, InitParams, Op, RecognitionEvent, SdkInfo,
    ServiceEvent, Surface, UserInfo, VResult, VerifyParams,
};
use parking_lot::Mutex;
use tokio::sync::mpsc::UnboundedSender;

#[derive(Default)]
pub struct Scripted {
    listener: Mutex<Option<UnboundedSender<ServiceEvent>>>,
    /// Every call hangs (a dead service).
    pub hang: AtomicBool,
    /// No recognition callback at all after start_verify.
    pub silent: AtomicBool,
    pub need_ext: AtomicBool,
    pub init_calls: AtomicU64,
    pub update_calls: AtomicU64,
    pub credential_calls: AtomicU64,
    pub raw_data_calls: AtomicU64,
    pub release_calls: AtomicU64,
    pub preview_binds: AtomicU64,
    /// `setCameraPreview` answers FAIL (the service refuses the bind).
    pub refuse_preview: AtomicBool,
    pub recognise_after: Mutex<Duration>,
    /// Every call in order, with the authinfo it carried (`None`: no authed map).
    pub log: Mutex<Vec<(Op, Option<String>)>>,
    pub last_init: Mutex<Option<InitParams>>,
    pub last_finish: Mutex<Option<FinishParams>>,
    /// `UserInfo.status` of the user finish answers (default `FS_NORMAL`).
    pub status: Mutex<String>,
    pub last_credential: Mutex<Option<CredentialParams>>,
    /// Calls outstanding now, and the most ever outstanding at once (T9).
    pub outstanding: AtomicU64,
    pub max_outstanding: AtomicU64,
}

/// Counts a call outstanding until dropped.
struct Outstanding<'a>(&'a Scripted);

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Scripted {
    pub fn new() -> Arc<Self> {
        let s = Scripted::default();
        *s.recognise_after.lock() = Duration::from_millis(800);
        *s.status.lock() = "FS_NORMAL".into();
        Arc::new(s)
    }

    fn emit(&self, ev: ServiceEvent) {
        if let Some(tx) = self.listener.lock().as_ref() {
            let _ = tx.send(ev);
        }
    }

    async fn gate(&self) {
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }

    fn enter(&self, op: Op, m: Option<&Authed>) -> Outstanding<'_> {
        self.log.lock().push((op, m.map(|m| m.authinfo.expose().to_owned())));
        let n = self.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_outstanding.fetch_max(n, Ordering::SeqCst);
        Outstanding(self)
    }

    /// The operations called, in order.
    pub fn ops(&self) -> Vec<Op> {
        self.log.lock().iter().map(|(op, _)| *op).collect()
    }
}

pub fn user() -> UserInfo {
    UserInfo { user_id: "u1".into(), out_user_id: "o1".into(), user_name: Secret::new("n"), status: "FS_NORMAL".into() }
}

impl FaceService for Scripted {
    fn set_listener(&self, tx: UnboundedSender<ServiceEvent>) {
        *self.listener.lock() = Some(tx);
    }
    fn init(&self, p: InitParams) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let _o = self.enter(Op::Init, None);
            *self.last_init.lock() = Some(p);
            self.gate().await;
            self.init_calls.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
    fn raw_data(&self) -> BoxFut<'_, VResult<String>> {
        Box::pin(async move {
            let _o = self.enter(Op::RawData, None);
            self.gate().await;
            self.raw_data_calls.fetch_add(1, Ordering::SeqCst);
            Ok("raw".into())
        })
    }
    fn preload(&self, m: Authed) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let _o = self.enter(Op::Preload, Some(&m));

            self.gate().await;
            Ok(())
        })
    }
    fn update_features(&self, m: Authed) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let _o = self.enter(Op::UpdateFeatures, Some(&m));

            self.gate().await;
            self.update_calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(())
        })
    }
    fn sdk_info(&self, m: Authed) -> BoxFut<'_, VResult<SdkInfo>> {
        Box::pin(async move {
            let _o = self.enter(Op::SdkInfo, Some(&m));

            self.gate().await;
            Ok(SdkInfo::default())
        })
    }
    fn set_preview(&self, _s: Surface, m: Authed) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let _o = self.enter(Op::SetPreview, Some(&m));
            self.gate().await;
            if self.refuse_preview.load(Ordering::SeqCst) {
                return Err(facepay::terminal::face_service::VendorError::new(
                    facepay::terminal::face_service::ReturnCode::Fail,
                    -1,
                ));
            }
            self.preview_binds.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
    fn remove_preview(&self, m: Authed) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let _o = self.enter(Op::RemovePreview, Some(&m));

            self.gate().await;
            Ok(())
        })
    }
    fn start_verify(&self, p: VerifyParams) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let _o = self.enter(Op::StartVerify, Some(&p.authed));
            self.gate().await;
            if self.silent.load(Ordering::SeqCst) {
                return Ok(());
            }
            let tx = self.listener.lock().clone().expect("listener");
            let after = *self.recognise_after.lock();
            let need_ext_verify = self.need_ext.load(Ordering::SeqCst);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = tx.send(ServiceEvent::Recognition { session: p.session, event: RecognitionEvent::FirstFrame });
                tokio::time::sleep(after).await;
                let event =
                    RecognitionEvent::Recognised { need_ext_verify, face_verify_id: "f".into(), users: vec![user()] };
                let _ = tx.send(ServiceEvent::Recognition { session: p.session, event });
            });
            Ok(())
        })
    }
    fn stop_verify(&self, m: Authed) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let _o = self.enter(Op::StopVerify, Some(&m));

            self.gate().await;
            Ok(())
        })
    }
    fn finish_verify(&self, p: FinishParams) -> BoxFut<'_, VResult<UserInfo>> {
        Box::pin(async move {
            let _o = self.enter(Op::Finish, Some(&p.authed));
            *self.last_finish.lock() = Some(p);
            self.gate().await;
            Ok(UserInfo { status: self.status.lock().clone(), ..user() })
        })
    }
    fn credential(&self, p: CredentialParams) -> BoxFut<'_, VResult<Credential>> {
        Box::pin(async move {
            let _o = self.enter(Op::Credential, Some(&p.authed));
            *self.last_credential.lock() = Some(p);
            self.gate().await;
            let n = self.credential_calls.fetch_add(1, Ordering::SeqCst);
            Ok(Credential { face_token: Secret::new(format!("tok{n}")) })
        })
    }
    fn release(&self) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            let _o = self.enter(Op::Release, None);
            self.release_calls.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

/// An in-process backend: authinfo with a TTL, payments paid at once, counted by key.
#[derive(Default)]
pub struct FakeBackend {
    pub fetches: AtomicU64,
    pub mismatch: AtomicBool,
    pub offline: AtomicBool,
    pub submissions: Mutex<Vec<String>>,
}

impl AuthInfoSource for FakeBackend {
    fn fetch(&self, _req: AuthInfoRequest) -> BoxFut<'_, Result<AuthInfoGrant>> {
        Box::pin(async move {
            if self.mismatch.load(Ordering::SeqCst) {
                return Err(Error::ConfigMismatch("organisation".into()));
            }
            if self.offline.load(Ordering::SeqCst) {
                return Err(Error::Network("offline".into()));
            }
            let n = self.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(AuthInfoGrant { authinfo: Secret::new(format!("ai{n}")), expires_in: 3600 })
        })
    }
}

impl PaymentBackend for FakeBackend {
    fn submit<'a>(&'a self, req: &'a PaymentRequest) -> BoxFut<'a, Result<PaymentStatus>> {
        Box::pin(async move {
            self.submissions.lock().push(req.idempotency_key.clone());
            Ok(PaymentStatus { payment_id: format!("p-{}", req.idempotency_key), state: PaymentState::Paid })
        })
    }
    fn status(&self, payment_id: String) -> BoxFut<'_, Result<PaymentStatus>> {
        Box::pin(async move { Ok(PaymentStatus { payment_id, state: PaymentState::Paid }) })
    }
}

/// An engine over a [`Scripted`] service and one [`FakeBackend`] (authinfo and payments),
/// on a virtual clock at a fixed wall time.
pub fn engine_with(
    cfg: facepay::terminal::config::TerminalConfig,
) -> (facepay::terminal::engine::Terminal, Arc<Scripted>, Arc<FakeBackend>) {
    use facepay::terminal::engine::{Deps, Terminal};
    let svc = Scripted::new();
    let be = Arc::new(FakeBackend::default());
    let deps = Deps {
        service: svc.clone(),
        auth: be.clone(),
        payments: be.clone(),
        clock: Arc::new(facepay::clock::VirtualClock::starting_at(
            std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_400_000),
        )),
    };
    (Terminal::spawn(cfg, deps).expect("engine"), svc, be)
}

/// Initialises `t` and waits until it holds an authinfo (fetched in the background after
/// init, T3.1); fails after 500 waits of 10 ms (virtual or real time) instead of hanging.
pub async fn ready(t: &facepay::terminal::engine::Terminal) {
    t.init().await.expect("init");
    for _ in 0..500 {
        if t.health().authinfo_valid_for.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("authinfo never arrived");
}
