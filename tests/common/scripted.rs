//! A scripted face service for engine tests that need exact control (a call that never
//! answers, a recognition that never comes), and in-process backend fakes. The seeded
//! simulator (`sim::face_service`) covers realistic, randomised behaviour.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use facepay::error::{Error, Result, Secret};
use facepay::terminal::backend::{
    AuthInfoGrant, AuthInfoRequest, AuthInfoSource, BoxFut, PaymentBackend, PaymentRequest, PaymentState, PaymentStatus,
};
use facepay::terminal::face_service::{
    Credential, CredentialParams, FaceService, FinishParams, InitParams, RecognitionEvent, SdkInfo, ServiceEvent,
    Surface, UserInfo, VResult, VerifyParams,
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
    pub recognise_after: Mutex<Duration>,
}

impl Scripted {
    pub fn new() -> Arc<Self> {
        let s = Scripted::default();
        *s.recognise_after.lock() = Duration::from_millis(800);
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
}

pub fn user() -> UserInfo {
    UserInfo { user_id: "u1".into(), out_user_id: "o1".into(), user_name: Secret::new("n"), status: 0, valid: true }
}

impl FaceService for Scripted {
    fn set_listener(&self, tx: UnboundedSender<ServiceEvent>) {
        *self.listener.lock() = Some(tx);
    }
    fn init(&self, _p: InitParams) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            self.gate().await;
            self.init_calls.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
    fn raw_data(&self) -> BoxFut<'_, VResult<String>> {
        Box::pin(async move {
            self.gate().await;
            self.raw_data_calls.fetch_add(1, Ordering::SeqCst);
            Ok("raw".into())
        })
    }
    fn preload(&self) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            self.gate().await;
            Ok(())
        })
    }
    fn update_features(&self) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            self.gate().await;
            self.update_calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(())
        })
    }
    fn sdk_info(&self) -> BoxFut<'_, VResult<SdkInfo>> {
        Box::pin(async move {
            self.gate().await;
            Ok(SdkInfo::default())
        })
    }
    fn set_preview(&self, _s: Surface) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            self.gate().await;
            self.preview_binds.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
    fn remove_preview(&self) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            self.gate().await;
            Ok(())
        })
    }
    fn start_verify(&self, p: VerifyParams) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
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
    fn stop_verify(&self) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
            self.gate().await;
            Ok(())
        })
    }
    fn finish_verify(&self, _p: FinishParams) -> BoxFut<'_, VResult<UserInfo>> {
        Box::pin(async move {
            self.gate().await;
            Ok(user())
        })
    }
    fn credential(&self, _p: CredentialParams) -> BoxFut<'_, VResult<Credential>> {
        Box::pin(async move {
            self.gate().await;
            let n = self.credential_calls.fetch_add(1, Ordering::SeqCst);
            Ok(Credential { face_token: Secret::new(format!("tok{n}")) })
        })
    }
    fn release(&self) -> BoxFut<'_, VResult<()>> {
        Box::pin(async move {
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
    fn submit(&self, req: PaymentRequest) -> BoxFut<'_, Result<PaymentStatus>> {
        Box::pin(async move {
            self.submissions.lock().push(req.idempotency_key.clone());
            Ok(PaymentStatus { payment_id: format!("p-{}", req.idempotency_key), state: PaymentState::Paid })
        })
    }
    fn status(&self, payment_id: String) -> BoxFut<'_, Result<PaymentStatus>> {
        Box::pin(async move { Ok(PaymentStatus { payment_id, state: PaymentState::Paid }) })
    }
}
