//! SPEC T7 and T1.1 as properties: random call sequences, with faults (OTA restarts,
//! network loss, failing faces, auxiliary verification), driven against the simulated
//! vendor service under tokio's paused clock. Whatever the app does:
//! - the service never sees a finish before a recognition success, nor a credential before
//!   a finish or after a stop/cancel/failure/timeout (the simulator counts each such call,
//!   as the real service counts a lost user);
//! - every call answers within its deadline (virtual time);
//! - every credential the app was told about reaches the backend (nothing lost).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::scripted::FakeBackend;
use facepay::error::Secret;
use facepay::sim::face_service::{Presence, SimConfig, SimFaceService};
use facepay::terminal::config::TerminalConfig;
use facepay::terminal::engine::{Deps, PayRequest, Terminal};
use facepay::terminal::face_service::ERR_FACE_NOT_RECOGNISED;
use facepay::terminal::verify::FlowId;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Call {
    Start(u64),
    Wait,
    Ext { right: bool },
    Finish,
    Credential,
    Stop,
    Advance(u64),
    Ota(u64),
    Network(bool),
    Present(u8),
    Init,
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        4 => (1u64..5000).prop_map(Call::Start),
        4 => Just(Call::Wait),
        1 => any::<bool>().prop_map(|right| Call::Ext { right }),
        4 => Just(Call::Finish),
        4 => Just(Call::Credential),
        1 => Just(Call::Stop),
        2 => (0u64..60_000).prop_map(Call::Advance),
        1 => (100u64..30_000).prop_map(Call::Ota),
        1 => any::<bool>().prop_map(Call::Network),
        1 => (0u8..5).prop_map(Call::Present),
        1 => Just(Call::Init),
    ]
}

/// The longest any call may take, in virtual time (the engine's own deadlines plus slack).
fn bound(c: &Call, cfg: &TerminalConfig) -> Duration {
    let t = cfg.timing;
    let ms = Duration::from_millis;
    match c {
        Call::Wait | Call::Ext { .. } => ms(t.flow_timeout_ms.max(t.first_callback_timeout_ms) + 1000),
        Call::Init => ms(2 * t.slow_call_timeout_ms + t.backoff_max_ms + 1000),
        Call::Advance(d) => ms(d + 1),
        _ => ms(t.call_timeout_ms + 1000),
    }
}

fn run_case(seed: u64, p_fail: f64, p_ext: f64, calls: Vec<Call>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime");
    rt.block_on(async move {
        let sim = SimFaceService::new(SimConfig {
            seed,
            p_recognition_fail: p_fail,
            p_need_ext_verify: p_ext,
            users: 20,
            ..SimConfig::default()
        });
        let backend = Arc::new(FakeBackend::default());
        let cfg = TerminalConfig::example("prop-1", "http://backend.invalid");
        let deps = Deps { service: sim.clone(), auth: backend.clone(), payments: backend.clone(), clock: sim.clock() };
        let t = Terminal::spawn(cfg.clone(), deps).expect("engine");
        let mut flow = FlowId(0);
        let mut credentials = 0u64;
        for c in calls {
            let limit = bound(&c, &cfg);
            let started = tokio::time::Instant::now();
            let users = sim.users();
            let fut = async {
                match &c {
                    Call::Start(fen) => {
                        if let Ok(f) = t.start_flow(PayRequest { amount_fen: *fen, out_trade_no: None }).await {
                            flow = f;
                        }
                    }
                    Call::Wait => drop(t.wait_recognition(flow).await),
                    Call::Ext { right } => {
                        let phone = match t.wait_recognition(flow).await {
                            Ok(r) if *right => users
                                .iter()
                                .find(|u| u.user_id == r.user.user_id)
                                .map(|u| u.phone.clone())
                                .unwrap_or_default(),
                            _ => Secret::new("0000"),
                        };
                        drop(t.ext_verify(flow, phone).await);
                    }
                    Call::Finish => drop(t.finish(flow).await),
                    Call::Credential => {
                        if t.credential(flow).await.is_ok() {
                            credentials += 1;
                        }
                    }
                    Call::Stop => drop(t.stop(flow).await),
                    Call::Advance(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
                    Call::Ota(ms) => sim.ota_restart(Duration::from_millis(*ms)),
                    Call::Network(up) => sim.set_network(*up),
                    Call::Present(k) => sim.present(match k {
                        0 => Presence::Random,
                        1 => Presence::Nobody,
                        2 => Presence::Failing(ERR_FACE_NOT_RECOGNISED),
                        3 => Presence::ExtVerify(1),
                        _ => Presence::User(2),
                    }),
                    Call::Init => drop(t.init().await),
                }
            };
            let answered = tokio::time::timeout(limit, fut).await.is_ok();
            prop_assert!(answered, "{c:?} did not answer within {limit:?} (took {:?})", started.elapsed());
        }
        // Let the outbox deliver what it holds.
        tokio::time::sleep(Duration::from_secs(120)).await;
        let st = sim.stats();
        prop_assert_eq!(st.finish_without_recognition, 0, "finish before recognition reached the service");
        prop_assert_eq!(st.credential_without_finish, 0, "credential before finish reached the service");
        prop_assert_eq!(st.credential_after_stop, 0, "credential after stop reached the service");
        let mut keys = backend.submissions.lock().clone();
        keys.sort();
        keys.dedup();
        prop_assert_eq!(keys.len() as u64, credentials, "every credential reached the backend once");
        prop_assert!(st.credentials_issued >= credentials);
        t.shutdown().await.expect("shutdown");
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn t7_t1_1_random_call_sequences_keep_the_only_legal_order(
        seed in any::<u64>(),
        p_fail in 0.0f64..0.6,
        p_ext in 0.0f64..0.5,
        calls in prop::collection::vec(call(), 1..14),
    ) {
        run_case(seed, p_fail, p_ext, calls)?;
    }
}
