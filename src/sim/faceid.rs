//! The mock Tencent Cloud FaceID server (API 3.0, `POST /`, 127.0.0.1 only) that the
//! reconciliation tests, the bench and third-party SDKs talk to. It follows API-NOTES §3:
//! TC3-HMAC-SHA256 signatures and temporary credentials are verified ([`auth`]), business
//! errors are HTTP 200 with `Response.Error` (injected faults may come as a 5xx with a body,
//! as a gateway answers). `DetectAuth` issues BizTokens (R1) whose comparisons appear over
//! time, some after the 2 h mark (R2/R3), and keeps `Extra`; `GetDetectInfoEnhanced` serves
//! them (R4); `GetWeChatBillDetails` serves a generated day ([`gen`]) plus the issued tokens,
//! per account (R9), with opaque cursors, R5's 06:00 rule, the documented `InvalidParameter`
//! for a bad date, an early day or a bad cursor, rate limits and injectable faults. Time runs
//! on a virtual clock (real time plus an offset that tests move); tests may hold bill pages
//! at an offset to stop a client at a known page boundary.

pub mod auth;
pub mod gen;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::recon::calendar::{self, day_start_ms, PullWindow};
use crate::recon::models::{
    ChargeDetail, DetectAuthRequest, DetectAuthResponse, DetectDetail, DetectInfoText, Envelope,
    GetDetectInfoEnhancedRequest, GetDetectInfoEnhancedResponse, GetWeChatBillDetailsRequest,
    GetWeChatBillDetailsResponse, WeChatBillDetail,
};
use auth::{Caller, Keyring, Reject};
pub use auth::{MockAccount, TempCredential};
use gen::{h, token_id, BillGen, CursorCodec};

/// Credentials the mock accepts when none are configured (documented for manual runs).
pub const DEFAULT_SECRET_ID: &str = "AKIDfacepaymock";
pub const DEFAULT_SECRET_KEY: &str = "facepay-mock-secret-key";

#[derive(Debug, Clone)]
pub struct MockConfig {
    pub seed: u64,
    pub secret_id: String,
    pub secret_key: String,
    pub rules: Vec<String>,
    pub details_per_day: u64,
    /// A page holds whole tokens until it reaches this many details.
    pub page_details: u64,
    /// `GetWeChatBillDetails` requests per second (API: 20); 0 = unlimited.
    pub bill_rate_limit: u32,
    /// `DetectAuth` / `GetDetectInfoEnhanced` requests per second each (API: 100); 0 = unlimited.
    pub api_rate_limit: u32,
    /// Every Nth request answers `fail_code` (0 = never).
    pub fail_every: u64,
    /// The code of injected faults (default `InternalError`).
    pub fail_code: String,
    /// The HTTP status of injected faults: 200 (a business error) or a 5xx with the error body.
    pub fail_status: u16,
    /// Accounts besides the primary one (`secret_id` / `secret_key`), each with its own bills.
    pub accounts: Vec<MockAccount>,
    /// Temporary credentials: `(account index, credential)`; 0 = the primary account.
    pub temp_credentials: Vec<(usize, TempCredential)>,
    /// RuleIds whose `DetectAuth` compares against a given identity: `IdCard` and `Name`
    /// are required.
    pub identity_rules: Vec<String>,
    /// Every Nth bill request answers a truncated body (0 = never).
    pub malformed_every: u64,
    /// From the second page on, `NextCursor` repeats the request's cursor.
    pub cursor_loop: bool,
    pub anomalies: bool,
    /// Late-data revision of the generated bills (0 = original).
    pub revision: u32,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            seed: 1,
            secret_id: DEFAULT_SECRET_ID.into(),
            secret_key: DEFAULT_SECRET_KEY.into(),
            rules: vec!["1".into(), "2".into()],
            details_per_day: 2_000,
            page_details: 2_000,
            bill_rate_limit: 20,
            api_rate_limit: 100,
            fail_every: 0,
            fail_code: "InternalError".into(),
            fail_status: 200,
            accounts: Vec::new(),
            temp_credentials: Vec::new(),
            identity_rules: Vec::new(),
            malformed_every: 0,
            cursor_loop: false,
            anomalies: false,
            revision: 0,
        }
    }
}

/// One comparison attempt of an issued token, relative to its issue time.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    after_ms: i64,
    errcode: Option<i64>,
    charged: Option<bool>,
}

const MIN: i64 = 60_000;

/// The scripted user behaviour of issued token number `n` (R3: some retry past early fetches).
fn scenario(n: u64) -> Vec<Attempt> {
    let a = |m: i64, e: Option<i64>, c: Option<bool>| Attempt { after_ms: m * MIN, errcode: e, charged: c };
    match n % 5 {
        0 => vec![a(2, Some(0), Some(true))],
        1 => vec![a(3, Some(2016), Some(true)), a(10, Some(0), Some(true))],
        2 => vec![a(30, Some(1001), Some(false)), a(110, Some(2016), Some(true))],
        3 => vec![],
        _ => vec![a(5, None, None), a(20, Some(1002), Some(true))],
    }
}

#[derive(Debug, Clone)]
struct Issued {
    account: usize,
    id_hash: u64,
    extra: Option<String>,
    rule_id: String,
    issued_ms: i64,
    attempts: Vec<Attempt>,
}

pub struct MockState {
    cfg: MockConfig,
    /// One generator per account (primary first): accounts never share a bill (R9).
    gens: Vec<BillGen>,
    /// Bill pages starting at this detail offset or later wait until it moves (u64::MAX = none).
    hold: tokio::sync::watch::Sender<u64>,
    clock_offset_ms: AtomicI64,
    revision: AtomicU32,
    requests: AtomicU64,
    bill_requests: AtomicU64,
    issued: Mutex<BTreeMap<String, Issued>>,
    windows: Mutex<BTreeMap<&'static str, (i64, u32)>>,
}

impl MockState {
    pub fn new(cfg: MockConfig) -> Self {
        let gen = |seed: u64| BillGen {
            seed,
            rules: cfg.rules.clone(),
            details_per_day: cfg.details_per_day,
            anomalies: cfg.anomalies,
        };
        let gens = std::iter::once(cfg.seed).chain(cfg.accounts.iter().map(|a| a.seed)).map(gen).collect();
        MockState {
            revision: AtomicU32::new(cfg.revision),
            cfg,
            gens,
            hold: tokio::sync::watch::Sender::new(u64::MAX),
            clock_offset_ms: AtomicI64::new(0),
            requests: AtomicU64::new(0),
            bill_requests: AtomicU64::new(0),
            issued: Mutex::new(BTreeMap::new()),
            windows: Mutex::new(BTreeMap::new()),
        }
    }
    /// The virtual now (epoch ms) that token timelines and R5 use.
    pub fn now_ms(&self) -> i64 {
        crate::clock::unix_ms(std::time::SystemTime::now()) + self.clock_offset_ms.load(Ordering::SeqCst)
    }
    /// Moves the virtual clock (signatures stay checked against real time).
    pub fn advance_ms(&self, ms: i64) {
        self.clock_offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
    /// Places the virtual clock at `ms` (epoch ms).
    pub fn set_now_ms(&self, ms: i64) {
        let real = crate::clock::unix_ms(std::time::SystemTime::now());
        self.clock_offset_ms.store(ms - real, Ordering::SeqCst);
    }
    pub fn set_revision(&self, r: u32) {
        self.revision.store(r, Ordering::SeqCst);
    }
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
    pub fn bill_requests(&self) -> u64 {
        self.bill_requests.load(Ordering::SeqCst)
    }
    /// Holds every bill page that starts at detail `offset` or later until the hold moves
    /// past it (`None` releases all): a client is stopped at a known page boundary.
    pub fn hold_bill_at(&self, offset: Option<u64>) {
        self.hold.send_replace(offset.unwrap_or(u64::MAX));
    }
    /// The detail offset a cursor of the primary account's bill of `date` (and rule filter)
    /// stands for; `None` for a cursor this mock never issued.
    pub fn cursor_offset(&self, date: chrono::NaiveDate, rule: Option<&str>, cursor: u64) -> Option<u64> {
        if cursor == 0 {
            return Some(0);
        }
        CursorCodec::new(self.cfg.seed, date, rule.unwrap_or("")).decode(cursor, u64::MAX - 1)
    }
    fn keyring(&self) -> Keyring<'_> {
        let permanent = std::iter::once((self.cfg.secret_id.as_str(), self.cfg.secret_key.as_str()))
            .chain(self.cfg.accounts.iter().map(|a| (a.secret_id.as_str(), a.secret_key.as_str())))
            .collect();
        Keyring { permanent, temporary: self.cfg.temp_credentials.iter().map(|(a, c)| (*a, c)).collect() }
    }
}

fn api_error(code: &str, message: &str, request_id: &str) -> Response {
    let body = serde_json::json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}});
    json_response(body.to_string())
}

fn json_response(body: String) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn ok<T: Serialize>(v: T) -> Response {
    json_response(serde_json::to_string(&Envelope { response: v }).expect("mock answers serialise"))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Reject> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() && e.to_string().contains("missing field") {
            ("MissingParameter", format!("a required parameter is missing: {e}"))
        } else {
            ("InvalidParameter", format!("the request body is not valid: {e}"))
        }
    })
}

async fn handle(State(st): State<Arc<MockState>>, headers: HeaderMap, body: Bytes) -> Response {
    let n = st.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let rid = token_id(h(&[st.cfg.seed, 0x4E0, n]));
    let caller = match auth::verify(&st.keyring(), &headers, &body, st.now_ms()) {
        Ok(c) => c,
        Err((code, msg)) => return api_error(code, &msg, &rid),
    };
    if headers.get("x-tc-version").and_then(|v| v.to_str().ok()) != Some("2018-03-01") {
        return api_error("NoSuchVersion", "X-TC-Version must be 2018-03-01", &rid);
    }
    if st.cfg.fail_every > 0 && n % st.cfg.fail_every == 0 {
        let mut r = api_error(&st.cfg.fail_code, "injected fault", &rid);
        *r.status_mut() = axum::http::StatusCode::from_u16(st.cfg.fail_status).expect("a valid fault status");
        return r;
    }
    let action = headers.get("x-tc-action").and_then(|v| v.to_str().ok()).unwrap_or("");
    let limited = match action {
        "DetectAuth" => rate_limited(&st, "DetectAuth", st.cfg.api_rate_limit),
        "GetDetectInfoEnhanced" => rate_limited(&st, "GetDetectInfoEnhanced", st.cfg.api_rate_limit),
        _ => false,
    };
    if limited {
        return api_error("RequestLimitExceeded", "too many requests per second", &rid);
    }
    let r = match action {
        "DetectAuth" => detect_auth(&st, caller, &body, &rid),
        "GetDetectInfoEnhanced" => detect_info(&st, caller, &body, &rid),
        "GetWeChatBillDetails" => bill(&st, caller, &body, &rid).await,
        _ => Err(("InvalidAction", format!("unknown action `{action}`"))),
    };
    r.unwrap_or_else(|(code, msg)| api_error(code, &msg, &rid))
}

fn check_rule(st: &MockState, rule: &str) -> Result<(), Reject> {
    if st.cfg.rules.iter().any(|r| r == rule) {
        Ok(())
    } else {
        Err(("InvalidParameterValue.RuleIdNotExist", "the RuleId does not exist".into()))
    }
}

fn detect_auth(st: &MockState, caller: Caller, body: &[u8], rid: &str) -> Result<Response, Reject> {
    let req: DetectAuthRequest = parse(body)?;
    check_rule(st, &req.rule_id)?;
    // The documented code for an identity a RuleId needs but did not get is not published:
    // `InvalidParameter` (never retried) is the strict choice.
    let given = |v: &Option<crate::recon::models::Personal>| v.as_ref().is_some_and(|p| !p.expose().trim().is_empty());
    if st.cfg.identity_rules.contains(&req.rule_id) && !(given(&req.id_card) && given(&req.name)) {
        return Err(("InvalidParameter", "IdCard and Name are required by this RuleId".into()));
    }
    let mut issued = st.issued.lock();
    let k = issued.len() as u64;
    let id_hash = h(&[st.cfg.seed, 0xDA, k]);
    let tok = token_id(id_hash);
    issued.insert(
        tok.clone(),
        Issued {
            account: caller.account,
            id_hash,
            extra: req.extra,
            rule_id: req.rule_id,
            issued_ms: st.now_ms(),
            attempts: scenario(k),
        },
    );
    Ok(ok(DetectAuthResponse {
        url: Some(format!("https://faceid.qq.com/mock?token={tok}")),
        biz_token: Some(tok),
        request_id: Some(rid.into()),
    }))
}

fn attempt_detail(t: &Issued, i: usize, a: &Attempt) -> DetectDetail {
    if a.errcode.is_none() {
        return DetectDetail { errmsg: Some("no comparison".into()), ..DetectDetail::default() };
    }
    DetectDetail {
        req_time: Some((t.issued_ms + a.after_ms).to_string()),
        seq: Some(token_id(h(&[t.id_hash, i as u64]))),
        sim: Some("88.50".into()),
        is_need_charge: a.charged,
        errcode: a.errcode,
        errmsg: Some(if a.errcode == Some(0) { "成功" } else { "失败" }.into()),
        livestatus: Some(0),
        comparestatus: a.errcode,
        ..DetectDetail::default()
    }
}

fn detect_info(st: &MockState, caller: Caller, body: &[u8], rid: &str) -> Result<Response, Reject> {
    let req: GetDetectInfoEnhancedRequest = parse(body)?;
    check_rule(st, &req.rule_id)?;
    let issued = st.issued.lock();
    // Another account's token is as unknown as a made-up one (R9).
    let t = issued
        .get(&req.biz_token)
        .filter(|t| t.account == caller.account)
        .ok_or(("InvalidParameter", "illegal BizToken".to_string()))?;
    let now = st.now_ms();
    if now - t.issued_ms > 72 * 3_600_000 {
        return Err(("InvalidParameterValue.BizTokenExpired", "the BizToken has expired".into()));
    }
    let seen: Vec<(usize, &Attempt)> =
        t.attempts.iter().enumerate().filter(|(_, a)| t.issued_ms + a.after_ms <= now).collect();
    let text = DetectInfoText {
        err_code: seen.last().and_then(|(_, a)| a.errcode),
        err_msg: seen.last().map(|_| "mock".into()),
        live_status: seen.last().map(|_| 0),
        comparestatus: seen.last().and_then(|(_, a)| a.errcode),
        sim: None,
        extra: t.extra.clone(),
        liveness_detail: Some(seen.iter().map(|(i, a)| attempt_detail(t, *i, a)).collect()),
    };
    Ok(ok(GetDetectInfoEnhancedResponse { text: Some(text), request_id: Some(rid.into()) }))
}

/// The issued tokens' details on `day`, visible at `now` (they join the generated bill).
fn issued_on(
    st: &MockState,
    caller: Caller,
    day: chrono::NaiveDate,
    rule: Option<&str>,
    now: i64,
) -> Vec<WeChatBillDetail> {
    let issued = st.issued.lock();
    let mut out = Vec::new();
    for (tok, t) in issued.iter().filter(|(_, t)| t.account == caller.account && rule.is_none_or(|r| r == t.rule_id)) {
        let details: Vec<ChargeDetail> = t
            .attempts
            .iter()
            .enumerate()
            .filter(|(_, a)| a.errcode.is_some() && t.issued_ms + a.after_ms <= now)
            .filter(|(_, a)| calendar::beijing_day(t.issued_ms + a.after_ms) == day)
            .map(|(i, a)| {
                let d = attempt_detail(t, i, a);
                ChargeDetail {
                    req_time: d.req_time,
                    seq: d.seq,
                    sim: d.sim,
                    is_need_charge: d.is_need_charge,
                    charge_type: Some("核身".into()),
                    error_code: a.errcode.map(|c| c.to_string()),
                    error_message: d.errmsg,
                    ..ChargeDetail::default()
                }
            })
            .collect();
        if !details.is_empty() {
            out.push(WeChatBillDetail {
                biz_token: Some(tok.clone()),
                charge_count: Some(details.iter().filter(|d| d.is_need_charge == Some(true)).count() as u64),
                charge_details: Some(details),
                rule_id: Some(t.rule_id.clone()),
            });
        }
    }
    out
}

/// A one-second window per action: more than `limit` requests in it are refused.
fn rate_limited(st: &MockState, action: &'static str, limit: u32) -> bool {
    if limit == 0 {
        return false;
    }
    let sec = crate::clock::unix_ms(std::time::SystemTime::now()) / 1000;
    let mut windows = st.windows.lock();
    let w = windows.entry(action).or_insert((sec, 0));
    if w.0 != sec {
        *w = (sec, 0);
    }
    w.1 += 1;
    w.1 > limit
}

async fn bill(st: &MockState, caller: Caller, body: &[u8], rid: &str) -> Result<Response, Reject> {
    let bn = st.bill_requests.fetch_add(1, Ordering::SeqCst) + 1;
    if rate_limited(st, "GetWeChatBillDetails", st.cfg.bill_rate_limit) {
        return Err(("RequestLimitExceeded", "too many requests per second".into()));
    }
    let req: GetWeChatBillDetailsRequest = parse(body)?;
    if let Some(r) = &req.rule_id {
        check_rule(st, r)?;
    }
    // The documented code of a bad Date, a day not ready and a bad Cursor is InvalidParameter.
    let day =
        calendar::parse_date(&req.date).map_err(|_| ("InvalidParameter", "Date must be YYYY-MM-DD".to_string()))?;
    match calendar::pull_window(day, st.now_ms()) {
        PullWindow::Open => {}
        PullWindow::NotYet { .. } => {
            return Err((
                "InvalidParameter",
                "the bill of this Date is available after 06:00 (UTC+8) of the next day".into(),
            ))
        }
        PullWindow::TooOld { .. } => return Err(("InvalidParameter", "Date is more than 365 days back".into())),
    }
    let rule = req.rule_id.as_deref();
    let n = st.cfg.details_per_day;
    let seed = st.gens[caller.account].seed;
    let codec = CursorCodec::new(seed, day, rule.unwrap_or(""));
    let extra_now = issued_on(st, caller, day, rule, st.now_ms()).len() as u64;
    let mut o = if req.cursor == 0 {
        0
    } else {
        codec.decode(req.cursor, n + extra_now).ok_or(("InvalidParameter", "Cursor is not valid".to_string()))?
    };
    let mut hold = st.hold.subscribe();
    if *hold.borrow() <= o {
        // A test stops the client here; a dropped connection drops this wait.
        let _ = hold.wait_for(|h| *h > o).await;
    }
    if st.cfg.malformed_every > 0 && bn % st.cfg.malformed_every == 0 {
        return Ok(json_response("{\"Response\":{\"HasNextPage\":tru".into()));
    }
    let extra = issued_on(st, caller, day, rule, st.now_ms());
    let limit = n + extra.len() as u64;
    let rev = st.revision.load(Ordering::SeqCst);
    let mut page = Vec::new();
    let mut count = 0u64;
    while o < limit && count < st.cfg.page_details {
        if o < n {
            let t = st.gens[caller.account].token_at(day, o, rev);
            o += t.span;
            if t.removed || rule.is_some_and(|r| t.detail.rule_id.as_deref() != Some(r)) {
                continue;
            }
            count += t.detail.charge_details.as_ref().map_or(0, |d| d.len() as u64);
            page.push(t.detail);
        } else {
            let d = extra[(o - n) as usize].clone();
            count += d.charge_details.as_ref().map_or(0, |d| d.len() as u64);
            page.push(d);
            o += 1;
        }
    }
    let has_next = o < limit;
    let next = if !has_next {
        0
    } else if st.cfg.cursor_loop && req.cursor != 0 {
        req.cursor
    } else {
        codec.encode(o)
    };
    Ok(ok(GetWeChatBillDetailsResponse {
        has_next_page: Some(has_next),
        next_cursor: Some(next),
        we_chat_bill_details: Some(page),
        request_id: Some(rid.into()),
    }))
}

pub fn router(state: Arc<MockState>) -> Router {
    Router::new().route("/", post(handle)).with_state(state)
}

/// A running mock; dropping it stops the server.
pub struct MockHandle {
    pub addr: SocketAddr,
    pub state: Arc<MockState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl MockHandle {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts the mock on 127.0.0.1:`port` (0 = any free port).
pub async fn start(cfg: MockConfig, port: u16) -> std::io::Result<MockHandle> {
    if cfg.rules.is_empty() || cfg.page_details == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "rules and page size must not be empty"));
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(MockState::new(cfg));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(MockHandle { addr, state, stop: Some(tx) })
}

/// Epoch ms of `hh:mm` Beijing time on `day`, for tests that place the virtual clock.
pub fn beijing_ms(day: chrono::NaiveDate, hh: i64, mm: i64) -> i64 {
    day_start_ms(day) + hh * 3_600_000 + mm * MIN
}
