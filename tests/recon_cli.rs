//! The `facepay` binary end to end: a pull killed with SIGKILL at random points and rerun
//! stores exactly the same day as an uninterrupted pull (R5/R6: page commits with their
//! cursor, (BizToken, Seq) keys); `--help` everywhere; bad input is a one-line error.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        "SELECT biz_token, seq_key, bill_date, rule_id, seq, req_time_ms, sim, is_need_charge, charge_type, error_code,
            error_message, generation FROM recon_charge_details ORDER BY biz_token, seq_key",
        12,
    );
    let tokens = rows(
        "SELECT bill_date, biz_token, rule_id, charge_count, generation FROM recon_bill_tokens ORDER BY bill_date, biz_token",
        5,
    );
    let st = c
        .query_row("SELECT pages, details, complete FROM recon_bill_pulls", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("pull state");
    (details, tokens, st)
}

/// True when the stored day has committed pages but is not complete: the kill landed mid-pull.
fn killed_mid_pull(db: &Path) -> bool {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let Ok(c) = rusqlite::Connection::open_with_flags(db, flags) else { return false };
    c.query_row("SELECT pages > 0 AND complete = 0 FROM recon_bill_pulls", [], |r| r.get::<_, bool>(0)).unwrap_or(false)
}

#[test]
fn r5_r6_pull_killed_at_random_points_resumes_to_the_identical_day() {
    let m = mock(&["--details", "100000", "--page-details", "1000", "--seed", "7"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let date = day();
    let reference = dir.path().join("reference.db");
    let out = pull_cmd(&m.1, &reference, &date).output().expect("reference pull");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let crashed = dir.path().join("crashed.db");
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let mut kills_mid_pull = 0;
    for _ in 0..40 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(50 + (seed >> 33) % 900);
        let mut child = pull_cmd(&m.1, &crashed, &date).spawn().expect("spawn pull");
        let start = Instant::now();
        let mut finished = None;
        while start.elapsed() < delay {
            if let Some(s) = child.try_wait().expect("wait") {
                finished = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        match finished {
            Some(s) => {
                assert!(s.success(), "a rerun after a crash must succeed");
                break;
            }
            None => {
                child.kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix
                let _ = child.wait();
                if killed_mid_pull(&crashed) {
                    kills_mid_pull += 1;
                }
            }
        }
    }
    // Whatever happened above, one last uninterrupted run finishes the day.
    let out = pull_cmd(&m.1, &crashed, &date).output().expect("final pull");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(kills_mid_pull >= 1, "at least one kill landed in the middle of the pull");
    let (a, b) = (dump(&reference), dump(&crashed));
    assert_eq!(a.0.len(), 100_000);
    assert!(a.2 .2, "the reference day is complete");
    // The final run after completion may be a re-pull (generation 2): compare without it.
    let strip = |v: &[String]| -> Vec<String> {
        v.iter().map(|r| r.rsplit_once('|').map(|(x, _)| x.to_string()).unwrap_or_default()).collect()
    };
    assert_eq!(strip(&a.0), strip(&b.0), "same rows, no duplicates");
    assert_eq!(strip(&a.1), strip(&b.1));
    assert_eq!(b.2 .1, 100_000);
}

#[test]
fn help_on_every_command_and_bad_input_is_a_one_line_error() {
    for args in [
        vec!["recon", "--help"],
        vec!["recon", "pull", "--help"],
        vec!["recon", "sweep", "--help"],
        vec!["recon", "report", "--help"],
        vec!["recon", "issue", "--help"],
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
