//! The demo's merchant side, in process: enrolled terminals, signing every request
//! ([`crate::sim::reference_link`]) → the router of the reference backend
//! ([`crate::merchant::server::Backend`]: authinfo cache and T3.5 check, payments by
//! idempotency key, the B5 deduction engine) → the mock WeChat Pay (signed and verified,
//! reached through [`InProcess`] because the demo runs under tokio's paused clock and
//! cannot use sockets). It keeps the network weather of the terminal-facing hop (latency,
//! outage) and the counters the demo summary prints, including "charged twice / lost"
//! computed from the mock's ledger.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::merchant::client::{PlatformMode, WechatPayClient};
use crate::merchant::config::{BackendConfig, PlatformConfig};
use crate::merchant::engine::Engine;
use crate::merchant::server::Backend;
use crate::merchant::sign::{MerchantSigner, PlatformKeys};
use crate::sim::backend::SimBackendStats;
use crate::sim::wechatpay::{self, FaultRates, InProcess, KeyMode, MockConfig, MockState};
use crate::store::StorePath;
use crate::wire::PaymentState;

pub use crate::sim::wechatpay_side::WechatPaySide as DeductionSummary;

pub struct ReferenceStack {
    pub backend: Arc<Backend>,
    pub mock: Arc<MockState>,
    online: AtomicBool,
    latency: (Duration, Duration),
    rng: Mutex<rand::rngs::StdRng>,
    stats: Mutex<SimBackendStats>,
    router: axum::Router,
    seen: Mutex<HashMap<String, HashSet<String>>>,
}

const ORG: &str = "org-canteen-1";
const MCH: &str = "1900000100";

impl ReferenceStack {
    /// The demo's stack: test keys generated now, WeChat Pay faults drawn from `seed`.
    /// The merchant engine runs on `clock`, the demo's virtual day: its B5 waits and
    /// business days are virtual time like the terminals'.
    pub fn for_demo(seed: u64, clock: Arc<dyn Clock>) -> Result<Arc<Self>> {
        Self::with_link(seed, clock, crate::merchant::link_config::LinkConfig::plain())
    }

    /// The same stack with these link settings (the link bench lifts the rate limit).
    pub fn with_link(
        seed: u64,
        clock: Arc<dyn Clock>,
        link: crate::merchant::link_config::LinkConfig,
    ) -> Result<Arc<Self>> {
        let key = crate::merchant::generate_test_key_pem();
        let signer = MerchantSigner::from_pem(MCH, "DEMOSERIAL", &key)?;
        let mock = MockState::new(MockConfig {
            mchid: MCH.into(),
            merchant_serial: "DEMOSERIAL".into(),
            merchant_public_key: signer.public_key_der(),
            mode: KeyMode::PublicKey,
            apiv3_key: "0123456789abcdef0123456789abcdef".into(),
            organizations: vec![ORG.into()],
            hang: Duration::from_secs(30),
        });
        mock.set_random_faults(
            seed,
            FaultRates {
                system_error: 0.03,
                notpay: 0.03,
                userpaying: 0.02,
                rate_limited: 0.02,
                payerror: 0.01,
                lost_answer: 0.01,
            },
        );
        let keys = PlatformKeys::new();
        keys.insert(&mock.platform_serial, mock.platform_public_key());
        let client = WechatPayClient::new(
            "http://wechatpay.invalid",
            signer,
            keys,
            PlatformMode::PublicKey,
            Duration::from_secs(5),
        )?
        .with_transport(Arc::new(InProcess(wechatpay::router(mock.clone()))));
        let client = Arc::new(client);
        let cfg = BackendConfig {
            mch_id: MCH.into(),
            sub_mchid: "1900000109".into(),
            sp_appid: "wx8888888888888888".into(),
            merchant_serial_no: "DEMOSERIAL".into(),
            merchant_key_file: "in-memory".into(),
            platform: PlatformConfig::PublicKey {
                public_key_id: mock.platform_serial.clone(),
                public_key_file: "in-memory".into(),
                apiv3_key: None,
            },
            base_url: "http://wechatpay.invalid".into(),
            timeout_ms: 5000,
            organizations: vec![ORG.into()],
            db_path: "in-memory".into(),
            listen: "in-process".into(),
            authinfo_ttl_s: 3600,
            retry_delay_ms_per_s: 1000,
            business_product_id: 2,
            business_scene_id: 3,
            link,
            backup_base_url: None,
            device_ip: "127.0.0.1".into(),
            sub_appid: None,
            goods_tag: None,
            query_organizations: false,
            notify_path: "/facepay/v1/wechatpay/notify".into(),
        };
        let engine = Engine::open(&StorePath::Memory, client.clone(), clock, cfg.deduction_params())?;
        let backend = Backend::new(cfg, client, engine);
        Ok(Arc::new(ReferenceStack {
            router: crate::merchant::server::router(backend.clone()),
            seen: Mutex::new(HashMap::new()),
            backend,
            mock,
            online: AtomicBool::new(true),
            latency: (Duration::from_millis(20), Duration::from_millis(150)),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed ^ 0xbac0)),
            stats: Mutex::new(SimBackendStats::default()),
        }))
    }

    pub fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::SeqCst);
    }

    pub fn stats(&self) -> SimBackendStats {
        self.stats.lock().clone()
    }

    /// The terminal-facing hop: refused while offline, then a drawn latency.
    pub(crate) async fn hop(&self) -> Result<()> {
        if !self.online.load(Ordering::SeqCst) {
            self.stats.lock().offline_refusals += 1;
            return Err(Error::Network("backend unreachable".into()));
        }
        let d = {
            let (a, b) = self.latency;
            self.rng.lock().random_range(a..=b)
        };
        tokio::time::sleep(d).await;
        Ok(())
    }

    pub fn deductions(&self) -> Result<DeductionSummary> {
        let e = &self.backend.engine;
        let states = e.payment_states()?;
        let (pays, queries) = e.attempt_totals()?;
        let ledger = self.mock.ledger();
        let mut charges: HashMap<&str, u64> = HashMap::new();
        for c in &ledger {
            *charges.entry(c.payment.as_str()).or_default() += 1;
        }
        let lost = states
            .iter()
            .filter(|(id, st)| {
                let n = charges.get(id.as_str()).copied().unwrap_or(0);
                (*st == PaymentState::Paid && n == 0) || (*st != PaymentState::Paid && n > 0)
            })
            .count() as u64;
        let started = states.len() as u64;
        Ok(DeductionSummary {
            by_outcome: e.outcome_counts()?.into_iter().collect(),
            payments: e.payment_counts()?.into_iter().collect(),
            retries: pays.saturating_sub(started),
            order_queries: queries,
            charged_twice: self.mock.charged_twice() as u64,
            lost,
        })
    }
}

impl ReferenceStack {
    /// The router `facepay backend serve` runs, for the demo's signed in-process requests.
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    pub(crate) fn count_authinfo(&self) {
        self.stats.lock().authinfo_fetches += 1;
    }

    pub(crate) fn count_poll(&self) {
        self.stats.lock().status_polls += 1;
    }

    /// A submission answered with `payment_id`: a payment id not seen before for this key
    /// is a created payment (more than one per key would be a double payment).
    pub(crate) fn count_submission(&self, key: &str, payment_id: &str) {
        let created = self.seen.lock().entry(key.to_string()).or_default().insert(payment_id.to_string());
        let mut s = self.stats.lock();
        s.submissions += 1;
        *s.submissions_per_key.entry(key.to_string()).or_default() += 1;
        if created {
            s.payments_created += 1;
            *s.created_per_key.entry(key.to_string()).or_default() += 1;
        } else {
            s.duplicates += 1;
        }
    }
}
