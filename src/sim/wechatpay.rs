//! The mock WeChat Pay API v3 server (SPEC B0–B5, B7, API-NOTES §2) on 127.0.0.1. It
//! refuses what the real service refuses: no `User-Agent` or `Accept` → 400
//! `INVALID_REQUEST` (B0); a request signature that does not verify (scheme, mchid,
//! serial, ±300 s, RSA) → 401; a `Wechatpay-Serial` naming no key of the merchant → 400;
//! a charged credential sent again, under any order number → 400 `INVALID_REQUEST`
//! (凭证已经使用过并且扣款成功); a deduction without `scene_info.device_ip` → 400. Every
//! answer is signed ([`signing`]) with the key the request names — public key
//! `PUB_KEY_ID_…`, or the platform certificate (`/v3/certificates`, AES-256-GCM under the
//! APIv3 key) — and in the migration mode with the certificate when it names none. It
//! serves tokens, user update and query, authinfo, presign, transactions and the order
//! query, and the contract endpoints and notifications of B7 ([`users`]), keeps a ledger
//! of charges (so tests prove "no order charged twice, no payment lost") and plays a
//! per-auth-code script of outcomes and faults.

// Handlers return an early `Response` as their error: boxing it buys nothing here.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use parking_lot::Mutex;

use crate::merchant::models::{TradeState, Transaction, TransactionRequest};
use crate::merchant::sign::{self, AuthorizationHeader, MerchantSigner, PlatformKeys};

mod handlers;
mod signing;
pub mod users;

use handlers::{guard, parse};
pub use signing::SigFault;
use signing::{Gateway, Spoil};

/// One scripted answer to a deduction (`POST /v3/offlineface/transactions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Answer 200 with this trade state (SUCCESS charges the ledger).
    Trade(TradeState),
    /// Answer this status with `{code, message}`, nothing recorded.
    Error(u16, &'static str),
    /// B5.1: a gateway's 502 / 503 (an unsigned HTML page), nothing recorded.
    Gateway(u16),
    /// Charge (SUCCESS), then answer 500 SYSTEM_ERROR: charged, but the client is told
    /// to retry (the retry meets INVALID_REQUEST, B5.1).
    ChargeThen500,
    /// B5.2: charge as a K12 debt (`debt_state` DEBT, a repayment follows later).
    SuccessDebt,
    /// Answer 200 with a trade state no client knows (nothing charged; the order stays
    /// NOTPAY): an unknown outcome for the client (B5.1).
    UnknownState,
    /// Charge (SUCCESS), then never answer in time: the outcome is unknown to the client.
    ChargeThenHang,
    /// Do nothing and never answer in time.
    Hang,
    /// Charge (SUCCESS) and answer with a broken signature.
    ChargeBadSignature,
}

/// How the mock presents its platform key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    PublicKey,
    Certificates,
    /// B0: a merchant moving from certificates to the public key: both exist, answers are
    /// signed with the key the request names, and with the certificate when it names none.
    Migration,
}

/// One charge in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub out_trade_no: String,
    pub payment: String,
    pub auth_code_hash: String,
    pub amount: u64,
}

#[derive(Debug, Clone)]
struct Order {
    state: TradeState,
    req: TransactionRequest,
    debt: bool,
}

/// The B0 headers of one request, as received (tests check every request had them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub user_agent: Option<String>,
    pub accept: Option<String>,
    pub serial: Option<String>,
}

/// One platform key of the mock: its signer (serial set) and PKCS#8 for OAEP decryption.
struct PlatformKey {
    signer: MerchantSigner,
    pkcs8: Vec<u8>,
}

impl PlatformKey {
    fn generate(serial: &str) -> Self {
        let pem = crate::merchant::generate_test_key_pem();
        let mut signer = MerchantSigner::from_pem("mock", serial, &pem).expect("generated key");
        signer.serial_no = serial.into();
        PlatformKey { signer, pkcs8: sign::pem_blocks(&pem).expect("generated PEM").remove(0).1 }
    }
}

/// The mock's public-key id.
pub const MOCK_PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000000000";
const MOCK_CERT_SERIAL: [u8; 8] = [0x5B, 0xC1, 0x3A, 0x0F, 0x21, 0x9E, 0x77, 0x01];

pub struct MockConfig {
    pub mchid: String,
    /// Serial of the merchant certificate and its public key (SPKI DER).
    pub merchant_serial: String,
    pub merchant_public_key: Vec<u8>,
    pub mode: KeyMode,
    pub apiv3_key: String,
    /// Organisations of `mchid` (B3 and B1 refuse others).
    pub organizations: Vec<String>,
    /// How long a hanging answer waits.
    pub hang: Duration,
}

pub struct MockState {
    cfg: MockConfig,
    public_key: Option<PlatformKey>,
    certificate: Option<PlatformKey>,
    /// The key a client of this merchant names: `PUB_KEY_ID_…` (public-key and migration
    /// modes) or the certificate serial (certificates mode).
    pub platform_serial: String,
    /// The certificate serial (certificates and migration modes).
    pub certificate_serial: Option<String>,
    cert_pem: String,
    merchant_keys: PlatformKeys,
    orders: Mutex<HashMap<String, Order>>,
    ledger: Mutex<Vec<Charge>>,
    /// The auth-code hashes of [`MockState::ledger`], kept with it: the "credential already
    /// charged" check looks one up instead of scanning every charge (the scan grew with
    /// each request of a long run and cost the peer bench more for every later client).
    charged_codes: Mutex<HashSet<String>>,
    script: Mutex<HashMap<String, VecDeque<Step>>>,
    /// Mutations of the response signature for the next answers (tests of rejections).
    next_signature: Mutex<VecDeque<SigFault>>,
    /// While set, every order query is answered with a forged signature (B5.1 tests).
    forge_queries: std::sync::atomic::AtomicBool,
    /// While set, every order query is answered with this error (B5.1: a 404 that is not
    /// `ORDER_NOT_EXIST`).
    query_error: Mutex<Option<(u16, &'static str)>>,
    random: Mutex<Option<(rand::rngs::StdRng, FaultRates)>>,
    /// Serialises the decide-and-commit step of deductions.
    commit: Mutex<()>,
    pub requests: Mutex<u64>,
    pub rejected_signatures: Mutex<u64>,
    pub user_updates: Mutex<Vec<(String, String, serde_json::Value)>>,
    /// B0 headers of every request.
    pub seen: Mutex<Vec<SeenRequest>>,
    users: users::Users,
}

/// Probabilities of unscripted deduction outcomes (the demo's WeChat Pay weather).
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultRates {
    pub system_error: f64,
    pub notpay: f64,
    pub userpaying: f64,
    pub rate_limited: f64,
    pub payerror: f64,
    pub lost_answer: f64,
}

pub(crate) fn hash(s: &str) -> String {
    hex::encode(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes()).as_ref()[..8])
}

impl MockState {
    pub fn new(cfg: MockConfig) -> Arc<Self> {
        let has_public = matches!(cfg.mode, KeyMode::PublicKey | KeyMode::Migration);
        let has_cert = matches!(cfg.mode, KeyMode::Certificates | KeyMode::Migration);
        let public_key = has_public.then(|| PlatformKey::generate(MOCK_PUBLIC_KEY_ID));
        let cert_serial = hex::encode_upper(MOCK_CERT_SERIAL);
        let certificate = has_cert.then(|| PlatformKey::generate(&cert_serial));
        let cert_pem = certificate
            .as_ref()
            .map(|c| {
                let der = crate::merchant::x509::self_signed(
                    &c.signer,
                    &MOCK_CERT_SERIAL,
                    "Tenpay.com mock platform certificate",
                );
                sign::pem_encode("CERTIFICATE", &der)
            })
            .unwrap_or_default();
        let platform_serial = if has_public { MOCK_PUBLIC_KEY_ID.to_string() } else { cert_serial.clone() };
        let merchant_keys = PlatformKeys::new();
        merchant_keys.insert(&cfg.merchant_serial, cfg.merchant_public_key.clone());
        Arc::new(MockState {
            cfg,
            public_key,
            certificate,
            platform_serial,
            certificate_serial: has_cert.then_some(cert_serial),
            cert_pem,
            merchant_keys,
            orders: Mutex::new(HashMap::new()),
            ledger: Mutex::new(Vec::new()),
            charged_codes: Mutex::new(HashSet::new()),
            script: Mutex::new(HashMap::new()),
            next_signature: Mutex::new(VecDeque::new()),
            forge_queries: Default::default(),
            query_error: Mutex::new(None),
            random: Mutex::new(None),
            commit: Mutex::new(()),
            requests: Mutex::new(0),
            rejected_signatures: Mutex::new(0),
            user_updates: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            users: Default::default(),
        })
    }

    /// The platform public key (SPKI DER) of [`MockState::platform_serial`]: the one
    /// clients trust in public-key mode.
    pub fn platform_public_key(&self) -> Vec<u8> {
        self.public_key.as_ref().or(self.certificate.as_ref()).expect("one key at least").signer.public_key_der()
    }

    /// The platform certificate as PEM (certificates and migration modes).
    pub fn certificate_pem(&self) -> Option<&str> {
        (!self.cert_pem.is_empty()).then_some(self.cert_pem.as_str())
    }

    /// The platform certificate's public key (certificates and migration modes).
    pub fn certificate_public_key(&self) -> Option<Vec<u8>> {
        self.certificate.as_ref().map(|c| c.signer.public_key_der())
    }

    /// The key an answer is signed with, by the request's `Wechatpay-Serial` (B0); `None`
    /// when it names a key this merchant does not have.
    fn key_for(&self, serial: Option<&str>) -> Option<&PlatformKey> {
        fn by_name<'a>(k: &'a Option<PlatformKey>, serial: Option<&str>) -> Option<&'a PlatformKey> {
            k.as_ref().filter(|k| Some(k.signer.serial_no.as_str()) == serial)
        }
        match serial {
            Some(_) => by_name(&self.public_key, serial).or_else(|| by_name(&self.certificate, serial)),
            // Naming none: the certificate when there is one (migration), else the key.
            None => self.certificate.as_ref().or(self.public_key.as_ref()),
        }
    }

    /// While `Some`, order queries are answered with this status and code.
    pub fn fail_queries_with(&self, e: Option<(u16, &'static str)>) {
        *self.query_error.lock() = e;
    }

    /// While `on`, order queries are answered with a forged signature (unverifiable).
    pub fn forge_queries(&self, on: bool) {
        self.forge_queries.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Scripts the answers to the deductions of one auth code (default: SUCCESS).
    pub fn script(&self, auth_code: &str, steps: impl IntoIterator<Item = Step>) {
        self.script.lock().entry(auth_code.into()).or_default().extend(steps);
    }

    /// Unscripted deductions draw their outcome from `rates` (seeded); otherwise SUCCESS.
    pub fn set_random_faults(&self, seed: u64, rates: FaultRates) {
        use rand::SeedableRng;
        *self.random.lock() = Some((rand::rngs::StdRng::seed_from_u64(seed), rates));
    }

    fn unscripted(&self) -> Step {
        use rand::Rng;
        let mut g = self.random.lock();
        let Some((rng, r)) = g.as_mut() else { return Step::Trade(TradeState::Success) };
        let x: f64 = rng.random();
        let table = [
            (r.system_error, Step::Error(500, "SYSTEM_ERROR")),
            (r.notpay, Step::Trade(TradeState::Notpay)),
            (r.userpaying, Step::Trade(TradeState::Userpaying)),
            (r.rate_limited, Step::Error(429, "RATELIMIT_EXCEEDED")),
            (r.payerror, Step::Trade(TradeState::Payerror)),
            (r.lost_answer, Step::ChargeThenHang),
        ];
        let mut acc = 0.0;
        for (p, step) in table {
            acc += p;
            if x < acc {
                return step;
            }
        }
        Step::Trade(TradeState::Success)
    }

    pub fn spoil_next_signature(&self, f: SigFault) {
        self.next_signature.lock().push_back(f);
    }

    /// The first request of an order, as received (tests read `scene_info` from it).
    pub fn order_request(&self, out_trade_no: &str) -> Option<TransactionRequest> {
        self.orders.lock().get(out_trade_no).map(|o| o.req.clone())
    }

    pub fn ledger(&self) -> Vec<Charge> {
        self.ledger.lock().clone()
    }

    /// Orders charged more than once plus payments (`attach`) charged under several orders.
    pub fn charged_twice(&self) -> usize {
        let l = self.ledger.lock();
        let mut by_order: HashMap<&str, usize> = HashMap::new();
        let mut by_payment: HashMap<&str, usize> = HashMap::new();
        for c in l.iter() {
            *by_order.entry(&c.out_trade_no).or_default() += 1;
            *by_payment.entry(&c.payment).or_default() += 1;
        }
        by_order.values().chain(by_payment.values()).filter(|&&n| n > 1).count()
    }

    fn error(&self, status: u16, code: &str, message: &str) -> Response {
        let body = serde_json::json!({"code": code, "message": message}).to_string();
        json_response(StatusCode::from_u16(status).expect("valid status"), body)
    }

    fn ok<T: serde::Serialize>(&self, v: &T) -> Response {
        json_response(StatusCode::OK, serde_json::to_string(v).expect("serialize"))
    }

    /// Checks the `Authorization` header of one request.
    fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
        *self.requests.lock() += 1;
        let fail = |m: &str| {
            *self.rejected_signatures.lock() += 1;
            Err(self.error(401, "SIGN_ERROR", m))
        };
        let Some(a) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return fail("missing Authorization");
        };
        let Ok(a) = AuthorizationHeader::parse(a) else { return fail("malformed Authorization") };
        if a.mchid != self.cfg.mchid {
            return fail("mchid does not match the signing key");
        }
        if a.timestamp.abs_diff(sign::unix_now()) > sign::MAX_SKEW_S {
            return fail("timestamp expired");
        }
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut msg = format!("{method}\n{pq}\n{}\n{}\n", a.timestamp, a.nonce).into_bytes();
        msg.extend_from_slice(body);
        msg.push(b'\n');
        match self.merchant_keys.verify_message(&a.serial_no, &msg, &a.signature) {
            None => fail("unknown merchant certificate serial"),
            Some(false) => fail("signature does not verify"),
            Some(true) => Ok(()),
        }
    }

    /// Decrypts an OAEP field to check it was encrypted for the key the request names
    /// (`Wechatpay-Serial`): a field encrypted for another key is refused.
    fn decrypts(&self, headers: &HeaderMap, b64: &str) -> bool {
        use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA1_MGF1SHA1};
        use base64::Engine as _;
        let serial = headers.get("wechatpay-serial").and_then(|v| v.to_str().ok());
        let Some(key) = serial.and_then(|s| self.key_for(Some(s))) else { return false };
        let Ok(ct) = base64::engine::general_purpose::STANDARD.decode(b64) else { return false };
        let Ok(k) = PrivateDecryptingKey::from_pkcs8(&key.pkcs8) else { return false };
        let Ok(k) = OaepPrivateDecryptingKey::new(k) else { return false };
        let mut out = vec![0u8; k.min_output_size()];
        k.decrypt(&OAEP_SHA1_MGF1SHA1, &ct, &mut out, None).is_ok()
    }

    async fn transaction(&self, req: TransactionRequest) -> Response {
        if req.sp_mchid != self.cfg.mchid
            || req.amount.total == 0
            || req.out_trade_no.is_empty()
            || req.out_trade_no.len() > 32
        {
            return self.error(400, "PARAM_ERROR", "invalid parameter");
        }
        if req.scene_info.device_ip.parse::<std::net::IpAddr>().is_err() {
            return self.error(400, "PARAM_ERROR", "scene_info.device_ip must be the terminal's IP address");
        }
        let no = req.out_trade_no.clone();
        // Decide and commit atomically per request, as WeChat Pay does per order number:
        // two concurrent requests for one order can never both charge.
        let (step, view) = {
            let _commit = self.commit.lock();
            if let Some(o) = self.orders.lock().get(&no) {
                if o.req.auth_code != req.auth_code || o.req.amount != req.amount {
                    return self.error(
                        400,
                        "INVALID_REQUEST",
                        "parameters differ from the first request of this order",
                    );
                }
            }
            // A charged credential is refused under any order number, its own included
            // (the real service answers INVALID_REQUEST; stricter than answering the
            // order again, so clients must query: B5.1).
            let code_hash = hash(req.auth_code.expose());
            if self.charged_codes.lock().contains(&code_hash) {
                return self.error(400, "INVALID_REQUEST", "凭证已经使用过并且扣款成功");
            }
            let step = self.script.lock().get_mut(req.auth_code.expose()).and_then(|q| q.pop_front());
            let step = step.unwrap_or_else(|| self.unscripted());
            let state = match step {
                Step::Error(s, c) => return self.error(s, c, "scripted"),
                Step::Gateway(s) => return gateway(s),
                Step::Hang | Step::UnknownState => TradeState::Notpay,
                Step::Trade(s) => s,
                Step::ChargeThenHang | Step::ChargeBadSignature | Step::ChargeThen500 | Step::SuccessDebt => {
                    TradeState::Success
                }
            };
            if step == Step::Hang {
                (step, None)
            } else {
                let order = Order { state, req: req.clone(), debt: step == Step::SuccessDebt };
                let view = self.view(&no, &order);
                self.orders.lock().insert(no.clone(), order);
                if state == TradeState::Success {
                    self.charged_codes.lock().insert(code_hash.clone());
                    self.ledger.lock().push(Charge {
                        out_trade_no: no,
                        payment: req.attach.clone(),
                        auth_code_hash: code_hash,
                        amount: req.amount.total,
                    });
                }
                (step, Some(view))
            }
        };
        match (step, view) {
            (Step::Hang, _) | (_, None) => {
                tokio::time::sleep(self.cfg.hang).await;
                self.error(500, "SYSTEM_ERROR", "late")
            }
            (Step::ChargeThenHang, Some(v)) => {
                tokio::time::sleep(self.cfg.hang).await;
                self.ok(&v)
            }
            (Step::ChargeThen500, Some(_)) => self.error(500, "SYSTEM_ERROR", "系统错误"),
            (Step::ChargeBadSignature, Some(v)) => {
                let mut r = self.ok(&v);
                r.extensions_mut().insert(Spoil(SigFault::Forged));
                r
            }
            (Step::UnknownState, Some(v)) => {
                let mut j = serde_json::to_value(&v).expect("serialize");
                j["trade_state"] = "ACCEPTED_FOR_REVIEW".into();
                json_response(StatusCode::OK, j.to_string())
            }
            (_, Some(v)) => self.ok(&v),
        }
    }

    fn view(&self, no: &str, o: &Order) -> Transaction {
        let paid = o.state == TradeState::Success;
        Transaction {
            out_trade_no: no.into(),
            trade_state: o.state,
            trade_state_description: format!("{:?}", o.state),
            transaction_id: paid.then(|| format!("4200{}", &hash(no)[..12])),
            amount: Some(o.req.amount.clone()),
            success_time: paid.then(|| "2026-01-01T12:00:00+08:00".to_string()),
            error_type: (o.state == TradeState::Payerror).then(|| "NOT_ENOUGH".to_string()),
            attach: Some(o.req.attach.clone()),
            payer: paid
                .then(|| serde_json::json!({"sp_openid": format!("o{}", &hash(o.req.auth_code.expose())[..10])})),
            debt_state: paid.then(|| if o.debt { "DEBT" } else { "NOT_DEBT" }.to_string()),
            repayment_transaction_id: None,
            promotion_detail: paid.then(Vec::new),
            bank_type: paid.then(|| "OTHERS".to_string()),
            trade_type: Some("FACEPAY".into()),
        }
    }
}

/// A JSON answer, unsigned here ([`signing`] signs it on the way out).
fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert("content-type", "application/json".parse().expect("static"));
    r
}

/// A gateway's 502 / 503 page: not JSON, not signed (B5.1).
fn gateway(status: u16) -> Response {
    let mut r = (
        StatusCode::from_u16(status).expect("valid status"),
        format!("<html><body><h1>{status}</h1>gateway</body></html>"),
    )
        .into_response();
    r.headers_mut().insert("content-type", "text/html".parse().expect("static"));
    r.extensions_mut().insert(Gateway);
    r
}

pub use handlers::router;

/// Serves the mock on `127.0.0.1:port` (0 = any free port); returns the bound address.
/// HTTP/1.1 with header names in WeChat Pay's case (`Wechatpay-Signature`, not
/// `wechatpay-signature`): SDKs that look headers up case-sensitively (wechatpay-java)
/// would not find them otherwise.
pub async fn serve(state: Arc<MockState>, port: u16) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    serve_on(state, listener)
}

/// [`serve`] on a listener already bound.
pub fn serve_on(
    state: Arc<MockState>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let addr = listener.local_addr()?;
    let app = router(state);
    let h = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let svc = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .title_case_headers(true)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((addr, h))
}

/// The mock in process, without a socket (the demo under tokio's paused clock).
pub struct InProcess(pub Router);

impl crate::merchant::client::Transport for InProcess {
    fn send(
        &self,
        req: crate::merchant::client::WireRequest,
    ) -> crate::wire::BoxFut<'_, Result<(u16, HeaderMap, Vec<u8>), crate::merchant::MerchantError>> {
        Box::pin(async move {
            use tower::ServiceExt;
            let unknown = |w: &str| crate::merchant::MerchantError::Unknown(w.to_string());
            let mut b = axum::http::Request::builder().method(req.method).uri(req.path_query);
            for (k, v) in req.headers {
                b = b.header(k, v);
            }
            let r = b.body(axum::body::Body::from(req.body)).map_err(|_| unknown("bad request"))?;
            let resp = self.0.clone().oneshot(r).await.map_err(|_| unknown("in-process call failed"))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.map_err(|_| unknown("body"))?;
            Ok((status, headers, body.to_vec()))
        })
    }
}
