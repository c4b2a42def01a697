//! `facepay bench <suite>`: the benchmark suites. Figures are printed next to their
//! targets; nothing here fails because a machine is slow.

use facepay::sim::bench;

use crate::bench_recon;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub suite: Suite,
}

#[derive(clap::Subcommand, Debug)]
pub enum Suite {
    /// Engine overhead per complete pay flow against a zero-latency simulated face service
    /// (target p50 ≤ 20 µs, p99 ≤ 100 µs).
    Flow {
        /// Measured flows (after a warm-up of a tenth as many).
        #[arg(long, default_value_t = 20_000)]
        flows: usize,
        /// Run the engine on its own thread and block the calling thread on each answer,
        /// as behind JNI; the figure then includes the hand-offs between the two threads.
        #[arg(long)]
        engine_thread: bool,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Signed-and-verified B5 deductions per second against the mock WeChat Pay, and the
    /// RSA-2048 signing cost next to `openssl speed rsa2048` (see bench/peers/).
    Wechatpay(crate::backend::BenchArgs),
    /// What device authentication (S1) costs: signing one terminal request (µs), and the
    /// reference backend's authinfo and payment requests per second, authentication on
    /// next to off (in process).
    Link {
        /// Requests per measured run.
        #[arg(long, default_value_t = 5_000)]
        requests: usize,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Init-to-ready with a cached authinfo (target ≤ 5 ms, no network call) and the idle
    /// engine's threads and RSS over the bare process (targets ≤ 3 threads, ≤ 8 MB).
    Startup {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// After the simulated service restarts (OTA) and answers again: time until a gate
    /// recognises again and until a pay flow can start, zero vendor latency, virtual time
    /// (target ≤ 2 s for both).
    Recovery {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Reconciliation: pull, store and check a generated bill day (target 1,000,000 details
    /// in ≤ 10 s and ≤ 256 MB peak RSS).
    Recon(bench_recon::ReconArgs),
}

fn print<T: serde::Serialize>(v: &T, json: bool) -> Result<(), String> {
    let value = serde_json::to_value(v).map_err(|e| e.to_string())?;
    if json {
        crate::out::say(format_args!("{value}"))?;
    } else if let Some(map) = value.as_object() {
        for (k, v) in map {
            crate::out::say(format_args!("{k:<32}{v}"))?;
        }
    }
    Ok(())
}

pub fn run(a: &Args) -> Result<(), String> {
    match &a.suite {
        Suite::Flow { flows, engine_thread, json } => {
            let run = if *engine_thread { bench::flow_engine_thread } else { bench::flow };
            print(&run(*flows).map_err(|e| e.to_string())?, *json)
        }
        Suite::Wechatpay(a) => crate::backend::bench(a),
        Suite::Link { requests, json } => {
            let rt = crate::network_runtime()?;
            print(&rt.block_on(facepay::sim::link_bench::run(*requests))?, *json)
        }
        Suite::Startup { json } => print(&bench::startup().map_err(|e| e.to_string())?, *json),
        Suite::Recovery { json } => print(&facepay::sim::bench_recovery::recovery().map_err(|e| e.to_string())?, *json),
        Suite::Recon(a) => bench_recon::run(a),
    }
}
