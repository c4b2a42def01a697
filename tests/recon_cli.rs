//! The `facepay` binary end to end: a pull killed with SIGKILL at committed page
//! boundaries (the in-process mock holds the bill at chosen offsets, so the kills land at
//! the same places on every run) and rerun stores exactly the same day as an uninterrupted
//! pull (R5/R6: page commits with their cursor, (BizToken, Seq) keys); `recon daily`'s three
//! exit codes; `--help` everywhere; bad input is a one-line error.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use facepay::sim::faceid::{self, MockConfig};

const BIN: &str = env!("CARGO_BIN_EXE_facepay");

struct Mock(Child, String);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mock(args: &[&str]) -> Mock {
    let mut child = Command::new(BIN)
        .args(["mock", "faceid", "--port", "0", "--rate-limit", "0"])
        .args(args)
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_KEY")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn mock");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read the mock's first line");
    let url = line.split_whitespace().last().expect("a URL").to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    Mock(child, url)
}

fn pull_cmd(url: &str, db: &Path, date: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["recon", "pull", "--quiet", "--date", date, "--endpoint", url, "--db"])
        .arg(db)
        .env("TENCENTCLOUD_SECRET_ID", "AKIDfacepaymock")
        .env("TENCENTCLOUD_SECRET_KEY", "facepay-mock-secret-key")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn day() -> String {
    let now = facepay::clock::unix_ms(std::time::SystemTime::now());
    let d = facepay::recon::calendar::latest_ready_day(now) - chrono::Duration::days(2);
    facepay::recon::calendar::format_date(d)
}

fn dump(db: &Path) -> (Vec<String>, Vec<String>, (i64, i64, bool)) {
    let c = rusqlite::Connection::open(db).expect("open");
    let rows = |sql: &str, n: usize| -> Vec<String> {
        let mut q = c.prepare(sql).expect("prepare");
        let r = q
            .query_map([], |r| {
                let mut v = Vec::new();
                for i in 0..n {
                    v.push(format!("{:?}", r.get_ref(i)?));
                }
                Ok(v.join("|"))
            })
            .expect("query");
        r.collect::<Result<Vec<_>, _>>().expect("rows")
    };
    let details = rows(
        "SELECT t.biz_token, d.seq_key, t.bill_date, t.rule_id, d.seq_kind, d.req_time_ms, d.sim, d.is_need_charge,
            d.charge_type, d.error_code, d.error_message, t.generation
         FROM recon_day_details d JOIN recon_day_tokens t ON t.token_row = d.token_row ORDER BY t.biz_token, d.seq_key",
        12,
    );
    let tokens = rows(
        "SELECT bill_date, biz_token, rule_id, charge_count, generation FROM recon_day_tokens ORDER BY bill_date, biz_token",
        5,
    );
    let st = c
        .query_row("SELECT pages, details, complete FROM recon_day_pulls", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("pull state");
    (details, tokens, st)
}

/// The stored pull state `(complete, next_cursor, pages)`, if any.
fn pull_progress(db: &Path) -> Option<(bool, u64, i64)> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let c = rusqlite::Connection::open_with_flags(db, flags).ok()?;
    c.query_row("SELECT complete, next_cursor, pages FROM recon_day_pulls", [], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
    })
    .ok()
}

/// Waits (without stepping any behaviour: it only reads the store) until the pull has
/// committed every page before `hold` and is waiting for the held one.
fn wait_for_boundary(
    child: &mut Child,
    db: &Path,
    state: &faceid::MockState,
    day: chrono::NaiveDate,
    hold: u64,
) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(child.try_wait().expect("wait").is_none(), "the pull ended before the held page");
        if let Some((false, cursor, pages)) = pull_progress(db) {
            if pages > 0 && state.cursor_offset(day, None, cursor).is_some_and(|o| o >= hold) {
                return pages;
            }
        }
        assert!(Instant::now() < deadline, "the pull never reached the held page");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn r5_r6_pull_killed_at_committed_page_boundaries_resumes_to_the_identical_day() {
    // The mock runs in this process so the test can hold the bill at a detail offset: the
    // pull commits every page before it and waits, and the kill lands exactly there.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let cfg = MockConfig {
        seed: 7,
        details_per_day: 100_000,
        page_details: 1_000,
        bill_rate_limit: 0,
        api_rate_limit: 0,
        ..MockConfig::default()
    };
    let m = rt.block_on(faceid::start(cfg, 0)).expect("mock");
    let url = m.endpoint();
    let dir = tempfile::tempdir().expect("tempdir");
    let date = day();
    let d = facepay::recon::calendar::parse_date(&date).expect("date");
    let reference = dir.path().join("reference.db");
    let out = pull_cmd(&url, &reference, &date).output().expect("reference pull");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let crashed = dir.path().join("crashed.db");
    let mut last_pages = 0;
    for hold in [1_500, 7_000, 23_000, 41_000, 64_000, 88_000, 99_000] {
        m.state.hold_bill_at(Some(hold));
        let mut child = pull_cmd(&url, &crashed, &date).spawn().expect("spawn pull");
        let pages = wait_for_boundary(&mut child, &crashed, &m.state, d, hold);
        child.kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix
        let _ = child.wait();
        let (complete, cursor, after) = pull_progress(&crashed).expect("state");
        assert!(!complete && after == pages, "killed at the boundary: nothing after it was committed");
        assert!(m.state.cursor_offset(d, None, cursor).is_some_and(|o| o >= hold));
        assert!(pages > last_pages, "each run resumed and went further");
        last_pages = pages;
    }
    m.state.hold_bill_at(None);
    let out = pull_cmd(&url, &crashed, &date).output().expect("final pull");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, b) = (dump(&reference), dump(&crashed));
    assert_eq!(a.0.len(), 100_000);
    assert!(a.2 .2 && b.2 .2, "both days are complete");
    assert_eq!(a, b, "same rows, same generation, no duplicates");
    assert_eq!(b.2 .1, 100_000);
}

fn daily_cmd(url: &str, db: &Path, reports: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["recon", "daily", "--endpoint", url, "--db"])
        .arg(db)
        .arg("--report-dir")
        .arg(reports)
        .env("TENCENTCLOUD_SECRET_ID", "AKIDfacepaymock")
        .env("TENCENTCLOUD_SECRET_KEY", "facepay-mock-secret-key")
        .env_remove("TENCENTCLOUD_TOKEN");
    c
}

#[test]
fn r5_r6_recon_daily_exits_0_when_the_day_reconciles_1_when_not_2_on_an_operational_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let date = day();
    // 0: a clean day; both days' reports are written.
    let clean = mock(&["--details", "3000", "--page-details", "500"]);
    let (db, reports) = (dir.path().join("clean.db"), dir.path().join("reports"));
    let out = daily_cmd(&clean.1, &db, &reports).args(["--date", &date]).output().expect("daily");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("{date}: reconciled")), "{stdout}");
    let json = reports.join(format!("facepay-recon-AKIDfacepaymock-all-{date}.json"));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json report")).expect("json");
    assert_eq!(r["totals"]["details"], 3000);
    assert_eq!(r["charged_codes_product"], "plus");
    assert!(reports.join(format!("facepay-recon-AKIDfacepaymock-all-{date}.html")).exists());
    let before = facepay::recon::calendar::parse_date(&date).expect("d").pred_opt().expect("d-1");
    let before = facepay::recon::calendar::format_date(before);
    assert!(reports.join(format!("facepay-recon-AKIDfacepaymock-all-{before}.json")).exists(), "D-1 re-pulled");
    // Run again: the re-pulls find no late data and the day still reconciles.
    let out = daily_cmd(&clean.1, &db, &reports).args(["--date", &date]).output().expect("daily again");
    assert_eq!(out.status.code(), Some(0));

    // 1: R6 anomalies; one line per problem.
    let bad = mock(&["--details", "20000", "--anomalies"]);
    let out = daily_cmd(&bad.1, &dir.path().join("bad.db"), &reports).args(["--date", &date]).output().expect("daily");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let problems: Vec<&str> = stdout.lines().filter(|l| l.starts_with("PROBLEM ")).collect();
    assert!(!problems.is_empty(), "{stdout}");
    assert!(problems.iter().all(|l| l.contains("r6_three_way token=")), "{problems:?}");
    assert!(stdout.contains("NOT reconciled"));

    // 2: before 06:00 Beijing time (no --date): refused before any network call.
    let five_am =
        facepay::recon::calendar::day_start_ms(facepay::recon::calendar::parse_date(&date).expect("d")) + 5 * 3_600_000;
    let out = daily_cmd(&clean.1, &db, &reports).args(["--now-ms", &five_am.to_string()]).output().expect("daily");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("before 06:00 Beijing"), "{err}");
    // 2: half the credentials; a server that is gone; an account with path characters.
    let out = daily_cmd(&clean.1, &db, &reports)
        .args(["--date", &date])
        .env_remove("TENCENTCLOUD_SECRET_KEY")
        .output()
        .expect("daily");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TENCENTCLOUD_SECRET_KEY is not"));
    let out = daily_cmd("http://127.0.0.1:9", &dir.path().join("gone.db"), &reports)
        .args(["--date", &date])
        .output()
        .expect("daily");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let out = daily_cmd(&clean.1, &db, &reports).args(["--date", &date, "--account", "../x"]).output().expect("daily");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("path characters"));
    let out = daily_cmd(&clean.1, &db, &reports)
        .args(["--date", &date])
        .env("TENCENTCLOUD_TOKEN", "session")
        .output()
        .expect("daily");
    assert_eq!(out.status.code(), Some(2), "temporary credentials must name the account");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--account"));
}

#[test]
fn help_on_every_command_and_bad_input_is_a_one_line_error() {
    for args in [
        vec!["recon", "--help"],
        vec!["recon", "pull", "--help"],
        vec!["recon", "sweep", "--help"],
        vec!["recon", "report", "--help"],
        vec!["recon", "issue", "--help"],
        vec!["recon", "daily", "--help"],
        vec!["recon", "migrate", "--help"],
        vec!["mock", "faceid", "--help"],
        vec!["bench", "recon", "--help"],
    ] {
        let out = Command::new(BIN).args(&args).output().expect("run");
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("--"), "{args:?}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("x.db");
    for (args, needle) in [
        (vec!["recon", "pull", "--date", "2026-7-1"], "YYYY-MM-DD"),
        (vec!["recon", "pull", "--date", "2999-01-01"], "06:00 Beijing"),
        (vec!["recon", "pull", "--date", "2001-01-01"], "365 days"),
        (vec!["recon", "report", "--date", "2026-07-01", "--charged-codes", "0;1"], "charged-codes"),
        (vec!["recon", "report", "--date", "2026-07-01", "--account", "a/b"], "path characters"),
    ] {
        let out = Command::new(BIN).args(&args).arg("--db").arg(&db).output().expect("run");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("facepay: error: ") && err.trim_end().lines().count() == 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
    // A report of a day never pulled is refused, not an empty success.
    let m = mock(&["--details", "10"]);
    let out = pull_cmd(&m.1, &db, &day()).output().expect("pull");
    assert!(out.status.success());
    let out =
        Command::new(BIN).args(["recon", "report", "--date", "2026-01-01", "--db"]).arg(&db).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no bill pulled"));
}
