//! `facepay demo`: a simulated canteen day end to end, in virtual time (tokio's paused
//! clock), so a whole day runs in seconds and a seed reproduces it. Several canteen
//! terminals and access gates, each a real terminal engine driving its own simulated face
//! service, pay through the merchant-backend mock. The day has a breakfast, a lunch rush and
//! a dinner peak, an OTA restart of every face service during lunch (T1), and a network
//! outage longer than 10 minutes in the afternoon (T3 authinfo held, T4.3 stale features,
//! payments queued in the outbox). The summary is computed from what the engines reported
//! and what the mocks recorded, never from the script.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::clock::VirtualClock;
use crate::error::{Error, Result, Secret};
#[cfg(not(feature = "merchant"))]
use crate::sim::backend::{SimBackend, SimBackendConfig};
use crate::sim::face_service::{SimConfig, SimFaceService};
pub use crate::sim::wechatpay_side::WechatPaySide;
use crate::terminal::backend::{AuthInfoSource, PaymentBackend};
use crate::terminal::config::TerminalConfig;
use crate::terminal::engine::{Deps, PayRequest, Terminal};
use crate::terminal::health::{EngineEvent, Health};
use crate::terminal::verify::Outcome;
use crate::wire::PaymentState;

/// With `merchant`, terminals pay through the reference backend and the mock WeChat Pay
/// (B1–B6); without it, through the protocol mock [`crate::sim::backend::SimBackend`].
#[cfg(feature = "merchant")]
type DemoBackend = crate::sim::reference_stack::ReferenceStack;
#[cfg(not(feature = "merchant"))]
type DemoBackend = SimBackend;

#[cfg(feature = "merchant")]
fn demo_backend(seed: u64, clock: Arc<VirtualClock>) -> Result<Arc<DemoBackend>> {
    crate::sim::reference_stack::ReferenceStack::for_demo(seed, clock)
}

#[cfg(not(feature = "merchant"))]
fn demo_backend(seed: u64, _clock: Arc<VirtualClock>) -> Result<Arc<DemoBackend>> {
    Ok(SimBackend::new(SimBackendConfig {
        seed,
        latency: (Duration::from_millis(20), Duration::from_millis(150)),
        error_rate: 0.02,
        processing_polls: 1,
        ..SimBackendConfig::default()
    }))
}

/// One terminal's link: enrolled at the reference backend and signing every request (S1).
#[cfg(feature = "merchant")]
fn demo_link(
    b: &Arc<DemoBackend>,
    cfg: &TerminalConfig,
    clock: Arc<VirtualClock>,
) -> Result<(Arc<dyn AuthInfoSource>, Arc<dyn PaymentBackend>)> {
    let link = crate::sim::reference_link::ReferenceLink::enrol(b, &cfg.device_id, &cfg.organization_id, clock)?;
    Ok((link.clone(), link))
}

#[cfg(not(feature = "merchant"))]
fn demo_link(
    b: &Arc<DemoBackend>,
    _cfg: &TerminalConfig,
    _clock: Arc<VirtualClock>,
) -> Result<(Arc<dyn AuthInfoSource>, Arc<dyn PaymentBackend>)> {
    Ok((b.clone(), b.clone()))
}

#[cfg(feature = "merchant")]
fn wechatpay_side(b: &DemoBackend) -> Option<WechatPaySide> {
    b.deductions().ok()
}

#[cfg(not(feature = "merchant"))]
fn wechatpay_side(_: &DemoBackend) -> Option<WechatPaySide> {
    None
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub terminals: usize,
    pub gates: usize,
    pub hours: u32,
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions { terminals: 4, gates: 1, hours: 14, seed: 1 }
    }
}

/// The day starts at 06:00 Beijing time on 2026-11-23.
const DAY_START_UNIX: u64 = 1_795_392_000 - 8 * 3600 + 6 * 3600;
const OTA_AT: Duration = Duration::from_secs((6 * 60 + 10) * 60); // 12:10
const OTA_DOWN: Duration = Duration::from_secs(90);
const OUTAGE_AT: Duration = Duration::from_secs(8 * 3600); // 14:00
const OUTAGE_LEN: Duration = Duration::from_secs(25 * 60);

/// Customers per hour at one canteen terminal, by local hour.
fn arrivals_per_hour(hour: u32) -> f64 {
    match hour {
        7 => 40.0,
        8 => 25.0,
        11 => 70.0,
        12 => 140.0, // the lunch rush
        13 => 50.0,
        17 => 60.0,
        18 => 45.0,
        6 | 9 | 10 | 14 | 15 | 16 | 19 => 6.0,
        _ => 1.0,
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

pub fn percentiles(mut v: Vec<Duration>) -> Percentiles {
    if v.is_empty() {
        return Percentiles::default();
    }
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    Percentiles { count: v.len(), p50_ms: at(0.5), p95_ms: at(0.95), max_ms: at(1.0) }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct DemoSummary {
    pub terminals: usize,
    pub gates: usize,
    pub hours: u32,
    pub seed: u64,
    pub customers: u64,
    /// Flow outcomes reported by the engines (canteen terminals).
    pub outcomes: BTreeMap<String, u64>,
    /// Customers turned away before a flow could start, by error.
    pub refused: BTreeMap<String, u64>,
    pub recognition_failures: u64,
    pub gate_recognitions: u64,
    /// Gate flows that ended otherwise (failed recognition, disconnect), by outcome.
    pub gate_other: BTreeMap<String, u64>,
    pub stage_latency: BTreeMap<String, Percentiles>,
    pub disconnects: u64,
    pub reconnects: u64,
    pub features_stale_alerts: u64,
    pub authinfo_refreshes: u64,
    pub restart_planned: u64,
    pub payments_queued: u64,
    pub payments_paid: u64,
    pub payments_failed: u64,
    pub payments_pending: u64,
    pub backend_unique_payments: u64,
    pub backend_duplicates_absorbed: u64,
    /// Queued credentials the backend never received.
    pub lost: u64,
    /// Idempotency keys that created more than one payment at the backend.
    pub charged_twice: u64,
    /// Deductions at the mock WeChat Pay through the reference backend (B5), when built
    /// with `merchant`; `charged_twice` and `lost` above include its ledger's counts.
    pub wechatpay: Option<WechatPaySide>,
    /// Vendor ordering errors the simulated services counted (T7.3–T7.5): must be 0.
    pub vendor_order_violations: u64,
    /// T3.6: calls after rawdata without the authed map (the simulators refused them): 0.
    pub calls_without_authinfo: u64,
    /// T9: calls made while disconnected that overwrote the library's pending one: 0.
    pub pending_call_overwrites: u64,
    /// T9: real answers after the library's timeout FAIL (the engine counts one of each).
    pub late_answers_after_fail: u64,
    pub virtual_seconds: u64,
}

struct Tally {
    outcomes: BTreeMap<String, u64>,
    refused: BTreeMap<String, u64>,
    customers: u64,
    stages: BTreeMap<String, Vec<Duration>>,
    stale: u64,
    restart_planned: u64,
    gate_recognitions: u64,
    recognition_failures: u64,
    queued_keys: Vec<String>,
    gate_outcomes: BTreeMap<String, u64>,
}

fn count(m: &mut BTreeMap<String, u64>, k: &str) {
    *m.entry(k.to_string()).or_default() += 1;
}

/// Runs the day. Must run on a runtime with paused time (see [`run_blocking`]).
pub async fn run(opts: &DemoOptions, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<DemoSummary> {
    if opts.terminals == 0 || opts.terminals > 64 {
        return Err(Error::invalid_arg("terminals", "must be within 1..=64"));
    }
    if opts.gates > 16 {
        return Err(Error::invalid_arg("gates", "must be within 0..=16"));
    }
    if opts.hours == 0 || opts.hours > 48 {
        return Err(Error::invalid_arg("hours", "must be within 1..=48"));
    }
    let start_wall = UNIX_EPOCH + Duration::from_secs(DAY_START_UNIX);
    let clock = Arc::new(VirtualClock::starting_at(start_wall));
    let backend = demo_backend(opts.seed, clock.clone())?;
    let tally = Arc::new(Mutex::new(Tally {
        outcomes: BTreeMap::new(),
        refused: BTreeMap::new(),
        customers: 0,
        stages: BTreeMap::new(),
        stale: 0,
        restart_planned: 0,
        gate_recognitions: 0,
        recognition_failures: 0,
        queued_keys: Vec::new(),
        gate_outcomes: BTreeMap::new(),
    }));
    let total = opts.terminals + opts.gates;
    let mut sims = Vec::new();
    let mut engines = Vec::new();
    for i in 0..total {
        let sim = SimFaceService::new(SimConfig {
            seed: opts.seed.wrapping_mul(1000).wrapping_add(i as u64),
            clock: Some(clock.clone()),
            ..SimConfig::default()
        });
        let mut cfg = TerminalConfig::example(&format!("pos-{i:02}"), "http://backend.invalid");
        cfg.organization_id = "org-canteen-1".into();
        let (auth, payments) = demo_link(&backend, &cfg, clock.clone())?;
        let deps = Deps { service: sim.clone(), auth, payments, clock: clock.clone() };
        let engine = Terminal::spawn(cfg, deps)?;
        spawn_event_counter(engine.clone(), tally.clone(), i >= opts.terminals);
        sims.push(sim);
        engines.push(engine);
    }
    let day = Duration::from_secs(u64::from(opts.hours) * 3600);
    let t0 = tokio::time::Instant::now();
    // Gates recognise continuously all day (T1.3).
    for g in &engines[opts.terminals..] {
        let g = g.clone();
        tokio::spawn(async move {
            if g.init().await.is_ok() {
                let _ = g.start_gate().await;
            }
        });
    }
    let mut tasks = Vec::new();
    for (i, engine) in engines.iter().take(opts.terminals).enumerate() {
        let (engine, sim, tally) = (engine.clone(), sims[i].clone(), tally.clone());
        let seed = opts.seed ^ (0x9e37_79b9 * (i as u64 + 1));
        tasks.push(tokio::spawn(async move { serve_customers(engine, sim, tally, seed, t0, day).await }));
    }
    // The day's faults, on the virtual clock.
    let faults = {
        let (sims, backend) = (sims.clone(), backend.clone());
        tokio::spawn(async move {
            if day > OTA_AT {
                tokio::time::sleep_until(t0 + OTA_AT).await;
                for (i, s) in sims.iter().enumerate() {
                    s.ota_restart(OTA_DOWN + Duration::from_secs(i as u64 * 7));
                }
            }
            if day > OUTAGE_AT {
                tokio::time::sleep_until(t0 + OUTAGE_AT).await;
                sims.iter().for_each(|s| s.set_network(false));
                backend.set_online(false);
                tokio::time::sleep(OUTAGE_LEN).await;
                sims.iter().for_each(|s| s.set_network(true));
                backend.set_online(true);
            }
        })
    };
    // Progress, per virtual minute.
    let minutes = day.as_secs() / 60;
    for m in 0..=minutes {
        tokio::time::sleep_until(t0 + Duration::from_secs(m * 60)).await;
        progress(m, minutes);
    }
    for t in tasks {
        t.await.map_err(|e| Error::Internal(format!("terminal task: {e}")))?;
    }
    faults.abort();
    // Let the outboxes drain what the outage queued.
    for _ in 0..120 {
        if engines.iter().all(|e| pending(&e.health()) == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let summary = summarise(opts, &engines, &sims, &backend, &tally, t0.elapsed());
    for e in &engines {
        let _ = e.shutdown().await;
    }
    Ok(summary)
}

fn pending(h: &Health) -> u64 {
    h.payments_queued.saturating_sub(h.payments_final.values().sum())
}

async fn serve_customers(
    engine: Terminal,
    sim: Arc<SimFaceService>,
    tally: Arc<Mutex<Tally>>,
    seed: u64,
    t0: tokio::time::Instant,
    day: Duration,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let _ = engine.init().await;
    // The population is fixed for the day: each customer's phone, for auxiliary verification.
    let phones: std::collections::HashMap<String, Secret> =
        sim.users().into_iter().map(|u| (u.user_id, u.phone)).collect();
    let ext = |u: &crate::terminal::face_service::UserInfo| phones.get(&u.user_id).cloned();
    let mut at = Duration::ZERO;
    loop {
        let hour = 6 + (at.as_secs() / 3600) as u32;
        let rate = arrivals_per_hour(hour % 24) / 3600.0;
        let gap: f64 = -(1.0 - rng.random::<f64>()).ln() / rate;
        at += Duration::from_secs_f64(gap.max(1.0));
        if at >= day {
            return;
        }
        tokio::time::sleep_until(t0 + at).await;
        let amount_fen = rng.random_range(300..3000);
        tally.lock().customers += 1;
        // A customer waits up to a minute for a terminal that is reconnecting.
        let mut tries = 0;
        loop {
            match engine.pay(PayRequest { amount_fen, out_trade_no: None }, &ext).await {
                Ok(_) => break,
                Err(e) if tries < 6 && is_transient(&e) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
                Err(e) => {
                    if is_transient(&e) {
                        count(&mut tally.lock().refused, &format!("{:?}", e.code()));
                    }
                    break;
                }
            }
        }
    }
}

fn is_transient(e: &Error) -> bool {
    matches!(
        e,
        Error::ServiceDisconnected | Error::NotInitialised | Error::FeaturesNotReady | Error::AuthInfoUnavailable(_)
    )
}

fn spawn_event_counter(engine: Terminal, tally: Arc<Mutex<Tally>>, gate: bool) {
    let mut rx = engine.subscribe();
    tokio::spawn(async move {
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let mut t = tally.lock();
            match ev {
                EngineEvent::FlowEnded(r) if gate && r.outcome != Outcome::Recognised => {
                    count(&mut t.gate_outcomes, r.outcome.label());
                }
                EngineEvent::FlowEnded(_) if gate => {}
                EngineEvent::FlowEnded(r) => {
                    count(&mut t.outcomes, r.outcome.label());
                    t.recognition_failures += u64::from(r.recognition_failures);
                    let tm = r.timings;
                    for (k, v) in [
                        ("1 first frame", tm.first_frame),
                        ("2 recognised", tm.recognised),
                        ("3 finished", tm.finished),
                        ("4 credential", tm.credential),
                    ] {
                        if let Some(v) = v {
                            t.stages.entry(k.into()).or_default().push(v);
                        }
                    }
                    if r.outcome == Outcome::Credential {
                        t.stages.entry("5 whole flow".into()).or_default().push(tm.total);
                    }
                }
                EngineEvent::GateRecognised { .. } => t.gate_recognitions += 1,
                EngineEvent::PaymentQueued { idempotency_key, .. } => t.queued_keys.push(idempotency_key),
                EngineEvent::FeaturesStale { .. } => t.stale += 1,
                EngineEvent::RestartPlanned { .. } => t.restart_planned += 1,
                _ => {}
            }
        }
    });
}

fn summarise(
    opts: &DemoOptions,
    engines: &[Terminal],
    sims: &[Arc<SimFaceService>],
    backend: &DemoBackend,
    tally: &Mutex<Tally>,
    elapsed: Duration,
) -> DemoSummary {
    let t = tally.lock();
    let hs: Vec<Health> = engines.iter().map(Terminal::health).collect();
    let sum = |f: &dyn Fn(&Health) -> u64| hs.iter().map(f).sum::<u64>();
    let b = backend.stats();
    let wechatpay = wechatpay_side(backend);
    let (ledger_twice, ledger_lost) = wechatpay.as_ref().map(|w| (w.charged_twice, w.lost)).unwrap_or((0, 0));
    let stats: Vec<_> = sims.iter().map(|s| s.stats()).collect();
    let violations = stats.iter().map(|s| s.order_violations()).sum();
    DemoSummary {
        terminals: opts.terminals,
        gates: opts.gates,
        hours: opts.hours,
        seed: opts.seed,
        customers: t.customers,
        outcomes: t.outcomes.clone(),
        refused: t.refused.clone(),
        recognition_failures: t.recognition_failures,
        gate_recognitions: t.gate_recognitions,
        gate_other: t.gate_outcomes.clone(),
        stage_latency: t.stages.iter().map(|(k, v)| (k.clone(), percentiles(v.clone()))).collect(),
        disconnects: sum(&|h| h.disconnects),
        reconnects: sum(&|h| h.reconnects),
        features_stale_alerts: t.stale,
        authinfo_refreshes: sum(&|h| h.authinfo_refreshes),
        restart_planned: t.restart_planned,
        payments_queued: sum(&|h| h.payments_queued),
        payments_paid: sum(&|h| h.payments_final.get(&PaymentState::Paid).copied().unwrap_or(0)),
        payments_failed: sum(&|h| h.payments_final.get(&PaymentState::Failed).copied().unwrap_or(0)),
        payments_pending: sum(&pending),
        backend_unique_payments: b.payments_created,
        backend_duplicates_absorbed: b.duplicates,
        lost: t.queued_keys.iter().filter(|k| !b.created_per_key.contains_key(*k)).count() as u64 + ledger_lost,
        charged_twice: b.created_per_key.values().filter(|n| **n > 1).count() as u64 + ledger_twice,
        wechatpay,
        vendor_order_violations: violations,
        calls_without_authinfo: stats.iter().map(|s| s.calls_without_authinfo).sum(),
        pending_call_overwrites: stats.iter().map(|s| s.pending_overwrites).sum(),
        late_answers_after_fail: stats.iter().map(|s| s.late_answers_after_fail).sum(),
        virtual_seconds: elapsed.as_secs(),
    }
}

/// Runs the demo on a fresh single-threaded runtime with paused (virtual) time.
pub fn run_blocking(opts: &DemoOptions, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<DemoSummary> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| Error::Internal(format!("runtime: {e}")))?;
    rt.block_on(run(opts, progress))
}

/// The summary as a table for the terminal.
pub fn render(s: &DemoSummary, real: Duration) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "facepay demo — {} canteen terminal(s), {} gate(s), {} h simulated (seed {}) in {:.1} s",
        s.terminals,
        s.gates,
        s.hours,
        s.seed,
        real.as_secs_f64()
    );
    let _ = writeln!(o, "\nFlows ({} customers)", s.customers);
    for (k, v) in &s.outcomes {
        let _ = writeln!(o, "  {k:<30}{v:>8}");
    }
    for (k, v) in &s.refused {
        let _ = writeln!(o, "  refused: {k:<21}{v:>8}");
    }
    let _ = writeln!(o, "  {:<30}{:>8}", "recognition retries", s.recognition_failures);
    let _ = writeln!(o, "\nGates");
    let _ = writeln!(o, "  {:<30}{:>8}", "recognised", s.gate_recognitions);
    for (k, v) in &s.gate_other {
        let _ = writeln!(o, "  {k:<30}{v:>8}");
    }
    let _ = writeln!(o, "\nStage latency from startVerify    count    p50 ms    p95 ms    max ms");
    for (k, p) in &s.stage_latency {
        let _ = writeln!(o, "  {:<30}{:>7}{:>10.0}{:>10.0}{:>10.0}", &k[2..], p.count, p.p50_ms, p.p95_ms, p.max_ms);
    }
    let _ = writeln!(o, "\nService");
    let _ = writeln!(o, "  {:<30}{:>8}", "disconnects", s.disconnects);
    let _ = writeln!(o, "  {:<30}{:>8}", "reconnects", s.reconnects);
    let _ = writeln!(o, "  {:<30}{:>8}", "features-stale alerts", s.features_stale_alerts);
    let _ = writeln!(o, "  {:<30}{:>8}", "authinfo refreshes", s.authinfo_refreshes);
    let _ = writeln!(o, "  {:<30}{:>8}", "restarts planned", s.restart_planned);
    let _ = writeln!(o, "  {:<30}{:>8}", "vendor order violations", s.vendor_order_violations);
    let _ = writeln!(o, "  {:<30}{:>8}", "calls without authinfo", s.calls_without_authinfo);
    let _ = writeln!(o, "  {:<30}{:>8}", "pending-call overwrites", s.pending_call_overwrites);
    let _ = writeln!(o, "  {:<30}{:>8}", "late answers after FAIL", s.late_answers_after_fail);
    let _ = writeln!(o, "\nPayments");
    let _ = writeln!(o, "  {:<30}{:>8}", "queued (credentials)", s.payments_queued);
    let _ = writeln!(o, "  {:<30}{:>8}", "paid", s.payments_paid);
    let _ = writeln!(o, "  {:<30}{:>8}", "failed", s.payments_failed);
    let _ = writeln!(o, "  {:<30}{:>8}", "pending", s.payments_pending);
    let _ = writeln!(o, "  {:<30}{:>8}", "duplicates absorbed", s.backend_duplicates_absorbed);
    if let Some(w) = &s.wechatpay {
        let _ = writeln!(o, "\nWeChat Pay deductions (reference backend → mock WeChat Pay, B5)");
        for (k, v) in &w.payments {
            let _ = writeln!(o, "  payments {k:<21}{v:>8}");
        }
        for (k, v) in &w.by_outcome {
            let _ = writeln!(o, "  attempt {k:<22}{v:>8}");
        }
        let _ = writeln!(o, "  {:<30}{:>8}", "retries", w.retries);
        let _ = writeln!(o, "  {:<30}{:>8}", "order queries", w.order_queries);
    }
    let _ = writeln!(o, "  charged twice: {} / lost: {}", s.charged_twice, s.lost);
    o
}
