//! The terminal benchmark suites behind `facepay bench flow|startup`. They measure, they
//! do not assert: targets are reported next to the figures (flow overhead p50 ≤ 20 µs,
//! p99 ≤ 100 µs; init-to-ready with a cached authinfo ≤ 5 ms with no network call; an idle
//! engine adds ≤ 3 threads and ≤ 8 MB RSS).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::Secret;
use crate::error::{Error, Result};
use crate::sim::backend::{SimBackend, SimBackendConfig};
use crate::sim::face_service::{SimConfig, SimFaceService};
use crate::terminal::backend::{PaymentBackend, PaymentRequest, PaymentState, PaymentStatus};
use crate::terminal::blocking;
use crate::terminal::config::TerminalConfig;
use crate::terminal::engine::{Deps, PayRequest, Terminal};
use crate::terminal::face_service::{BoxFut, UserInfo};

#[derive(Debug, Clone, Serialize)]
pub struct FlowBench {
    pub flows: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    pub flows_per_s: f64,
    pub target_p50_us: f64,
    pub target_p99_us: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StartupBench {
    pub init_to_ready_ms: f64,
    pub authinfo_fetches_during_start: u64,
    pub engine_threads: i64,
    pub engine_rss_kb: i64,
    pub target_ready_ms: f64,
    pub target_threads: i64,
    pub target_rss_kb: i64,
}

fn rt() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("runtime: {e}")))
}

fn instant_backend() -> Arc<SimBackend> {
    SimBackend::new(SimBackendConfig::default())
}

/// A zero-latency backend that acknowledges every payment as paid at once, with none of
/// the mock's bookkeeping: the payment side's counterpart of the zero-latency simulator.
struct AckBackend;

impl PaymentBackend for AckBackend {
    fn submit<'a>(&'a self, req: &'a PaymentRequest) -> BoxFut<'a, Result<PaymentStatus>> {
        Box::pin(
            async move { Ok(PaymentStatus { payment_id: req.idempotency_key.clone(), state: PaymentState::Paid }) },
        )
    }
    fn status(&self, payment_id: String) -> BoxFut<'_, Result<PaymentStatus>> {
        Box::pin(async move { Ok(PaymentStatus { payment_id, state: PaymentState::Paid }) })
    }
}

/// Complete pay flows (start → recognition → finish → credential committed to the outbox)
/// against a zero-latency simulator: what is left is the engine's own cost. Engine, outbox
/// and caller share one thread, so each figure also holds the outbox's delivery of that
/// payment to the (in-process) backend, which runs as soon as the credential is committed.
///
/// The caller is a spawned task, as an app's work is. Were it the future the runtime
/// blocks on, tokio would poll its IO driver (an `epoll_wait` system call) each time an
/// answer wakes it with no other task queued: four per flow, about 3 µs in all on this
/// machine's virtual CPUs, none of it the engine's.
pub fn flow(flows: usize) -> Result<FlowBench> {
    check_flows(flows)?;
    let rt = rt()?;
    let app = rt.spawn(async move {
        let t = Terminal::spawn(bench_config(), bench_deps())?;
        t.init().await?;
        await_authinfo(&t).await?;
        let mut pays = Vec::with_capacity(flows + flows / 10);
        for _ in 0..flows + flows / 10 {
            let a = Instant::now();
            t.pay(PAY.clone(), &no_ext).await?;
            pays.push(a.elapsed());
        }
        t.shutdown().await?;
        Ok(summarise(pays, flows))
    });
    rt.block_on(app).map_err(|e| Error::Internal(format!("bench task: {e}")))?
}

/// The same flows with the engine on its own thread ([`Terminal::start`], as behind JNI)
/// and the caller blocking on each answer ([`blocking::block_on`]): the figure adds the
/// hand-offs between the app's thread and the engine's.
pub fn flow_engine_thread(flows: usize) -> Result<FlowBench> {
    check_flows(flows)?;
    let t = Terminal::start(bench_config(), bench_deps())?;
    blocking::block_on(t.init())?;
    rt()?.block_on(await_authinfo(&t))?;
    let mut pays = Vec::with_capacity(flows + flows / 10);
    for _ in 0..flows + flows / 10 {
        let a = Instant::now();
        blocking::block_on(t.pay(PAY.clone(), &no_ext))?;
        pays.push(a.elapsed());
    }
    blocking::block_on(t.shutdown())?;
    Ok(summarise(pays, flows))
}

/// Waits until the engine holds an authinfo (fetched in the background right after init,
/// T3.1); gives up after 10 s instead of hanging.
async fn await_authinfo(t: &Terminal) -> Result<()> {
    let give_up = Instant::now() + Duration::from_secs(10);
    while t.health().authinfo_valid_for.is_none() {
        if Instant::now() > give_up {
            return Err(Error::Internal("bench: no authinfo 10 s after init".into()));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Percentiles need enough flows to mean something (and at least one to exist).
fn check_flows(flows: usize) -> Result<()> {
    if flows < 100 {
        return Err(Error::invalid_arg("flows", "must be at least 100"));
    }
    Ok(())
}

const PAY: PayRequest = PayRequest { amount_fen: 100, out_trade_no: None };

fn no_ext(_: &UserInfo) -> Option<Secret> {
    None
}

fn bench_config() -> TerminalConfig {
    TerminalConfig::example("bench-1", "http://backend.invalid")
}

fn bench_deps() -> Deps {
    Deps::new(SimFaceService::new(SimConfig::instant(7)), instant_backend(), Arc::new(AckBackend))
}

/// Drops the first tenth of `pays` (warm-up) and summarises the `flows` that follow.
fn summarise(pays: Vec<Duration>, flows: usize) -> FlowBench {
    let mut v = pays[pays.len() - flows..].to_vec();
    let wall: Duration = v.iter().sum();
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    FlowBench {
        flows,
        p50_us: us(v[v.len() / 2]),
        p99_us: us(v[(v.len() * 99) / 100]),
        mean_us: us(wall) / flows as f64,
        flows_per_s: flows as f64 / wall.as_secs_f64(),
        target_p50_us: 20.0,
        target_p99_us: 100.0,
    }
}

/// A numeric field of `/proc/self/status` (`VmRSS:`, `VmHWM:`, `Threads:`; Linux only).
pub fn proc_status(field: &str) -> Option<i64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Init-to-ready of an engine on its own thread with an authinfo cached by an earlier run,
/// then the idle engine's threads and RSS over the process before it started.
pub fn startup() -> Result<StartupBench> {
    let dir = std::env::temp_dir().join(format!("facepay-bench-startup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = TerminalConfig::example("bench-1", "http://backend.invalid");
    cfg.store_path = Some(dir.join("terminal.db").to_string_lossy().into_owned());
    // An earlier run of the app fetched and persisted an authinfo.
    {
        let backend = instant_backend();
        let deps = Deps::new(SimFaceService::new(SimConfig::instant(1)), backend.clone(), backend);
        let t = Terminal::start(cfg.clone(), deps)?;
        let rt = rt()?;
        rt.block_on(async {
            t.init().await?;
            await_authinfo(&t).await?;
            t.shutdown().await
        })?;
    }
    let caller = rt()?;
    let backend = instant_backend();
    let sim = SimFaceService::new(SimConfig::instant(2));
    let threads0 = proc_status("Threads:").unwrap_or(0);
    let rss0 = proc_status("VmRSS:").unwrap_or(0);
    let t0 = Instant::now();
    let t = Terminal::start(cfg, Deps::new(sim, backend.clone(), backend.clone()))?;
    caller.block_on(t.init())?;
    let ready = t0.elapsed();
    let fetches = backend.stats().authinfo_fetches;
    std::thread::sleep(Duration::from_millis(300));
    let threads = proc_status("Threads:").unwrap_or(0) - threads0;
    let rss = proc_status("VmRSS:").unwrap_or(0) - rss0;
    caller.block_on(t.shutdown())?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(StartupBench {
        init_to_ready_ms: ready.as_secs_f64() * 1000.0,
        authinfo_fetches_during_start: fetches,
        engine_threads: threads,
        engine_rss_kb: rss,
        target_ready_ms: 5.0,
        target_threads: 3,
        target_rss_kb: 8 * 1024,
    })
}
