//! `facepay bench link` (SPEC S1): what authentication costs. The terminal side: the cost
//! of signing one request (a typical payment body) with [`DeviceSigner`]. The backend
//! side: authinfo and payment requests per second through the reference backend's router
//! (in process, no sockets, so the figure is the backend's own work: gate, checks,
//! handler, store) with authentication on — the gate `backend serve` runs, rate limit
//! lifted — next to off (a layer that trusts every request as from one device). Payments
//! are accepted and recorded; their deductions run behind them against the in-process mock
//! WeChat Pay in both runs alike.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use serde::Serialize;
use tower::ServiceExt;

use crate::clock::{unix_s, Clock, SystemClock};
use crate::merchant::devices::Lookup;
use crate::merchant::link_config::LinkConfig;
use crate::sim::reference_stack::ReferenceStack;
use crate::terminal::link_sign::DeviceSigner;

#[derive(Debug, Serialize)]
pub struct LinkBench {
    pub sign_us: f64,
    pub authinfo_per_s_auth_on: f64,
    pub authinfo_per_s_auth_off: f64,
    pub payments_per_s_auth_on: f64,
    pub payments_per_s_auth_off: f64,
    pub requests: usize,
}

const ORG: &str = "org-canteen-1";
const DEVICE: &str = "bench-dev";

fn payment_body(key: &str) -> Vec<u8> {
    serde_json::json!({"idempotency_key": key, "face_token": "FT0123456789abcdef0123456789abcdef", "user_id": "u1",
        "out_user_id": "stu-1", "amount_fen": 900, "organization_id": ORG, "device_id": DEVICE})
    .to_string()
    .into_bytes()
}

async fn rate(
    app: &axum::Router,
    n: usize,
    signer: Option<&DeviceSigner>,
    mk: impl Fn(usize) -> (String, Vec<u8>),
) -> Result<f64, String> {
    let t = Instant::now();
    for i in 0..n {
        let (path, body) = mk(i);
        let mut r = Request::builder().method("POST").uri(&path).header("content-type", "application/json");
        if let Some(s) = signer {
            r = r.header(crate::wire::auth::HEADER, s.authorization("POST", &path, &body));
        }
        let req = r.body(Body::from(body)).map_err(|e| e.to_string())?;
        let resp = app.clone().oneshot(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{path}: HTTP {}", resp.status()));
        }
        let _ = axum::body::to_bytes(resp.into_body(), 1 << 16).await;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// Waits (bounded) until the deductions behind the accepted payments are done.
async fn settle(stack: &ReferenceStack) {
    for _ in 0..600 {
        let open = stack.backend.engine.open_payments().map(|v| v.len()).unwrap_or(0);
        if open == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub async fn run(requests: usize) -> Result<LinkBench, String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let link = LinkConfig { rate_per_s: 1_000_000, rate_burst: 1_000_000, ..LinkConfig::plain() };
    let stack = ReferenceStack::with_link(1, clock.clone(), link).map_err(|e| e.to_string())?;
    // No WeChat Pay weather: every deduction behind an accepted payment succeeds at once,
    // so the background work is the same small amount in both runs.
    stack.mock.set_random_faults(1, crate::sim::wechatpay::FaultRates::default());
    let credential = stack.backend.devices().add(DEVICE, ORG, None, unix_s(clock.wall())).map_err(|e| e.to_string())?;
    let device = match stack.backend.devices().lookup(DEVICE).map_err(|e| e.to_string())? {
        Lookup::Active(d, _) => d,
        _ => return Err("the bench device is not enrolled".into()),
    };
    let signer = DeviceSigner::new(DEVICE, credential, clock).map_err(|e| e.to_string())?;

    let body = payment_body("bench-key-000000");
    let n = requests.max(1000) * 10;
    let t = Instant::now();
    let mut len = 0;
    for _ in 0..n {
        len += signer.authorization("POST", "/facepay/v1/payments", &body).len();
    }
    let sign_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    std::hint::black_box(len);

    let on = stack.router();
    let off = crate::merchant::server::trusting_router_for_bench(stack.backend.clone(), device);
    let authinfo = serde_json::json!({"device_id": DEVICE, "raw_data": "raw", "organization_id": ORG}).to_string();
    let a = |_| ("/facepay/v1/authinfo".to_string(), authinfo.clone().into_bytes());
    // Warm the authinfo cache (one upstream call), then measure the cached path.
    rate(&on, 10, Some(&signer), a).await?;
    let authinfo_off = rate(&off, requests, None, a).await?;
    let authinfo_on = rate(&on, requests, Some(&signer), a).await?;
    let p =
        |tag: &'static str| move |i| ("/facepay/v1/payments".to_string(), payment_body(&format!("bench-{tag}-{i}")));
    let payments_off = rate(&off, requests, None, p("off")).await?;
    settle(&stack).await;
    let payments_on = rate(&on, requests, Some(&signer), p("on")).await?;
    settle(&stack).await;
    Ok(LinkBench {
        sign_us,
        authinfo_per_s_auth_on: authinfo_on.round(),
        authinfo_per_s_auth_off: authinfo_off.round(),
        payments_per_s_auth_on: payments_on.round(),
        payments_per_s_auth_off: payments_off.round(),
        requests,
    })
}
