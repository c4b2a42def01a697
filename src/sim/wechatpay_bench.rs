//! `facepay bench wechatpay`: signed-and-verified B5 deductions per second through the
//! deduction engine (SQLite record before send, RSA-2048 request signature, response
//! verification) against the mock WeChat Pay on 127.0.0.1 — in process, or an external
//! mock named by a backend config (so `bench/peers/` can put every SDK against the same
//! server) — and the cost of one signature next to `openssl speed rsa2048`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clock::ManualClock;
use crate::merchant::config::BackendConfig;
use crate::merchant::engine::Engine;
use crate::sim::wechatpay::{self, KeyMode};
use crate::sim::wechatpay_fixture;
use crate::store::StorePath;
use crate::wire::{PaymentRequest, PaymentState};
use crate::Secret;

#[derive(Debug, Serialize)]
pub struct WechatpayBench {
    pub deductions: usize,
    pub concurrency: usize,
    pub paid: usize,
    pub seconds: f64,
    pub deductions_per_s: f64,
    /// This process's user + system CPU time per deduction over the timed phase (every
    /// thread), so `bench/peers/run.sh` can set each client's own cost apart from the
    /// shared mock's.
    pub client_cpu_us_per_deduction: Option<f64>,
    pub sign_us: f64,
    pub signs_per_s: f64,
    pub openssl_signs_per_s: Option<f64>,
    /// facepay signs/s ÷ openssl signs/s (target ≥ 0.85: within 15 %).
    pub sign_ratio_vs_openssl: Option<f64>,
}

/// `openssl speed rsa2048` sign/s on this machine, if the CLI is there.
pub fn openssl_signs_per_s() -> Option<f64> {
    let out = std::process::Command::new("openssl").args(["speed", "-seconds", "2", "rsa2048"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("rsa 2048 bits") || l.starts_with("rsa  2048 bits"))?;
    let cols: Vec<&str> = line.split_whitespace().collect();
    cols.get(cols.len().checked_sub(2)?)?.parse().ok()
}

pub async fn run(
    deductions: usize,
    concurrency: usize,
    config: Option<&std::path::Path>,
) -> Result<WechatpayBench, String> {
    let dir = tempfile_dir()?;
    let cfg = match config {
        Some(p) => BackendConfig::load(p).map_err(|e| e.to_string())?,
        None => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?
                .port();
            let mock = wechatpay_fixture::create(
                &dir,
                KeyMode::PublicKey,
                &format!("http://127.0.0.1:{port}"),
                "127.0.0.1:0",
                Duration::from_secs(5),
            )
            .map_err(|e| e.to_string())?;
            wechatpay::serve(mock, port).await.map_err(|e| e.to_string())?;
            BackendConfig::load(&dir.join("backend.json")).map_err(|e| e.to_string())?
        }
    };
    let client = Arc::new(cfg.client().map_err(|e| e.to_string())?);
    let engine = Engine::open(
        &StorePath::Memory,
        client.clone(),
        Arc::new(ManualClock::at_unix_s(1_800_000_000)),
        cfg.deduction_params(),
    )
    .map_err(|e| e.to_string())?;
    let run_id = crate::merchant::sign::nonce();
    let org = cfg.organizations[0].clone();
    let one = move |i: usize| {
        let engine = engine.clone();
        let run_id = run_id.clone();
        let org = org.clone();
        async move {
            let req = PaymentRequest {
                idempotency_key: format!("{run_id}-{i}"),
                face_token: Secret::new(format!("rs-{run_id}-{i}")),
                user_id: "u".into(),
                out_user_id: "ou".into(),
                amount_fen: 100,
                organization_id: org,
                device_id: "bench".into(),
            };
            let (st, _) = engine.record(&req).map_err(|e| e.to_string())?;
            engine.drive(&st.payment_id).await.map_err(|e| e.to_string())
        }
    };
    one(usize::MAX).await?; // warm-up: connection and statement caches
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let one = one.clone();
        tasks.push(tokio::spawn(async move {
            let mut paid = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= deductions {
                    return Ok::<usize, String>(paid);
                }
                if one(i).await? == PaymentState::Paid {
                    paid += 1;
                }
            }
        }));
    }
    let mut paid = 0;
    for t in tasks {
        paid += t.await.map_err(|e| e.to_string())??;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = process_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    // Signing cost, single thread.
    let msg = b"POST\n/v3/offlineface/transactions\n1800000000\n593BEC0C930BF1AFEB40B4A08C8FB242\n{\"auth_code\":\"x\",\"amount\":{\"total\":100}}\n";
    let n = 2000;
    let t1 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(client.signer.sign(msg));
    }
    let sign_s = t1.elapsed().as_secs_f64() / n as f64;
    let openssl = openssl_signs_per_s();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(WechatpayBench {
        deductions,
        concurrency,
        paid,
        seconds,
        deductions_per_s: deductions as f64 / seconds,
        client_cpu_us_per_deduction: cpu.map(|d| d.as_secs_f64() * 1e6 / deductions as f64),
        sign_us: sign_s * 1e6,
        signs_per_s: 1.0 / sign_s,
        openssl_signs_per_s: openssl,
        sign_ratio_vs_openssl: openssl.map(|o| (1.0 / sign_s) / o),
    })
}

/// This process's CPU time so far, user + system, every thread (`None` if the clock
/// cannot be read).
fn process_cpu() -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

fn tempfile_dir() -> Result<std::path::PathBuf, String> {
    let d = std::env::temp_dir().join(format!("facepay-bench-{}", crate::merchant::sign::nonce()));
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    Ok(d)
}
