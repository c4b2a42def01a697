//! Beijing time (UTC+8, fixed, no DST) and the two calendar rules of the daily bill, as
//! pure functions of their inputs: R5 ("may I pull day D at wall time T": after 06:00
//! Beijing time of D+1, at most 365 days back) and R7 (a charge belongs to the Beijing day of
//! its `ReqTime`). Dates on the wire and the CLI are strict `YYYY-MM-DD`.

use chrono::{DateTime, Datelike, NaiveDate, Timelike};

use super::error::{ReconError, ReconResult};

pub const BEIJING_OFFSET_MS: i64 = 8 * 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
/// R5: the bill of day D is available from this Beijing hour of D+1.
pub const BILL_READY_HOUR: u32 = 6;
/// R5: the oldest day that can be pulled.
pub const MAX_DAYS_BACK: i64 = 365;

/// Parses a strict `YYYY-MM-DD` date (zero-padded, a real calendar day).
pub fn parse_date(s: &str) -> ReconResult<NaiveDate> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(ReconError::invalid_arg("date", format!("`{s}` is not a date in the form YYYY-MM-DD")));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| ReconError::invalid_arg("date", format!("`{s}` is not a calendar date")))
}

pub fn format_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// R7: the Beijing calendar day of an epoch-ms instant.
pub fn beijing_day(ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ms.saturating_add(BEIJING_OFFSET_MS))
        .expect("epoch ms within chrono's range (±262,000 years)")
        .date_naive()
}

/// R7: the Beijing hour (0–23) of an epoch-ms instant.
pub fn beijing_hour(ms: i64) -> u32 {
    DateTime::from_timestamp_millis(ms.saturating_add(BEIJING_OFFSET_MS))
        .expect("epoch ms within chrono's range (±262,000 years)")
        .hour()
}

/// Epoch ms of 00:00 Beijing time on `d`.
pub fn day_start_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp_millis() - BEIJING_OFFSET_MS
}

/// The R5 answer to "may I pull the bill of `date` at `now_ms`?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullWindow {
    Open,
    /// The day is not over yet, or it is before 06:00 of the next day: retry at `ready_at_ms`.
    NotYet {
        ready_at_ms: i64,
    },
    /// More than 365 days back: the API keeps no bill that old.
    TooOld {
        oldest: NaiveDate,
    },
}

/// R5, pure: the bill of `date` is ready at 06:00 Beijing time of the next day and stays
/// for 365 days.
pub fn pull_window(date: NaiveDate, now_ms: i64) -> PullWindow {
    let ready_at_ms = day_start_ms(date) + DAY_MS + i64::from(BILL_READY_HOUR) * 3_600_000;
    if now_ms < ready_at_ms {
        return PullWindow::NotYet { ready_at_ms };
    }
    let today = beijing_day(now_ms);
    let oldest = today - chrono::Duration::days(MAX_DAYS_BACK);
    if date < oldest {
        return PullWindow::TooOld { oldest };
    }
    PullWindow::Open
}

/// R5 as an error with a clear message, for the CLI and the puller.
pub fn check_pull_window(date: NaiveDate, now_ms: i64) -> ReconResult<()> {
    match pull_window(date, now_ms) {
        PullWindow::Open => Ok(()),
        PullWindow::NotYet { ready_at_ms } => {
            let wait_min = (ready_at_ms - now_ms + 59_999) / 60_000;
            Err(ReconError::Refused(format!(
                "R5: the bill of {} is available from 06:00 Beijing time on {} (in {}h{:02}m); FaceID rejects earlier pulls",
                format_date(date),
                format_date(date + chrono::Duration::days(1)),
                wait_min / 60,
                wait_min % 60
            )))
        }
        PullWindow::TooOld { oldest } => Err(ReconError::Refused(format!(
            "R5: {} is more than {MAX_DAYS_BACK} days back; the oldest day that can be pulled is {}",
            format_date(date),
            format_date(oldest)
        ))),
    }
}

/// The most recent day whose bill is ready at `now_ms` (yesterday after 06:00, else the day before).
pub fn latest_ready_day(now_ms: i64) -> NaiveDate {
    let today = beijing_day(now_ms);
    let y = today.pred_opt().expect("a day before today exists");
    if pull_window(y, now_ms) == PullWindow::Open {
        y
    } else {
        y.pred_opt().expect("a day before yesterday exists")
    }
}

/// Year, month, day helper for messages and tests.
pub fn ymd(d: NaiveDate) -> (i32, u32, u32) {
    (d.year(), d.month(), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bj(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        day_start_ms(NaiveDate::from_ymd_opt(y, m, d).expect("date"))
            + i64::from(h) * 3_600_000
            + i64::from(min) * 60_000
    }
    fn date(s: &str) -> NaiveDate {
        parse_date(s).expect("date")
    }

    #[test]
    fn r5_previous_day_refused_before_six_beijing_and_open_after() {
        let d = date("2026-07-01");
        // 05:59 Beijing on July 2nd = 21:59 UTC on July 1st.
        let t = bj(2026, 7, 2, 5, 59);
        assert_eq!(pull_window(d, t), PullWindow::NotYet { ready_at_ms: bj(2026, 7, 2, 6, 0) });
        let e = check_pull_window(d, t).unwrap_err().to_string();
        assert!(e.contains("06:00 Beijing time on 2026-07-02") && e.contains("0h01m"), "{e}");
        assert_eq!(pull_window(d, bj(2026, 7, 2, 6, 0)), PullWindow::Open);
        // The day itself is never pullable while it runs.
        assert!(matches!(pull_window(d, bj(2026, 7, 1, 23, 0)), PullWindow::NotYet { .. }));
    }

    #[test]
    fn r5_at_most_365_days_back() {
        let now = bj(2026, 7, 2, 12, 0);
        assert_eq!(pull_window(date("2025-07-02"), now), PullWindow::Open);
        assert_eq!(pull_window(date("2025-07-01"), now), PullWindow::TooOld { oldest: date("2025-07-02") });
        assert!(check_pull_window(date("2025-07-01"), now).unwrap_err().to_string().contains("365 days"));
    }

    #[test]
    fn r5_latest_ready_day_steps_at_six() {
        assert_eq!(latest_ready_day(bj(2026, 7, 2, 5, 0)), date("2026-06-30"));
        assert_eq!(latest_ready_day(bj(2026, 7, 2, 6, 0)), date("2026-07-01"));
    }

    #[test]
    fn r7_req_time_day_is_the_beijing_day() {
        // 2026-07-01 16:30 UTC = 2026-07-02 00:30 Beijing: belongs to July 2nd.
        let ms = bj(2026, 7, 2, 0, 30);
        assert_eq!(beijing_day(ms), date("2026-07-02"));
        assert_eq!(beijing_hour(ms), 0);
        assert_eq!(beijing_day(ms - 31 * 60_000), date("2026-07-01"));
        assert_eq!(beijing_hour(ms - 31 * 60_000), 23);
    }

    #[test]
    fn dates_must_be_strict() {
        for bad in ["2026-7-01", "2026/07/01", "2026-02-30", "20260701", "", "2026-07-01 "] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        assert_eq!(ymd(date("2026-07-01")), (2026, 7, 1));
    }
}
