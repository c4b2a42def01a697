//! `facepay recon …`: FaceID billing reconciliation from the command line (SPEC R1–R9).
//! `issue` calls DetectAuth and records the token at once (R1), `sweep` refetches open
//! tokens (R2–R4), `pull` pulls a bill day page by page with a progress bar (R5–R8, crash
//! safe: run it again to resume), `report` checks and renders a pulled day, `daily` chains
//! them for cron ([`super::recon_daily`]), `migrate` moves a store of the layout before R9.
//! Every command works for one account (R9): `--account`, else the SecretId's owner named
//! by the SecretId itself (temporary credentials must name it).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use facepay::recon::check::{ChargedCodes, Product};
use facepay::recon::scope::{self, Account, Scope};
use facepay::recon::{bill, calendar, client, ledger, migrate, report};
use facepay::store::{Store, StorePath};

#[derive(Args, Clone)]
pub struct Conn {
    /// FaceID API base URL (a local mock: http://127.0.0.1:PORT). Credentials come from
    /// TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY, plus TENCENTCLOUD_TOKEN for
    /// temporary (STS) credentials.
    #[arg(long, default_value = client::DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// The account the data belongs to (R9; default: the SecretId). Required with temporary
    /// credentials, whose SecretId changes.
    #[arg(long)]
    pub account: Option<String>,
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

#[derive(Clone, Copy, ValueEnum)]
pub enum ProductArg {
    /// FaceID Plus: 0, 1002, 2006, 2016.
    Plus,
    /// 意愿核身: 1002 is free.
    Intention,
    /// E证通: 1002 is free.
    Eid,
}

/// Which ErrorCodes are charged (R6), shared by `report` and `daily`.
#[derive(Args, Clone)]
pub struct Codes {
    /// The FaceID product whose charged-code list to use (default: plus).
    #[arg(long, value_enum, conflicts_with = "charged_codes")]
    pub product: Option<ProductArg>,
    /// ErrorCodes that are charged, comma separated (instead of a --product list).
    #[arg(long)]
    pub charged_codes: Option<String>,
}

impl Codes {
    pub fn resolve(&self) -> Result<ChargedCodes, String> {
        match (&self.charged_codes, self.product) {
            (Some(c), _) => ChargedCodes::parse(c).map_err(|e| e.to_string()),
            (None, p) => Ok(ChargedCodes::preset(match p.unwrap_or(ProductArg::Plus) {
                ProductArg::Plus => Product::Plus,
                ProductArg::Intention => Product::Intention,
                ProductArg::Eid => Product::Eid,
            })),
        }
    }
}

#[derive(Subcommand)]
pub enum ReconCmd {
    /// Call DetectAuth and store the returned BizToken at once (R1). Prints the token and URL.
    /// Never retried after a failure whose outcome is unknown: that is reported instead.
    Issue {
        /// The FaceID RuleId of the business flow.
        #[arg(long)]
        rule_id: String,
        /// Where FaceID sends the user after verification.
        #[arg(long)]
        redirect_url: Option<String>,
        /// The merchant's own value (its business order id), returned by GetDetectInfoEnhanced
        /// as Text.Extra and shown in the report.
        #[arg(long)]
        extra: Option<String>,
        /// Send IdCard and Name (required by some RuleIds), read from FACEPAY_ID_CARD and
        /// FACEPAY_NAME (never from the command line, never logged or stored).
        #[arg(long)]
        identity_from_env: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Refetch GetDetectInfoEnhanced for every token of the account not final yet, from
    /// issue plus 2 h (R2, R3), store every LivenessDetail and the token's charges (R4), and
    /// alert on tokens near 72 h.
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
        /// Only this RuleId (default: all rules). Kept apart from the all-rules pull (R9).
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
        /// The account (default: the SecretId if set, else the store's only account).
        #[arg(long)]
        account: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        codes: Codes,
        /// Write the report to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        db: Db,
    },
    /// The daily job (cron / systemd timer, after 06:00 Beijing time): sweep, pull yesterday
    /// (or --date), pull the day before again for late data, write the HTML and JSON reports.
    /// Exit 0: the day reconciles; 1: it does not (one line per problem); 2: an operational
    /// error (refused before 06:00, network, credentials, store).
    Daily(super::recon_daily::DailyArgs),
    /// Move a store written before accounts and RuleIds were part of every key (R9) under the
    /// named account. Days pulled with several rule filters or left incomplete are dropped
    /// and listed: pull them again.
    Migrate {
        /// The account whose credentials filled the store.
        #[arg(long)]
        account: String,
        #[command(flatten)]
        db: Db,
    },
}

impl ReconCmd {
    /// The exit code of an error: `daily` tells operational errors (2) from a day that does
    /// not reconcile (1); every other command exits 1.
    pub fn error_exit_code(&self) -> i32 {
        if matches!(self, ReconCmd::Daily(_)) {
            2
        } else {
            1
        }
    }
}

pub fn open_store(db: &Db) -> Result<Store, String> {
    facepay::recon::open_store(&StorePath::File(db.db.clone())).map_err(|e| e.to_string())
}

/// The client and the account it acts for (R9).
pub fn make_client(conn: &Conn) -> Result<(client::FaceIdClient, Account), String> {
    let creds = client::Credentials::from_env().map_err(|e| e.to_string())?;
    let account = match &conn.account {
        Some(a) => Account::parse(a).map_err(|e| e.to_string())?,
        None if creds.is_temporary() => {
            return Err("temporary credentials (TENCENTCLOUD_TOKEN) get a new SecretId each time: name the account \
                 with --account (R9)"
                .into())
        }
        None => Account::parse(&creds.secret_id).map_err(|e| format!("the SecretId cannot name the account: {e}"))?,
    };
    Ok((client::FaceIdClient::new(&conn.endpoint, creds).map_err(|e| e.to_string())?, account))
}

/// The account of a command that needs no credentials: `--account`, else a permanent
/// SecretId from the environment, else the store's only account.
fn offline_account(explicit: Option<&str>, store: &Store) -> Result<Account, String> {
    if let Some(a) = explicit {
        return Account::parse(a).map_err(|e| e.to_string());
    }
    if let Ok(c) = client::Credentials::from_env() {
        if !c.is_temporary() {
            return Account::parse(&c.secret_id).map_err(|e| e.to_string());
        }
    }
    let all = scope::accounts(store).map_err(|e| e.to_string())?;
    match all.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err("the store holds no account yet: run `facepay recon pull` first".into()),
        many => Err(format!(
            "the store holds {} accounts ({}): choose one with --account",
            many.len(),
            many.iter().map(Account::as_str).collect::<Vec<_>>().join(", ")
        )),
    }
}

pub fn check_rule(rule: Option<&str>) -> Result<(), String> {
    rule.map(scope::check_rule_id).transpose().map(|_| ()).map_err(|e| e.to_string())
}

pub fn now_ms() -> i64 {
    use facepay::clock::Clock;
    facepay::clock::unix_ms(facepay::clock::SystemClock.wall())
}

/// A sweep alert, one line (the token is an opaque id, not personal data).
pub fn alert_line(a: &ledger::SweepAlert) -> String {
    let what = if a.lost { "results are gone (past 72 h), never final" } else { "not final, window closes soon" };
    format!("token {} issued at {} ms: {what} ({} h left)", a.biz_token, a.issued_at_ms, a.hours_left)
}

/// Runs a command; `Ok(exit code)`.
pub fn run(cmd: &ReconCmd) -> Result<i32, String> {
    match cmd {
        ReconCmd::Issue { rule_id, redirect_url, extra, identity_from_env, conn } => {
            check_rule(Some(rule_id))?;
            let store = open_store(&conn.db)?;
            let (c, account) = make_client(conn)?;
            let (id_card, name) = if *identity_from_env {
                let get = |n: &str| {
                    std::env::var(n)
                        .ok()
                        .filter(|v| !v.trim().is_empty())
                        .map(facepay::recon::models::Personal::new)
                        .ok_or_else(|| format!("--identity-from-env: {n} is not set"))
                };
                (Some(get("FACEPAY_ID_CARD")?), Some(get("FACEPAY_NAME")?))
            } else {
                (None, None)
            };
            crate::network_runtime()?.block_on(async {
                let req = facepay::recon::models::DetectAuthRequest {
                    rule_id: rule_id.clone(),
                    id_card,
                    name,
                    redirect_url: redirect_url.clone(),
                    extra: extra.clone(),
                };
                let r = match c.detect_auth(&req).await {
                    Ok(r) => r,
                    Err(e @ facepay::recon::ReconError::Uncertain { .. }) => {
                        ledger::record_uncertain(&store, &account, rule_id, extra.as_deref(), now_ms(), &e.to_string())
                            .map_err(|e| e.to_string())?;
                        return Err(format!("{e} (recorded; the report of the day counts it)"));
                    }
                    Err(e) => return Err(e.to_string()),
                };
                let tok = r.biz_token.unwrap_or_default();
                let key = ledger::TokenKey { account: &account, rule_id, biz_token: &tok };
                ledger::record_issued(&store, key, extra.as_deref(), now_ms()).map_err(|e| e.to_string())?;
                crate::out::say(format_args!(
                    "{}",
                    serde_json::json!({"BizToken": tok, "Url": r.url, "Account": account})
                ))?;
                Ok(0)
            })
        }
        ReconCmd::Sweep { alert_hours, conn } => {
            let mut store = open_store(&conn.db)?;
            let (c, account) = make_client(conn)?;
            let policy = ledger::SweepPolicy {
                alert_before_ms: i64::from(*alert_hours) * ledger::HOUR_MS,
                ..ledger::SweepPolicy::default()
            };
            let rep = crate::network_runtime()?
                .block_on(ledger::sweep(&mut store, &c, &policy, &account, now_ms()))
                .map_err(|e| e.to_string())?;
            for a in &rep.alerts {
                eprintln!("facepay: alert: {}", alert_line(a));
            }
            crate::out::say(format_args!("{}", serde_json::to_string(&rep).map_err(|e| e.to_string())?))?;
            Ok(0)
        }
        ReconCmd::Pull { date, rule_id, quiet, conn } => {
            let day = calendar::parse_date(date).map_err(|e| e.to_string())?;
            check_rule(rule_id.as_deref())?;
            calendar::check_pull_window(day, now_ms()).map_err(|e| e.to_string())?;
            let mut store = open_store(&conn.db)?;
            let (c, account) = make_client(conn)?;
            let scope = Scope::new(account, rule_id.as_deref());
            let bar = if *quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new_spinner() };
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .expect("a valid progress template"),
            );
            bar.set_message(format!("pulling {date}…"));
            let out =
                crate::network_runtime()?.block_on(bill::pull_day(&mut store, c, &scope, day, now_ms(), &mut |p| {
                    bar.set_message(format!("{date}: {} pages, {} details", p.pages, p.details));
                    bar.tick();
                }));
            bar.finish_and_clear();
            let out = out.map_err(|e| format!("{e} (the day is incomplete; run the same command again to resume)"))?;
            crate::out::say(format_args!("{}", serde_json::to_string(&out).map_err(|e| e.to_string())?))?;
            Ok(0)
        }
        ReconCmd::Report { date, rule_id, account, format, codes, out, db } => {
            let day = calendar::parse_date(date).map_err(|e| e.to_string())?;
            let codes = codes.resolve()?;
            check_rule(rule_id.as_deref())?;
            if let Some(a) = account {
                Account::parse(a).map_err(|e| e.to_string())?;
            }
            if !db.db.exists() {
                return Err(format!("no database at {}: run `facepay recon pull` first", db.db.display()));
            }
            let store = open_store(db)?;
            let account = offline_account(account.as_deref(), &store)?;
            let scope = Scope::new(account, rule_id.as_deref());
            let r = report::build(&store, &scope, day, &codes).map_err(|e| e.to_string())?;
            let text = match format {
                Format::Table => report::to_table(&r),
                Format::Csv => report::to_csv(&r),
                Format::Json => report::to_json(&r),
                Format::Html => report::to_html(&r),
            };
            match out {
                Some(p) => std::fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?,
                None => crate::out::say_raw(format_args!("{text}"))?,
            }
            Ok(0)
        }
        ReconCmd::Daily(a) => super::recon_daily::run(a),
        ReconCmd::Migrate { account, db } => {
            let account = Account::parse(account).map_err(|e| e.to_string())?;
            if !db.db.exists() {
                return Err(format!("no database at {}", db.db.display()));
            }
            let mut store = Store::open(&StorePath::File(db.db.clone())).map_err(|e| e.to_string())?;
            let rep = migrate::migrate(&mut store, &account).map_err(|e| e.to_string())?;
            for (d, why) in &rep.days_dropped {
                eprintln!("facepay: migrate: bill of {d} dropped ({why}): pull it again");
            }
            crate::out::say(format_args!("{}", serde_json::to_string(&rep).map_err(|e| e.to_string())?))?;
            Ok(0)
        }
    }
}
