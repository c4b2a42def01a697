//! The report of one bill day: totals (R6 daily charges, R7 per-hour attribution, R8 null
//! details), every R6 three-way mismatch, the cross-method reconciliation against the
//! ledger (R1–R4 vs R5–R8) and the late-data changes of the latest re-pull, rendered as a
//! table, CSV, JSON or a self-contained HTML page (inline SVG chart, no external assets).
//! A day that is not completely pulled is refused, never reported as complete. R9: a
//! report is of one account and rule filter; it names the charged-code list it used and the
//! FaceID product that list belongs to, and lists the ledger's tokens with the merchant's
//! `Extra` so each can be joined to its business order.

use std::fmt::Write as _;

use chrono::NaiveDate;
use rusqlite::params;
use serde::Serialize;

use super::bill::pull_state;
use super::calendar::{day_start_ms, format_date, DAY_MS};
use super::check::{check_day, cross_day, ledger_day, ChargedCodes, CrossReport, DayTotals, LedgerOrder, R6Mismatch};
use super::error::{ReconError, ReconResult};
use super::ledger::uncertain_count;
use super::scope::Scope;
use crate::store::Store;

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub biz_token: String,
    pub seq_key: String,
    pub kind: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayReport {
    pub account: String,
    pub date: String,
    pub rule_id: Option<String>,
    pub complete: bool,
    pub generation: i64,
    pub pages: i64,
    pub charged_codes: Vec<String>,
    /// The FaceID product the charged-code list belongs to (`plus`, `intention`, `eid`, `custom`).
    pub charged_codes_product: super::check::Product,
    pub charged_codes_note: String,
    pub totals: DayTotals,
    /// The first of the R6 mismatching tokens ([`super::check::MAX_LISTED`]); the count is exact.
    pub r6_mismatches: Vec<R6Mismatch>,
    pub r6_mismatch_count: u64,
    pub cross: CrossReport,
    pub ledger_not_final: Vec<String>,
    /// The ledger's tokens of the day with the merchant's `Extra` (its business order).
    pub ledger_orders: Vec<LedgerOrder>,
    /// `DetectAuth` calls of the day whose outcome is unknown (R1): a bill-only token may be one.
    pub uncertain_issues: u64,
    pub late_changes: Vec<Change>,
}

impl DayReport {
    pub fn mismatch_count(&self) -> usize {
        self.r6_mismatch_count as usize + self.cross.mismatches()
    }
}

/// Builds the report of `date` for `scope`; refuses a day whose pull is missing or incomplete.
pub fn build(store: &Store, scope: &Scope, date: NaiveDate, codes: &ChargedCodes) -> ReconResult<DayReport> {
    let ds = format_date(date);
    let rule = scope.rule.as_deref();
    let st = pull_state(store, scope, &ds)?.ok_or_else(|| {
        ReconError::Refused(format!(
            "no bill pulled for {ds} ({}): run `facepay recon pull --date {ds}` first",
            scope.label()
        ))
    })?;
    if !st.complete {
        return Err(ReconError::Refused(format!(
            "the bill of {ds} ({}) is incomplete ({} pages so far); run `facepay recon pull --date {ds}` to finish it",
            scope.label(),
            st.pages
        )));
    }
    let day = check_day(store, &st, date, codes)?;
    let (ledger, ledger_orders) = ledger_day(store, scope, date)?;
    let cross = cross_day(store, &st, &ledger, day.totals.tokens)?;
    let ledger_not_final = ledger_orders.iter().filter(|o| !o.is_final).map(|o| o.biz_token.clone()).collect();
    let start = day_start_ms(date);
    let uncertain_issues = uncertain_count(store, &scope.account, rule, start, start + DAY_MS)?;
    let mut late_changes = Vec::new();
    if st.generation > 1 {
        let mut q = store.conn().prepare(
            "SELECT biz_token, seq_key, kind, before, after FROM recon_day_changes
             WHERE scope_id = ?1 AND bill_date = ?2 AND generation = ?3 ORDER BY biz_token, seq_key LIMIT ?4",
        )?;
        let rows = q.query_map(params![st.scope_id, ds, st.generation, super::check::MAX_LISTED as i64], |r| {
            Ok(Change {
                biz_token: r.get(0)?,
                seq_key: r.get(1)?,
                kind: r.get(2)?,
                before: r.get(3)?,
                after: r.get(4)?,
            })
        })?;
        late_changes = rows.collect::<rusqlite::Result<_>>()?;
    }
    Ok(DayReport {
        account: scope.account.to_string(),
        date: ds,
        rule_id: rule.map(str::to_string),
        complete: st.complete,
        generation: st.generation,
        pages: st.pages,
        charged_codes: codes.list(),
        charged_codes_product: codes.product(),
        charged_codes_note: codes.describe(),
        totals: day.totals,
        r6_mismatches: day.r6_mismatches,
        r6_mismatch_count: day.r6_mismatch_count,
        cross,
        ledger_not_final,
        ledger_orders,
        uncertain_issues,
        late_changes,
    })
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "null".into())
}

/// `(label, value)` lines of the totals, shared by every format.
fn total_lines(r: &DayReport) -> Vec<(&'static str, String)> {
    let t = &r.totals;
    vec![
        ("account (R9)", r.account.clone()),
        ("date (Beijing)", r.date.clone()),
        ("rule", r.rule_id.clone().unwrap_or_else(|| "all".into())),
        ("charged ErrorCodes (R6)", r.charged_codes_note.clone()),
        ("pull generation", r.generation.to_string()),
        ("pages", r.pages.to_string()),
        ("tokens", t.tokens.to_string()),
        ("charge details", t.details.to_string()),
        ("daily charges (sum of ChargeCount, R6)", t.charge_count_sum.to_string()),
        ("details with IsNeedCharge = true", t.need_charge.to_string()),
        ("details with a charged ErrorCode", t.code_charged.to_string()),
        ("null details, free (R8)", t.null_details.to_string()),
        ("details whose ReqTime is another day (R7)", t.other_day_details.to_string()),
        ("R6 mismatching tokens", r.r6_mismatch_count.to_string()),
        ("cross-check mismatches", r.cross.mismatches().to_string()),
        ("late-data changes", r.late_changes.len().to_string()),
        ("DetectAuth calls with an unknown outcome (R1)", r.uncertain_issues.to_string()),
    ]
}

/// All mismatches as rows `(kind, biz_token, seq, detail)`.
fn mismatch_rows(r: &DayReport) -> Vec<(&'static str, String, String, String)> {
    let mut v = Vec::new();
    for m in &r.r6_mismatches {
        let c = &m.counts;
        let d = format!(
            "ChargeCount={} IsNeedCharge=true:{} charged ErrorCode:{} details:{}",
            opt(c.charge_count),
            c.need_charge,
            c.code_charged,
            c.details
        );
        v.push(("r6_three_way", m.biz_token.clone(), String::new(), d));
    }
    let x = &r.cross;
    let order = |t: &str| {
        r.ledger_orders
            .iter()
            .find(|o| o.biz_token == t)
            .and_then(|o| o.extra.as_deref())
            .map(|e| format!(" (Extra {e})"))
            .unwrap_or_default()
    };
    for t in &x.ledger_only_tokens {
        v.push(("token_ledger_only", t.clone(), String::new(), format!("not on the bill{}", order(t))));
    }
    for t in &x.bill_only_tokens {
        v.push(("token_bill_only", t.clone(), String::new(), "not in the ledger (R1)".into()));
    }
    for d in &x.ledger_only_details {
        v.push(("detail_ledger_only", d.biz_token.clone(), d.seq.clone(), String::new()));
    }
    for d in &x.bill_only_details {
        v.push(("detail_bill_only", d.biz_token.clone(), d.seq.clone(), String::new()));
    }
    for d in &x.need_charge_disagreements {
        v.push((
            "is_need_charge",
            d.biz_token.clone(),
            d.seq.clone(),
            format!("ledger={} bill={}", opt(d.ledger), opt(d.bill)),
        ));
    }
    for m in &x.charge_count_mismatches {
        v.push((
            "charge_count",
            m.biz_token.clone(),
            String::new(),
            format!("ledger={} bill={}{}", m.ledger, opt(m.bill), order(&m.biz_token)),
        ));
    }
    v
}

/// One line per problem of the day, for `recon daily` (cron mail, an alert): the listed
/// mismatches, then what the lists left out.
pub fn problem_lines(r: &DayReport) -> Vec<String> {
    let rule = r.rule_id.as_deref().unwrap_or("all");
    let mut v: Vec<String> = mismatch_rows(r)
        .into_iter()
        .map(|(k, t, q, d)| {
            let seq = if q.is_empty() { String::new() } else { format!(" seq={q}") };
            format!("{} {} rule={rule}: {k} token={t}{seq} {d}", r.account, r.date).trim_end().to_string()
        })
        .collect();
    let unlisted = r.r6_mismatch_count.saturating_sub(r.r6_mismatches.len() as u64)
        + r.cross.bill_only_token_count.saturating_sub(r.cross.bill_only_tokens.len() as u64);
    if unlisted > 0 {
        v.push(format!(
            "{} {} rule={rule}: {unlisted} more mismatches not listed (see the JSON report)",
            r.account, r.date
        ));
    }
    for t in &r.ledger_not_final {
        v.push(format!("{} {} rule={rule}: ledger_not_final token={t} (R3: sweep again)", r.account, r.date));
    }
    if r.uncertain_issues > 0 {
        v.push(format!(
            "{} {} rule={rule}: {} DetectAuth calls with an unknown outcome (R1): check the FaceID console",
            r.account, r.date, r.uncertain_issues
        ));
    }
    v
}

/// Late-data changes as rows `(kind, biz_token, seq, what changed)`.
fn change_rows(r: &DayReport) -> Vec<(String, String, String, String)> {
    r.late_changes.iter().map(|c| (c.kind.clone(), c.biz_token.clone(), c.seq_key.clone(), change_summary(c))).collect()
}

/// What changed, compactly: the fields that differ (changed), or the key fields (added, removed).
pub fn change_summary(c: &Change) -> String {
    let parse = |s: &Option<String>| -> serde_json::Map<String, serde_json::Value> {
        s.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default()
    };
    let (before, after) = (parse(&c.before), parse(&c.after));
    let show = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "null".to_string(),
        Some(serde_json::Value::Number(n)) if n.as_i64().is_some_and(|ms| ms > 1_000_000_000_000) => {
            let ms = n.as_i64().expect("checked above");
            chrono::DateTime::from_timestamp_millis(ms + super::calendar::BEIJING_OFFSET_MS)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f (Beijing)").to_string())
                .unwrap_or_else(|| ms.to_string())
        }
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let mut parts = Vec::new();
    for k in ["ReqTime", "IsNeedCharge", "ErrorCode", "ChargeType", "Sim"] {
        let (b, a) = (before.get(k), after.get(k));
        match c.kind.as_str() {
            "changed" if b != a => parts.push(format!("{k}: {} → {}", show(b), show(a))),
            "added" if a.is_some() => parts.push(format!("{k}={}", show(a))),
            "removed" if b.is_some() => parts.push(format!("{k}={}", show(b))),
            _ => {}
        }
    }
    parts.join("; ")
}

pub fn to_json(r: &DayReport) -> String {
    serde_json::to_string_pretty(r).expect("a report serialises: plain data only")
}

pub fn to_table(r: &DayReport) -> String {
    let mut s = String::new();
    for (k, v) in total_lines(r) {
        let _ = writeln!(s, "{k:<44} {v}");
    }
    if let Some(why) = &r.cross.skipped {
        let _ = writeln!(s, "{:<44} skipped: {why}", "cross-check");
    }
    let _ = writeln!(s, "\ncharges per hour (Beijing, by ReqTime, R7):");
    for (h, n) in r.totals.charges_per_hour.iter().enumerate() {
        let _ = writeln!(s, "  {h:02}:00  {n}");
    }
    let rows = mismatch_rows(r);
    if rows.is_empty() {
        let _ = writeln!(s, "\nno mismatch");
    } else {
        let _ = writeln!(s, "\n{:<20} {:<40} {:<40} detail", "kind", "biz_token", "seq");
        for (k, t, q, d) in rows {
            let _ = writeln!(s, "{k:<20} {t:<40} {q:<40} {d}");
        }
    }
    if !r.ledger_orders.is_empty() {
        let _ = writeln!(s, "\nledger tokens of the day and their orders (Extra):");
        for o in &r.ledger_orders {
            let extra = o.extra.as_deref().unwrap_or("-");
            let _ = writeln!(s, "  {:<40} rule {:<8} order {extra:<32} charges {}", o.biz_token, o.rule_id, o.charges);
        }
    }
    let changes = change_rows(r);
    if !changes.is_empty() {
        let _ = writeln!(s, "\nlate data (re-pull generation {}):", r.generation);
        for (k, t, q, d) in changes {
            let _ = writeln!(s, "{k:<20} {t:<40} {q:<40} {d}");
        }
    }
    s
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// CSV: `kind,biz_token,seq,detail`; totals come first as `total,<label>,,<value>`.
pub fn to_csv(r: &DayReport) -> String {
    let mut s = String::from("kind,biz_token,seq,detail\n");
    for (k, v) in total_lines(r) {
        let _ = writeln!(s, "total,{},,{}", csv_field(k), csv_field(&v));
    }
    for (h, n) in r.totals.charges_per_hour.iter().enumerate() {
        let _ = writeln!(s, "hour,{h:02},,{n}");
    }
    for (k, t, q, d) in mismatch_rows(r) {
        let _ = writeln!(s, "{k},{},{},{}", csv_field(&t), csv_field(&q), csv_field(&d));
    }
    for (k, t, q, d) in change_rows(r) {
        let _ = writeln!(s, "late_{k},{},{},{}", csv_field(&t), csv_field(&q), csv_field(&d));
    }
    for o in &r.ledger_orders {
        let d = format!("rule={} charges={} extra={}", o.rule_id, o.charges, o.extra.as_deref().unwrap_or(""));
        let _ = writeln!(s, "ledger_order,{},,{}", csv_field(&o.biz_token), csv_field(&d));
    }
    s
}

fn esc(v: &str) -> String {
    v.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The 24-hour bar chart as inline SVG.
fn chart_svg(per_hour: &[u64; 24]) -> String {
    let (w, h, left, bottom, top) = (960.0, 320.0, 60.0, 40.0, 20.0);
    let max = per_hour.iter().copied().max().unwrap_or(0).max(1) as f64;
    let plot_h = h - bottom - top;
    let bw = (w - left - 10.0) / 24.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="charges per hour">"#
    );
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = top + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{}</text>"##,
            w - 10.0,
            left - 6.0,
            y + 4.0,
            v.round() as u64
        );
    }
    for (i, n) in per_hour.iter().enumerate() {
        let bh = plot_h * (*n as f64) / max;
        let x = left + bw * i as f64;
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#2f7ed8"><title>{i:02}:00 {n}</title></rect><text x="{:.1}" y="{}" font-size="11" text-anchor="middle" fill="#333">{i:02}</text>"##,
            x + 2.0,
            top + plot_h - bh,
            bw - 4.0,
            x + bw / 2.0,
            h - bottom + 16.0
        );
    }
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" font-size="12" text-anchor="middle" fill="#333">hour of ReqTime (Beijing, R7)</text></svg>"##,
        left + (w - left) / 2.0,
        h - 6.0
    );
    s
}

pub fn to_html(r: &DayReport) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>FaceID reconciliation {d}</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;margin:8px 0 24px}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}}th{{background:#f3f3f3}}
td.n{{text-align:right;font-variant-numeric:tabular-nums}}.ok{{color:#1a7f37}}.bad{{color:#c62828}}</style></head><body>
<h1>FaceID billing reconciliation — {d}</h1>"#,
        d = esc(&r.date)
    );
    let n = r.mismatch_count();
    let late = if r.late_changes.is_empty() {
        String::new()
    } else {
        format!(" {} late-data changes since the previous pull.", r.late_changes.len())
    };
    let _ = write!(
        s,
        r#"<p class="{}"><strong>{}{}</strong></p><h2>Totals</h2><table>"#,
        if n == 0 { "ok" } else { "bad" },
        if n == 0 { "Every check agrees.".to_string() } else { format!("{n} mismatches (listed below).") },
        esc(&late)
    );
    for (k, v) in total_lines(r) {
        let _ = write!(s, r#"<tr><th>{}</th><td class="n">{}</td></tr>"#, esc(k), esc(&v));
    }
    if let Some(why) = &r.cross.skipped {
        let _ = write!(s, "<tr><th>cross-check</th><td>skipped: {}</td></tr>", esc(why));
    }
    let _ = write!(s, "</table><h2>Charges per hour</h2>{}", chart_svg(&r.totals.charges_per_hour));
    let rows = mismatch_rows(r);
    let _ = write!(s, "<h2>Mismatches ({})</h2>", rows.len());
    if rows.is_empty() {
        s.push_str(r#"<p class="ok">None.</p>"#);
    } else {
        s.push_str("<table><tr><th>kind</th><th>BizToken</th><th>Seq</th><th>detail</th></tr>");
        for (k, t, q, d) in rows {
            let _ = write!(s, "<tr><td>{k}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&t), esc(&q), esc(&d));
        }
        s.push_str("</table>");
    }
    let changes = change_rows(r);
    if !changes.is_empty() {
        let _ = write!(s, "<h2>Late data ({})</h2>", changes.len());
        s.push_str("<table><tr><th>change</th><th>BizToken</th><th>Seq</th><th>what</th></tr>");
        for (k, t, q, d) in changes {
            let _ = write!(s, "<tr><td>{k}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&t), esc(&q), esc(&d));
        }
        s.push_str("</table>");
    }
    if !r.ledger_orders.is_empty() {
        let _ = write!(
            s,
            "<h2>Ledger tokens and orders ({})</h2><table><tr><th>BizToken</th><th>RuleId</th><th>Extra (order)</th><th>charges</th><th>final</th></tr>",
            r.ledger_orders.len()
        );
        for o in &r.ledger_orders {
            let _ = write!(
                s,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="n">{}</td><td>{}</td></tr>"#,
                esc(&o.biz_token),
                esc(&o.rule_id),
                esc(o.extra.as_deref().unwrap_or("")),
                o.charges,
                if o.is_final { "yes" } else { "no" }
            );
        }
        s.push_str("</table>");
    }
    if !r.ledger_not_final.is_empty() {
        let _ = write!(s, "<h2>Ledger tokens not final yet ({})</h2><ul>", r.ledger_not_final.len());
        for t in &r.ledger_not_final {
            let _ = write!(s, "<li>{}</li>", esc(t));
        }
        s.push_str("</ul>");
    }
    let _ = writeln!(s, "<p>Charged codes: {}</p></body></html>", esc(&r.charged_codes_note));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: &str, before: Option<&str>, after: Option<&str>) -> Change {
        Change {
            biz_token: "t".into(),
            seq_key: "s".into(),
            kind: kind.into(),
            before: before.map(str::to_string),
            after: after.map(str::to_string),
        }
    }

    #[test]
    fn r6_late_data_summary_names_only_what_changed() {
        let c = change(
            "changed",
            Some(r#"{"ReqTime":1782878400000,"IsNeedCharge":false,"ErrorCode":"2001","Sim":"50.00"}"#),
            Some(r#"{"ReqTime":1782878400000,"IsNeedCharge":true,"ErrorCode":"2016","Sim":"50.00"}"#),
        );
        assert_eq!(change_summary(&c), "IsNeedCharge: false → true; ErrorCode: 2001 → 2016");
        let c = change("removed", Some(r#"{"ReqTime":1782878400000,"IsNeedCharge":null,"ErrorCode":null}"#), None);
        assert_eq!(
            change_summary(&c),
            "ReqTime=2026-07-01 12:00:00.000 (Beijing); IsNeedCharge=null; ErrorCode=null",
            "R7: ReqTime shown in Beijing time"
        );
    }

    #[test]
    fn html_escapes_and_chart_has_24_bars() {
        assert_eq!(esc("<a href=\"x\">&</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
        let mut h = [0u64; 24];
        h[12] = 10;
        let svg = chart_svg(&h);
        assert_eq!(svg.matches("<rect").count(), 24);
        assert!(svg.contains("<title>12:00 10</title>"));
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
