//! `facepay demo`: the simulated canteen day (see `facepay::sim::demo`), with a progress
//! bar on the virtual clock and a summary table; `--report FILE` also writes it as JSON.

use std::path::PathBuf;
use std::time::Instant;

use facepay::sim::demo::{self, DemoOptions};
use indicatif::{ProgressBar, ProgressStyle};

/// Simulate a canteen day end to end: simulated face services → terminal engines →
/// merchant backend mock, with a lunch rush, an OTA restart of every face service at 12:10
/// and a 25-minute network outage at 14:00. Runs in virtual time: a day takes seconds.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Canteen pay terminals (1-64).
    #[arg(long, default_value_t = 4)]
    pub terminals: usize,
    /// Access gates recognising continuously (0-16).
    #[arg(long, default_value_t = 1)]
    pub gates: usize,
    /// Simulated hours from 06:00 Beijing time (1-48).
    #[arg(long, default_value_t = 14)]
    pub hours: u32,
    /// Seed of every random choice: the same seed gives the same day.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

pub fn run(a: &Args) -> Result<(), String> {
    let opts = DemoOptions { terminals: a.terminals, gates: a.gates, hours: a.hours, seed: a.seed };
    let bar = ProgressBar::new(u64::from(a.hours) * 60);
    bar.set_style(
        ProgressStyle::with_template("{spinner} simulated {msg} [{bar:40}] {percent:>3}%")
            .expect("static template")
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let progress = |m: u64, _total: u64| {
        let minutes = 6 * 60 + m;
        bar.set_message(format!("{:02}:{:02}", (minutes / 60) % 24, minutes % 60));
        bar.set_position(m);
    };
    let summary = demo::run_blocking(&opts, &progress).map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    crate::out::say_raw(format_args!("{}", demo::render(&summary, started.elapsed())))?;
    if let Some(path) = &a.report {
        let json = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        crate::out::say(format_args!("report written to {}", path.display()))?;
    }
    Ok(())
}
