//! `facepay recon daily`: the vendor guide's method 2 as one cron-ready job (SPEC R5–R9).
//! After 06:00 Beijing time it sweeps the account's open tokens (R2), pulls yesterday's bill
//! (or `--date`), pulls the day before again for late data, writes both days' HTML and JSON
//! reports and says whether the day reconciles: exit 0 when every check agrees, 1 with one
//! line per problem when not, 2 on an operational error (before 06:00, credentials, network,
//! store) — nothing is reported as complete that was not pulled completely.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clap::Args;
use facepay::recon::calendar::{self, BILL_READY_HOUR};
use facepay::recon::check::ChargedCodes;
use facepay::recon::scope::Scope;
use facepay::recon::{bill, ledger, report};

use super::recon::{self as cli, Codes, Conn};

#[derive(Args, Clone)]
pub struct DailyArgs {
    /// The day to reconcile, YYYY-MM-DD (Beijing time; default: yesterday).
    #[arg(long)]
    pub date: Option<String>,
    /// Only this RuleId (default: all rules).
    #[arg(long)]
    pub rule_id: Option<String>,
    /// Directory for the HTML and JSON reports (created when missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub report_dir: PathBuf,
    #[command(flatten)]
    pub codes: Codes,
    #[command(flatten)]
    pub conn: Conn,
    /// Act as if the wall clock read this many epoch milliseconds (tests of the 06:00 rule).
    #[arg(long, hide = true)]
    pub now_ms: Option<i64>,
}

/// The day to reconcile at `now_ms`: `--date`, else yesterday; refused before 06:00 Beijing
/// time (R5: the API has no bill of yesterday yet).
pub fn day_to_reconcile(date: Option<&str>, now_ms: i64) -> Result<NaiveDate, String> {
    let day = match date {
        Some(d) => calendar::parse_date(d).map_err(|e| e.to_string())?,
        None => {
            let today = calendar::beijing_day(now_ms);
            if calendar::beijing_hour(now_ms) < BILL_READY_HOUR {
                return Err(format!(
                    "refused: it is before {BILL_READY_HOUR:02}:00 Beijing time ({}); the bill of {} is not ready \
                     (R5): schedule the job after 06:00 Beijing time",
                    calendar::format_date(today),
                    calendar::format_date(today.pred_opt().expect("a day before today exists"))
                ));
            }
            today.pred_opt().expect("a day before today exists")
        }
    };
    calendar::check_pull_window(day, now_ms).map_err(|e| e.to_string())?;
    Ok(day)
}

fn write_reports(dir: &Path, r: &report::DayReport) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // The account and RuleId were checked to hold no path characters.
    let stem = format!("facepay-recon-{}-{}-{}", r.account, r.rule_id.as_deref().unwrap_or("all"), r.date);
    let mut out = Vec::new();
    for (ext, text) in [("html", report::to_html(r)), ("json", report::to_json(r))] {
        let p = dir.join(format!("{stem}.{ext}"));
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        out.push(p);
    }
    Ok(out)
}

/// `Ok(0)` reconciled, `Ok(1)` not; `Err` is an operational error (exit 2).
pub fn run(a: &DailyArgs) -> Result<i32, String> {
    let now = a.now_ms.unwrap_or_else(cli::now_ms);
    let day = day_to_reconcile(a.date.as_deref(), now)?;
    cli::check_rule(a.rule_id.as_deref())?;
    let codes: ChargedCodes = a.codes.resolve()?;
    let mut store = cli::open_store(&a.conn.db)?;
    let (client, account) = cli::make_client(&a.conn)?;
    let scope = Scope::new(account.clone(), a.rule_id.as_deref());
    let before = day.pred_opt().expect("a day before exists");
    let mut problems: Vec<String> = Vec::new();
    let mut reports = Vec::new();
    crate::network_runtime()?.block_on(async {
        let sweep = ledger::sweep(&mut store, &client, &ledger::SweepPolicy::default(), &account, now)
            .await
            .map_err(|e| format!("sweep: {e}"))?;
        for al in sweep.alerts.iter().filter(|al| al.lost) {
            problems.push(format!("{account} sweep: lost_token {}", cli::alert_line(al)));
        }
        for al in sweep.alerts.iter().filter(|al| !al.lost) {
            crate::out::say(format_args!("facepay recon daily: {account} warning: {}", cli::alert_line(al)))?;
        }
        // The day itself, then the day before again (late data), if R5 still allows it.
        let mut days = vec![day];
        if calendar::check_pull_window(before, now).is_ok() {
            days.push(before);
        }
        for d in days {
            let out = bill::pull_day(&mut store, client.clone(), &scope, d, now, &mut |_| {}).await.map_err(|e| {
                format!("pull {}: {e} (the day is incomplete; run again to resume)", calendar::format_date(d))
            })?;
            let r = report::build(&store, &scope, d, &codes).map_err(|e| e.to_string())?;
            let c = &out.changes;
            if out.generation > 1 && c.added + c.changed + c.removed > 0 {
                crate::out::say(format_args!(
                    "facepay recon daily: {account} {}: late data: {} added, {} changed, {} removed",
                    r.date, c.added, c.changed, c.removed
                ))?;
            }
            problems.extend(report::problem_lines(&r));
            reports.push(r);
        }
        Ok::<(), String>(())
    })?;
    for r in &reports {
        let files = write_reports(&a.report_dir, r)?;
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        crate::out::say(format_args!(
            "facepay recon daily: {} {} rule={}: {} details, {} charges, {} mismatches; reports {}",
            r.account,
            r.date,
            r.rule_id.as_deref().unwrap_or("all"),
            r.totals.details,
            r.totals.charge_count_sum,
            r.mismatch_count(),
            names.join(" ")
        ))?;
    }
    if problems.is_empty() {
        crate::out::say(format_args!("facepay recon daily: {account} {}: reconciled", calendar::format_date(day)))?;
        return Ok(0);
    }
    for p in &problems {
        crate::out::say(format_args!("PROBLEM {p}"))?;
    }
    crate::out::say(format_args!(
        "facepay recon daily: {account} {}: NOT reconciled ({} problems)",
        calendar::format_date(day),
        problems.len()
    ))?;
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bj(date: &str, h: i64) -> i64 {
        calendar::day_start_ms(calendar::parse_date(date).expect("date")) + h * 3_600_000
    }

    #[test]
    fn r5_daily_refuses_before_six_beijing_and_takes_yesterday_after() {
        let e = day_to_reconcile(None, bj("2026-07-02", 5)).unwrap_err();
        assert!(e.contains("before 06:00 Beijing") && e.contains("2026-07-01"), "{e}");
        assert_eq!(day_to_reconcile(None, bj("2026-07-02", 6)), Ok(calendar::parse_date("2026-07-01").expect("d")));
        assert!(day_to_reconcile(Some("2026-07-02"), bj("2026-07-02", 12)).is_err(), "today is never ready");
        assert!(day_to_reconcile(Some("2026-7-1"), bj("2026-07-02", 12)).is_err());
    }
}
