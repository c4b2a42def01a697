//! The `facepay` command-line tool (DESIGN.md "Contracts / CLI"). Every command has
//! `--help`; bad input exits non-zero with a one-line error.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod backend;
mod bench;
mod bench_recon;
mod demo;
mod devices;
mod mock;
mod out;
mod recon;
mod recon_daily;

#[derive(Parser)]
#[command(name = "facepay", version, about = "WeChat Pay offline face-payment integration kit")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a canteen day end to end (the main job).
    Demo(demo::Args),
    /// Run a benchmark suite.
    Bench(bench::Args),
    /// The reference merchant backend (SPEC B0–B7): serve, deduct, payments, user, repayment-url.
    Backend(backend::Args),
    /// FaceID billing reconciliation (SPEC R1–R9): issue, sweep, pull, report, daily, migrate.
    Recon {
        #[command(subcommand)]
        cmd: recon::ReconCmd,
    },
    /// Mock servers for manual runs, third-party clients and benchmarks (127.0.0.1 only).
    Mock {
        #[command(subcommand)]
        server: mock::MockServer,
    },
    /// Check a terminal configuration file (JSON) and print it with every default filled in.
    CheckConfig {
        /// The JSON file, as passed to `FacePay.init` on a terminal.
        file: PathBuf,
    },
}

/// The two-worker runtime of the commands that serve or pull over the network.
pub(crate) fn network_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())
}

fn check_config(file: &PathBuf) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut cfg = facepay::terminal::config::TerminalConfig::from_json(&text).map_err(|e| e.to_string())?;
    // S1: the device credential is a secret: shown masked, never echoed.
    if cfg.device_credential.is_some() {
        cfg.device_credential = Some(facepay::Secret::new("***"));
    }
    crate::out::say(format_args!("{}", serde_json::to_string_pretty(&cfg).map_err(|e| e.to_string())?))?;
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Backend(a) => backend::run(a),
        Command::Recon { cmd } => match recon::run(cmd) {
            Ok(0) => Ok(()),
            Ok(code) => std::process::exit(code),
            Err(e) => {
                eprintln!("facepay: error: {e}");
                std::process::exit(cmd.error_exit_code());
            }
        },
        Command::Mock { server } => mock::run(server),
        Command::CheckConfig { file } => check_config(file),
    };
    if let Err(e) = result {
        // Not eprintln!: a closed stderr must not turn an error into a panic either.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("facepay: error: {e}\n").as_bytes());
        std::process::exit(1);
    }
}
