//! `facepay recon …`: FaceID billing reconciliation from the command line (SPEC R1–R8).
//! `issue` calls DetectAuth and records the token at once (R1), `sweep` refetches open
//! tokens (R2–R4), `pull` pulls a bill day page by page with a progress bar (R5–R8, crash
//! safe: run it again to resume), `report` checks and renders a pulled day.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use facepay::recon::{bill, calendar, check::ChargedCodes, client, ledger, report};
use facepay::store::{Store, StorePath};

#[derive(Args, Clone)]
pub struct Conn {
    /// FaceID API base URL (a local mock: http://127.0.0.1:PORT). Credentials come from
    /// TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY.
    #[arg(long, default_value = client::DEFAULT_ENDPOINT)]
    pub endpoint: String,
    #[command(flatten)]
    pub db: Db,
}

#[derive(Args, Clone)]
pub struct Db {
    /// SQLite file holding the ledger and the bills (created when missing).
    #[arg(long, value_name = "FILE", default_value = "facepay-recon.db")]
    pub db: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Html,
}

#[derive(Subcommand)]
pub enum ReconCmd {
    /// Call DetectAuth and store the returned BizToken at once (R1). Prints the token and URL.
    Issue {
        /// The FaceID RuleId of the business flow.
        #[arg(long)]
        rule_id: String,
        /// Where FaceID sends the user after verification.
        #[arg(long)]
        redirect_url: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Refetch GetDetectInfoEnhanced for every token not final yet, from issue + 2 h (R2, R3),
    /// store every LivenessDetail and the token's charges (R4), and alert on tokens near 72 h.
    Sweep {
        /// Alert on tokens still not final this many hours before the 72 h window closes.
        #[arg(long, default_value_t = 12)]
        alert_hours: u32,
        #[command(flatten)]
        conn: Conn,
    },
    /// Pull the daily bill of one Beijing day (GetWeChatBillDetails), page by page; each page is
    /// committed with its cursor, so running it again after a crash resumes. Pulling a complete
    /// day again reports late data (added, changed, removed details). Refused before 06:00
    /// Beijing time of the next day and for days more than 365 days back (R5).
    Pull {
        /// The day, YYYY-MM-DD (Beijing time).
        #[arg(long)]
        date: String,
        /// Only this RuleId (default: all rules).
        #[arg(long)]
        rule_id: Option<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Check a pulled day and print the report: totals, the R6 three-way check per token, the
    /// ledger-vs-bill reconciliation per (BizToken, Seq), late-data changes. Refuses a day that
    /// is not completely pulled.
    Report {
        /// The day, YYYY-MM-DD (Beijing time).
        #[arg(long)]
        date: String,
        /// The RuleId the day was pulled with (default: all rules).
        #[arg(long)]
        rule_id: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// ErrorCodes that are charged, comma separated (R6 cross-check).
        #[arg(long, default_value = "0,1002,2006,2016")]
        charged_codes: String,
        /// Write the report to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        db: Db,
    },
}

fn open_store(db: &Db) -> Result<Store, String> {
    facepay::recon::open_store(&StorePath::File(db.db.clone())).map_err(|e| e.to_string())
}

fn make_client(conn: &Conn) -> Result<client::FaceIdClient, String> {
    let creds = client::Credentials::from_env().map_err(|e| e.to_string())?;
    client::FaceIdClient::new(&conn.endpoint, creds).map_err(|e| e.to_string())
}

fn now_ms() -> i64 {
    use facepay::clock::Clock;
    facepay::clock::unix_ms(facepay::clock::SystemClock.wall())
}

pub fn run(cmd: &ReconCmd) -> Result<(), String> {
    match cmd {
        ReconCmd::Issue { rule_id, redirect_url, conn } => {
            let store = open_store(&conn.db)?;
            let c = make_client(conn)?;
            crate::network_runtime()?.block_on(async {
                let req = facepay::recon::models::DetectAuthRequest {
                    rule_id: rule_id.clone(),
                    redirect_url: redirect_url.clone(),
                    extra: None,
                };
                let r = c.detect_auth(&req).await.map_err(|e| e.to_string())?;
                let tok = r.biz_token.unwrap_or_default();
                ledger::record_issued(&store, &tok, rule_id, now_ms()).map_err(|e| e.to_string())?;
                crate::out::say(format_args!("{}", serde_json::json!({"BizToken": tok, "Url": r.url})))?;
                Ok(())
            })
        }
        ReconCmd::Sweep { alert_hours, conn } => {
            let mut store = open_store(&conn.db)?;
            let c = make_client(conn)?;
            let policy = ledger::SweepPolicy {
                alert_before_ms: i64::from(*alert_hours) * ledger::HOUR_MS,
                ..ledger::SweepPolicy::default()
            };
            let rep = crate::network_runtime()?
                .block_on(ledger::sweep(&mut store, &c, &policy, now_ms()))
                .map_err(|e| e.to_string())?;
            for a in &rep.alerts {
                let what =
                    if a.lost { "results are gone (past 72 h), never final" } else { "not final, window closes soon" };
                eprintln!(
                    "facepay: alert: token {} issued at {} ms: {what} ({} h left)",
                    a.biz_token, a.issued_at_ms, a.hours_left
                );
            }
            crate::out::say(format_args!("{}", serde_json::to_string(&rep).map_err(|e| e.to_string())?))?;
            Ok(())
        }
        ReconCmd::Pull { date, rule_id, quiet, conn } => {
            let day = calendar::parse_date(date).map_err(|e| e.to_string())?;
            calendar::check_pull_window(day, now_ms()).map_err(|e| e.to_string())?;
            let mut store = open_store(&conn.db)?;
            let c = make_client(conn)?;
            let bar = if *quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new_spinner() };
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .expect("a valid progress template"),
            );
            bar.set_message(format!("pulling {date}…"));
            let out = crate::network_runtime()?.block_on(bill::pull_day(
                &mut store,
                c,
                day,
                rule_id.clone(),
                now_ms(),
                &mut |p| {
                    bar.set_message(format!("{date}: {} pages, {} details", p.pages, p.details));
                    bar.tick();
                },
            ));
            bar.finish_and_clear();
            let out = out.map_err(|e| format!("{e} (the day is incomplete; run the same command again to resume)"))?;
            crate::out::say(format_args!("{}", serde_json::to_string(&out).map_err(|e| e.to_string())?))?;
            Ok(())
        }
        ReconCmd::Report { date, rule_id, format, charged_codes, out, db } => {
            let day = calendar::parse_date(date).map_err(|e| e.to_string())?;
            let codes = ChargedCodes::parse(charged_codes).map_err(|e| e.to_string())?;
            if !db.db.exists() {
                return Err(format!("no database at {}: run `facepay recon pull` first", db.db.display()));
            }
            let store = open_store(db)?;
            let r = report::build(&store, day, rule_id.as_deref(), &codes).map_err(|e| e.to_string())?;
            let text = match format {
                Format::Table => report::to_table(&r),
                Format::Csv => report::to_csv(&r),
                Format::Json => report::to_json(&r),
                Format::Html => report::to_html(&r),
            };
            match out {
                Some(p) => std::fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display())),
                None => {
                    crate::out::say_raw(format_args!("{text}"))?;
                    Ok(())
                }
            }
        }
    }
}
