//! SPEC T1 under fire: 200 pay flows with the face service restarted (OTA) at random
//! points. Every flow ends with an outcome, the engine reconnects by itself, the next flow
//! succeeds; and a continuous gate keeps recognising across restarts with no app action.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::scripted::FakeBackend;
use facepay::sim::face_service::{Presence, SimConfig, SimFaceService};
use facepay::terminal::config::TerminalConfig;
use facepay::terminal::engine::{Deps, PayRequest, Terminal};
use facepay::terminal::health::EngineEvent;
use facepay::terminal::lifecycle::LinkState;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn setup(seed: u64) -> (Terminal, Arc<SimFaceService>, Arc<FakeBackend>) {
    let sim = SimFaceService::new(SimConfig { seed, p_need_ext_verify: 0.0, ..SimConfig::default() });
    let backend = Arc::new(FakeBackend::default());
    let deps = Deps { service: sim.clone(), auth: backend.clone(), payments: backend.clone(), clock: sim.clock() };
    let t = Terminal::spawn(TerminalConfig::example("fault-1", "http://backend.invalid"), deps).expect("engine");
    (t, sim, backend)
}

/// Waits (virtual time) until the engine is ready to pay again.
async fn until_ready(t: &Terminal) -> Duration {
    let start = tokio::time::Instant::now();
    loop {
        let h = t.health();
        if h.state == LinkState::Ready && h.features_ready && h.authinfo_valid_for.is_some() {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(600), "never recovered: {h:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn t1_2_200_flows_with_random_service_restarts_all_end_and_recover() {
    let (t, sim, backend) = setup(11);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    t.init().await.expect("init");
    until_ready(&t).await;
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    let mut paid = 0u64;
    for i in 0..200u64 {
        let ota_after = Duration::from_millis(rng.random_range(0..4000));
        let down = Duration::from_millis(rng.random_range(500..20_000));
        let sim2 = sim.clone();
        let ota = tokio::spawn(async move {
            tokio::time::sleep(ota_after).await;
            sim2.ota_restart(down);
        });
        let res = tokio::time::timeout(
            Duration::from_secs(60),
            t.pay(PayRequest { amount_fen: 100 + i, out_trade_no: None }, &|_| None),
        )
        .await
        .expect("T1.2: a flow never hangs");
        let label = match &res {
            Ok(_) => "paid".to_string(),
            Err(e) => format!("{:?}", e.code()),
        };
        *outcomes.entry(label).or_default() += 1;
        paid += u64::from(res.is_ok());
        ota.await.expect("ota task");
        // The engine notices the restart by itself — in a call, or at its periodic
        // heartbeat if the flow had already ended (T1.1) — and recovers with no app action.
        let noticed = tokio::time::Instant::now();
        while t.health().disconnects < i + 1 {
            assert!(noticed.elapsed() < Duration::from_secs(120), "restart #{i} never noticed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        until_ready(&t).await;
        sim.present(Presence::User(3));
        t.pay(PayRequest { amount_fen: 1, out_trade_no: None }, &|_| None)
            .await
            .unwrap_or_else(|e| panic!("flow after recovery #{i} failed: {e}"));
    }
    let h = t.health();
    assert_eq!(sim.stats().ota_restarts, 200);
    assert_eq!(h.disconnects, 200, "every restart noticed: {h:?}");
    assert_eq!(h.disconnects, h.reconnects, "every disconnect recovered by itself");
    assert!(outcomes.get("ServiceDisconnected").copied().unwrap_or(0) > 0, "{outcomes:?}");
    assert_eq!(sim.stats().order_violations(), 0);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let mut keys = backend.submissions.lock().clone();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len() as u64, paid + 200, "every credential delivered: {outcomes:?}");
}

#[tokio::test(start_paused = true)]
async fn t1_3_gate_resumes_after_restarts_with_no_app_action() {
    let (t, sim, _) = setup(5);
    t.init().await.expect("init");
    until_ready(&t).await;
    let mut ev = t.subscribe();
    t.start_gate().await.expect("gate");
    let mut recognised_after_restart = 0;
    for round in 0..5 {
        sim.ota_restart(Duration::from_secs(10 + round));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        let mut reconnected = false;
        loop {
            let ev = tokio::time::timeout_at(deadline, ev.recv()).await.expect("gate resumed").expect("events");
            match ev {
                EngineEvent::Reconnected { .. } => reconnected = true,
                EngineEvent::GateRecognised { .. } if reconnected => {
                    recognised_after_restart += 1;
                    break;
                }
                _ => {}
            }
        }
    }
    assert_eq!(recognised_after_restart, 5);
    assert!(t.health().gate_running);
}
