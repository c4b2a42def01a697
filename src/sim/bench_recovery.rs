//! `facepay bench recovery`: after the simulated service restarts (OTA) and answers again,
//! how long until a gate recognises again and until a pay flow can start (SPEC T1.1–T1.3,
//! T3.6, T9). The simulator has zero latency and the clock is tokio's paused clock, so the
//! figure is the engine's own detection, backoff and re-sequencing, measured in virtual
//! time from the moment the library reconnected. It measures and does not assert: the
//! target (≤ 2 s for both) is printed beside the figures.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::sim::backend::{SimBackend, SimBackendConfig};
use crate::sim::face_service::{SimConfig, SimFaceService};
use crate::terminal::config::TerminalConfig;
use crate::terminal::engine::{Deps, PayRequest, Terminal};
use crate::terminal::health::EngineEvent;

/// Outage lengths, seconds: shorter and longer than every engine and library deadline.
const DOWN_S: [u64; 10] = [1, 3, 5, 8, 12, 20, 30, 45, 60, 120];

#[derive(Debug, Clone, Serialize)]
pub struct RecoveryBench {
    pub restarts: usize,
    pub gate_p50_ms: f64,
    pub gate_max_ms: f64,
    pub pay_p50_ms: f64,
    pub pay_max_ms: f64,
    /// Per outage length (s): gate and pay recovery (ms).
    pub by_outage: Vec<(u64, f64, f64)>,
    pub calls_without_authinfo: u64,
    pub pending_call_overwrites: u64,
    pub late_answers_after_fail: u64,
    pub target_ms: f64,
}

fn engine(seed: u64) -> Result<(Terminal, Arc<SimFaceService>)> {
    let sim = SimFaceService::new(SimConfig::instant(seed));
    let backend = SimBackend::new(SimBackendConfig::default());
    let deps = Deps { service: sim.clone(), auth: backend.clone(), payments: backend, clock: sim.clock() };
    Ok((Terminal::spawn(TerminalConfig::example("bench-recovery", "http://backend.invalid"), deps)?, sim))
}

async fn gate_round(t: &Terminal, sim: &SimFaceService, down: Duration) -> Result<Duration> {
    sim.ota_restart(down);
    tokio::time::sleep(down).await;
    // The service answers again now; nothing was recognised while it was down.
    let mut ev = t.subscribe();
    let back = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(600), ev.recv()).await {
            Ok(Ok(EngineEvent::GateRecognised { .. })) => return Ok(back.elapsed()),
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => return Err(Error::Internal(format!("events: {e}"))),
            Err(_) => return Err(Error::Internal("the gate never recognised again".into())),
        }
    }
}

async fn pay_round(t: &Terminal, sim: &SimFaceService, down: Duration) -> Result<Duration> {
    sim.ota_restart(down);
    tokio::time::sleep(down).await;
    let back = Instant::now();
    loop {
        if let Ok(flow) = t.start_flow(PayRequest { amount_fen: 100, out_trade_no: None }).await {
            let took = back.elapsed();
            t.stop(flow).await?;
            return Ok(took);
        }
        if back.elapsed() > Duration::from_secs(600) {
            return Err(Error::Internal("no pay flow could start".into()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ms(d: &[Duration], q: f64) -> f64 {
    let mut v = d.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0
}

async fn run() -> Result<RecoveryBench> {
    let (gate, gate_sim) = engine(11)?;
    gate.init().await?;
    gate.start_gate().await?;
    let (pay, pay_sim) = engine(12)?;
    pay.init().await?;
    let (mut g, mut p, mut by) = (vec![], vec![], vec![]);
    for &s in &DOWN_S {
        let down = Duration::from_secs(s);
        let gd = gate_round(&gate, &gate_sim, down).await?;
        let pd = pay_round(&pay, &pay_sim, down).await?;
        by.push((s, gd.as_secs_f64() * 1000.0, pd.as_secs_f64() * 1000.0));
        g.push(gd);
        p.push(pd);
        // Let both settle before the next restart.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let (a, b) = (gate_sim.stats(), pay_sim.stats());
    gate.shutdown().await?;
    pay.shutdown().await?;
    Ok(RecoveryBench {
        restarts: DOWN_S.len(),
        gate_p50_ms: ms(&g, 0.5),
        gate_max_ms: ms(&g, 1.0),
        pay_p50_ms: ms(&p, 0.5),
        pay_max_ms: ms(&p, 1.0),
        by_outage: by,
        calls_without_authinfo: a.calls_without_authinfo + b.calls_without_authinfo,
        pending_call_overwrites: a.pending_overwrites + b.pending_overwrites,
        late_answers_after_fail: a.late_answers_after_fail + b.late_answers_after_fail,
        target_ms: 2000.0,
    })
}

/// Runs the suite on a paused-time runtime.
pub fn recovery() -> Result<RecoveryBench> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| Error::Internal(format!("runtime: {e}")))?;
    rt.block_on(run())
}
