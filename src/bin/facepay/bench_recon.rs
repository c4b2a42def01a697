//! `facepay bench recon`: pulls, stores and checks one generated
//! bill day (default 1,000,000 ChargeDetails, 2,000 per page) from the mock FaceID server, in
//! process or at `--endpoint`, into a SQLite file, and prints wall time and peak RSS.

use std::time::Instant;

use facepay::recon::{bill, calendar, check::ChargedCodes, client, report};
use facepay::sim::faceid::{self, MockConfig};
use facepay::store::StorePath;

/// Reconciliation: pull + store + check a generated bill day (R5–R8) from the mock FaceID server.
#[derive(clap::Args, Debug)]
pub struct ReconArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// ChargeDetails in the day (in-process mock only).
    #[arg(long, default_value_t = 1_000_000)]
    details: u64,
    /// ChargeDetails per page (in-process mock only).
    #[arg(long, default_value_t = 2_000)]
    page_details: u64,
    /// Pull from this running mock instead of an in-process one (credentials from the environment,
    /// else the mock's test pair).
    #[arg(long)]
    endpoint: Option<String>,
    /// Seed of the generated day.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The day to pull, YYYY-MM-DD (default: two days before the latest day whose bill is ready).
    #[arg(long)]
    date: Option<String>,
}

/// Peak resident set size of this process, in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    facepay::sim::bench::proc_status("VmHWM:").map(|kb| kb as f64 / 1024.0)
}

pub fn run(a: &ReconArgs) -> Result<(), String> {
    let ReconArgs { json, details, page_details, endpoint, seed, date } = a;
    let rt = crate::network_runtime()?;
    rt.block_on(async {
        let cfg = MockConfig {
            seed: *seed,
            details_per_day: *details,
            page_details: *page_details,
            bill_rate_limit: 0,
            ..MockConfig::default()
        };
        let (mock, url) = match endpoint {
            Some(u) => (None, u.clone()),
            None => {
                let m = faceid::start(cfg, 0).await.map_err(|e| e.to_string())?;
                let u = m.endpoint();
                (Some(m), u)
            }
        };
        let creds = client::Credentials::from_env()
            .unwrap_or_else(|_| client::Credentials::new(faceid::DEFAULT_SECRET_ID, faceid::DEFAULT_SECRET_KEY));
        let scope = facepay::recon::scope::Scope::new(
            facepay::recon::scope::Account::parse(&creds.secret_id).map_err(|e| e.to_string())?,
            None,
        );
        let c = client::FaceIdClient::new(&url, creds).map_err(|e| e.to_string())?;
        let dir = tempfile_dir()?;
        let db = dir.join("bench-recon.db");
        let mut store = facepay::recon::open_store(&StorePath::File(db.clone())).map_err(|e| e.to_string())?;
        let now = facepay::clock::unix_ms(std::time::SystemTime::now());
        let day = match date {
            Some(d) => calendar::parse_date(d).map_err(|e| e.to_string())?,
            None => calendar::latest_ready_day(now) - chrono::Duration::days(2),
        };
        calendar::check_pull_window(day, now).map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let out = bill::pull_day(&mut store, c, &scope, day, now, &mut |_| {}).await.map_err(|e| e.to_string())?;
        let pull_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let rep = report::build(&store, &scope, day, &ChargedCodes::default()).map_err(|e| e.to_string())?;
        let check_s = t1.elapsed().as_secs_f64();
        let wall_s = t0.elapsed().as_secs_f64();
        drop(mock);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        let rss = peak_rss_mib().unwrap_or(-1.0);
        let v = serde_json::json!({
            "suite": "recon",
            "date": calendar::format_date(day),
            "details": out.details,
            "tokens": rep.totals.tokens,
            "pages": out.pages,
            "page_details": page_details,
            "in_process_mock": endpoint.is_none(),
            "pull_s": pull_s,
            "check_s": check_s,
            "wall_s": wall_s,
            "details_per_s": out.details as f64 / wall_s,
            "peak_rss_mib": rss,
            "daily_charges": rep.totals.charge_count_sum,
            "r6_mismatches": rep.r6_mismatch_count,
        });
        if *json {
            crate::out::say(format_args!("{v}"))?;
        } else {
            crate::out::say(format_args!(
                "recon: {} details in {} pages: pull {pull_s:.2} s, check {check_s:.2} s, wall {wall_s:.2} s, peak RSS {rss:.0} MiB",
                out.details, out.pages
            ))?;
        }
        Ok(())
    })
}

fn tempfile_dir() -> Result<std::path::PathBuf, String> {
    let d = std::env::temp_dir().join(format!("facepay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    Ok(d)
}
