//! Test helpers for the terminal ↔ backend link (SPEC S1, S3): a throw-away PKI made at
//! run time (a CA and a 127.0.0.1 server certificate signed by it; no key is ever
//! committed), and the reference backend over the real connection loop
//! (`merchant::listener`, TLS or plain) in front of the mock WeChat Pay.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use facepay::clock::{Clock, SystemClock};
use facepay::merchant::config::BackendConfig;
use facepay::merchant::devices::Registry;
use facepay::merchant::engine::Engine;
use facepay::merchant::link_config::TlsFiles;
use facepay::merchant::server::{router, Backend};
use facepay::sim::wechatpay::{KeyMode, MockState};
use facepay::sim::wechatpay_fixture;
use facepay::store::StorePath;

pub struct Pki {
    pub ca_pem: String,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A CA and a server certificate for 127.0.0.1 and localhost, written into `dir`.
pub fn pki(dir: &Path, name: &str) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("ca key");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("leaf params")
        .signed_by(&key, &issuer)
        .expect("leaf cert");
    let cert_file = dir.join(format!("{name}-cert.pem"));
    let key_file = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert_file, leaf.pem()).expect("write cert");
    facepay::store::write_private(&key_file, key.serialize_pem().as_bytes()).expect("write key");
    Pki { ca_pem: ca.pem(), cert_file, key_file }
}

pub struct Served {
    pub url: String,
    pub backend: Arc<Backend>,
    pub mock: Arc<MockState>,
    pub task: tokio::task::JoinHandle<()>,
}

/// The mock WeChat Pay on 127.0.0.1 and its backend configuration in `dir`.
pub async fn mock_and_config(dir: &Path) -> (Arc<MockState>, BackendConfig) {
    let (mock, _) = wechatpay_fixture::start(dir, KeyMode::PublicKey, Duration::from_secs(5)).await.expect("mock");
    let cfg = BackendConfig::load(&dir.join("backend.json")).expect("config");
    (mock, cfg)
}

/// The reference backend on 127.0.0.1 over TLS (`pki`) or plain HTTP, on the real clock.
pub async fn serve(dir: &Path, pki: Option<&Pki>, tweak: impl FnOnce(&mut BackendConfig)) -> Served {
    let (mock, mut cfg) = mock_and_config(dir).await;
    if let Some(p) = pki {
        cfg.link.plain_http = false;
        cfg.link.tls = Some(TlsFiles { cert_file: p.cert_file.clone(), key_file: p.key_file.clone() });
    }
    tweak(&mut cfg);
    cfg.validate().expect("valid config");
    let client = Arc::new(cfg.client().expect("client"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = Engine::open(&StorePath::File(cfg.db_path.clone()), client.clone(), clock, cfg.deduction_params())
        .expect("engine");
    let registry = Arc::new(Registry::open(&StorePath::File(cfg.db_path.clone())).expect("registry"));
    let tls = cfg
        .link
        .tls
        .as_ref()
        .map(|t| facepay::merchant::listener::tls_acceptor(&t.cert_file, &t.key_file).expect("acceptor"));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let link = cfg.link.clone();
    let backend = Backend::with_devices(cfg, client, engine, registry);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
    let url = format!("{scheme}://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let app = router(backend.clone());
    let task = tokio::spawn(facepay::merchant::listener::serve(listener, app, link, tls));
    Served { url, backend, mock, task }
}
