//! `facepay backend serve|deduct|payments|user|repayment-url` (the reference merchant
//! backend, SPEC B0–B7: operator verbs list unresolved payments (B5.1), show or terminate
//! a user's contract (B7) and fetch a K12 repayment page (B5.2)) and `facepay mock
//! wechatpay` (the mock WeChat Pay server). Errors are one line and never carry key
//! material or an auth code.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use facepay::clock::ScaledClock;
use facepay::merchant::config::BackendConfig;
use facepay::merchant::engine::Engine;
use facepay::sim::wechatpay::{self, KeyMode};
use facepay::sim::wechatpay_fixture;
use facepay::store::StorePath;
use facepay::wire::{PaymentRequest, PaymentState};
use facepay::Secret;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Serve the terminal ↔ backend protocol (docs/merchant-protocol.md).
    Serve {
        /// The backend config (JSON, docs/merchant-backend.md).
        #[arg(long)]
        config: PathBuf,
    },
    /// Run one deduction to its end under the B5 rules; one JSON line per attempt.
    Deduct {
        #[arg(long)]
        config: PathBuf,
        /// The face credential (`face_token`); never printed.
        #[arg(long)]
        auth_code: String,
        /// Amount in fen.
        #[arg(long)]
        amount: u64,
        /// The first order number (default: generated).
        #[arg(long)]
        out_trade_no: Option<String>,
    },
    /// Enrolled terminals (SPEC S1): add (prints the credential once), list, revoke.
    Devices {
        #[arg(long)]
        config: PathBuf,
        #[command(subcommand)]
        cmd: crate::devices::DevicesCmd,
    },
    /// List payments (newest first), or those still open after an hour (B5.1).
    Payments {
        #[arg(long)]
        config: PathBuf,
        /// Only payments unresolved for more than an hour: the operator's alert list.
        #[arg(long)]
        unresolved: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// A user's contract (B7): show it (user query) or terminate it.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// The page where a K12 user repays a debt (B5.2).
    RepaymentUrl {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        organization_id: String,
        #[arg(long)]
        out_user_id: String,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum UserCmd {
    /// The user query: contract state, face image, contract id; recorded in the registry.
    Show {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        organization_id: String,
        #[arg(long)]
        out_user_id: String,
    },
    /// Terminate the user's contract (WeChat Pay's user id from `user show`).
    Terminate {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        organization_id: String,
        #[arg(long)]
        user_id: String,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum MockServer {
    /// The mock WeChat Pay API v3 on 127.0.0.1 (writes test keys and a backend config).
    Wechatpay {
        #[arg(long, default_value_t = 8700)]
        port: u16,
        /// Folder for the generated TEST keys and `backend.json`.
        #[arg(long, default_value = "target/mock-wechatpay")]
        dir: PathBuf,
        /// Serve platform certificates (`/v3/certificates`) instead of a public-key id.
        #[arg(long)]
        certificates: bool,
        /// A script of outcomes: `{"auth_code": ["NOTPAY", "SYSTEM_ERROR", "SUCCESS"]}`.
        #[arg(long)]
        script: Option<PathBuf>,
        /// The port the reference backend config should listen on.
        #[arg(long, default_value_t = 8080)]
        backend_port: u16,
    },
}

fn rt() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("runtime: {e}"))
}

pub fn run(a: &Args) -> Result<(), String> {
    match &a.cmd {
        Cmd::Serve { config } => rt()?.block_on(facepay::merchant::server::serve(config)).map_err(|e| e.to_string()),
        Cmd::Deduct { config, auth_code, amount, out_trade_no } => {
            rt()?.block_on(deduct(config, auth_code, *amount, out_trade_no.as_deref()))
        }
        Cmd::Devices { config, cmd } => crate::devices::run(config, cmd),
        Cmd::Payments { config, unresolved, limit } => payments(config, *unresolved, *limit),
        Cmd::User { cmd } => rt()?.block_on(user(cmd)),
        Cmd::RepaymentUrl { config, organization_id, out_user_id } => rt()?.block_on(async {
            let cfg = BackendConfig::load(config).map_err(|e| e.to_string())?;
            cfg.check_organization(organization_id).map_err(|e| e.to_string())?;
            let client = cfg.client().map_err(|e| e.to_string())?;
            let a = client.repayment_url(organization_id, out_user_id).await.map_err(|e| e.to_string())?;
            crate::out::say(format_args!("{}", serde_json::to_string(&a).expect("serialize")))?;
            Ok(())
        }),
    }
}

fn open_engine(cfg: &BackendConfig) -> Result<Arc<Engine>, String> {
    let client = Arc::new(cfg.client().map_err(|e| e.to_string())?);
    let clock = Arc::new(ScaledClock { ms_per_s: cfg.retry_delay_ms_per_s });
    Engine::open(&StorePath::File(cfg.db_path.clone()), client, clock, cfg.deduction_params())
        .map_err(|e| e.to_string())
}

/// `backend payments`: one JSON line per payment (ids, states, debt state; no personal data).
fn payments(config: &std::path::Path, unresolved: bool, limit: u32) -> Result<(), String> {
    let cfg = BackendConfig::load(config).map_err(|e| e.to_string())?;
    let engine = open_engine(&cfg)?;
    let list = if unresolved {
        engine.unresolved(facepay::merchant::deduction::UNRESOLVED_ALERT_S).map_err(|e| e.to_string())?
    } else {
        engine.recent(limit).map_err(|e| e.to_string())?
    };
    for p in &list {
        crate::out::say(format_args!("{}", serde_json::to_string(p).expect("serialize")))?;
    }
    if unresolved && !list.is_empty() {
        eprintln!("{} payment(s) unresolved for more than 1 h (B5.1): still being queried", list.len());
    }
    Ok(())
}

/// `backend user show|terminate` (B7).
async fn user(cmd: &UserCmd) -> Result<(), String> {
    use facepay::merchant::contracts::{self, ContractRecord};
    let (config, org) = match cmd {
        UserCmd::Show { config, organization_id, .. } | UserCmd::Terminate { config, organization_id, .. } => {
            (config, organization_id)
        }
    };
    let cfg = BackendConfig::load(config).map_err(|e| e.to_string())?;
    cfg.check_organization(org).map_err(|e| e.to_string())?;
    let engine = open_engine(&cfg)?;
    let client = cfg.client().map_err(|e| e.to_string())?;
    match cmd {
        UserCmd::Show { out_user_id, .. } => {
            let u = client.query_user(org, out_user_id).await.map_err(|e| e.to_string())?;
            if let Some(state) = &u.contract_state {
                let rec = ContractRecord {
                    organization_id: org.clone(),
                    out_user_id: out_user_id.clone(),
                    user_id: u.user_id.clone(),
                    contract_id: u.contract_id.clone(),
                    contract_state: state.clone(),
                    updated_at: facepay::merchant::sign::unix_now(),
                };
                engine.with_store(|s| contracts::record(s.conn(), &rec)).map_err(|e| e.to_string())?;
            }
            crate::out::say(format_args!("{}", serde_json::to_string(&u).expect("serialize")))?;
        }
        UserCmd::Terminate { user_id, .. } => {
            client.terminate_contract(org, user_id).await.map_err(|e| e.to_string())?;
            // Known at once; the FACEPAY.USER_STATE_CHANGE that follows confirms it.
            let now = facepay::merchant::sign::unix_now();
            let known = engine
                .with_store(|s| contracts::mark_terminated(s.conn(), org, user_id, now))
                .map_err(|e| e.to_string())?;
            crate::out::say(format_args!(
                "{}",
                serde_json::json!({"organization_id": org, "user_id": user_id, "terminated": true, "registry_updated": known})
            ))?;
        }
    }
    Ok(())
}

async fn deduct(
    config: &std::path::Path,
    auth_code: &str,
    amount: u64,
    out_trade_no: Option<&str>,
) -> Result<(), String> {
    let cfg = BackendConfig::load(config).map_err(|e| e.to_string())?;
    if amount == 0 {
        return Err("--amount must be a positive number of fen".into());
    }
    // Checked before anything is recorded: a refused number must leave no payment behind
    // for the next `backend serve` to resume and charge.
    if out_trade_no.is_some_and(|n| !facepay::config::is_out_trade_no(n)) {
        return Err("--out-trade-no: 1-32 characters of [A-Za-z0-9_-|*]".into());
    }
    let engine = open_engine(&cfg)?;
    // A broken stdout is reported by the final line below (one error, no panic).
    engine.set_observer(|a| {
        let _ = crate::out::line(a);
    });
    let key = match out_trade_no {
        Some(n) => format!("cli-{n}"),
        None => format!("cli-{}", facepay::merchant::sign::nonce()),
    };
    // One order number never names two payments: refused before anything is recorded
    // (the same command run again is the same payment, and is not refused).
    if let Some(n) = out_trade_no {
        let mine = engine.payment_for_key(&key).map_err(|e| e.to_string())?.unwrap_or_default();
        if engine.order_no_used(n, &mine).map_err(|e| e.to_string())? {
            return Err(format!("--out-trade-no {n} is already used by another payment"));
        }
    }
    let req = PaymentRequest {
        idempotency_key: key,
        face_token: Secret::new(auth_code),
        user_id: String::new(),
        out_user_id: String::new(),
        amount_fen: amount,
        organization_id: cfg.organizations[0].clone(),
        device_id: "cli".into(),
    };
    let (st, _) = engine.record(&req).map_err(|e| e.to_string())?;
    if let Some(n) = out_trade_no {
        engine.set_first_order(&st.payment_id, n).map_err(|e| e.to_string())?;
    }
    let state = engine.drive(&st.payment_id).await.map_err(|e| e.to_string())?;
    let reason = engine.status(&st.payment_id).map_err(|e| e.to_string())?.and_then(|s| s.1);
    crate::out::say(format_args!(
        "{}",
        serde_json::json!({"payment_id": st.payment_id, "state": state, "reason": reason})
    ))?;
    match state {
        PaymentState::Paid => Ok(()),
        _ => Err(format!("payment {} not paid: {}", st.payment_id, reason.unwrap_or_default())),
    }
}

pub fn mock(server: &MockServer) -> Result<(), String> {
    let MockServer::Wechatpay { port, dir, certificates, script, backend_port } = server;
    let mode = if *certificates { KeyMode::Certificates } else { KeyMode::PublicKey };
    rt()?.block_on(async {
        let url = format!("http://127.0.0.1:{port}");
        let mock = wechatpay_fixture::create(dir, mode, &url, &format!("127.0.0.1:{backend_port}"), Duration::from_secs(10))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some(s) = script {
            let text = std::fs::read_to_string(s).map_err(|e| format!("{}: {e}", s.display()))?;
            wechatpay_fixture::load_script(&mock, &text)?;
        }
        let (addr, h) = wechatpay::serve(mock.clone(), *port).await.map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
        crate::out::say(format_args!(
            "{}",
            serde_json::json!({"listening": format!("http://{addr}"), "backend_config": dir.join("backend.json"), "platform_serial": mock.platform_serial})
        ))?;
        h.await.map_err(|e| e.to_string())
    })
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 4000)]
    pub deductions: usize,
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Use the mock named by this backend config (e.g. one shared with peer SDKs)
    /// instead of an in-process mock.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `facepay bench wechatpay`.
pub fn bench(a: &BenchArgs) -> Result<(), String> {
    if a.deductions < 10 || a.concurrency == 0 {
        return Err("--deductions must be at least 10 and --concurrency at least 1".into());
    }
    let r = rt()?.block_on(facepay::sim::wechatpay_bench::run(a.deductions, a.concurrency, a.config.as_deref()))?;
    let v = serde_json::to_value(&r).map_err(|e| e.to_string())?;
    if a.json {
        crate::out::say(format_args!("{v}"))?;
    } else if let Some(m) = v.as_object() {
        for (k, v) in m {
            crate::out::say(format_args!("{k:<32}{v}"))?;
        }
    }
    Ok(())
}
