//! The deterministic daily-bill generator of the mock FaceID server (SPEC R5–R8 test data).
//! A day of `n` details is addressed by detail offset, so any page can be produced from its
//! offset alone: token sizes, ids, outcomes and `ReqTime`s are keyed hashes of (seed, day,
//! offset). It produces what reconciliation must survive: null details (R8), charged and
//! uncharged `ErrorCode`s (R6), tokens whose comparisons cross midnight and so appear on two
//! days (R7), optional R6 anomalies, and a "revision" that adds, changes and removes rows as
//! late data does. Cursors are opaque: a keyed, invertible scramble of the offset.

use crate::recon::calendar::{day_start_ms, DAY_MS};
use crate::recon::models::{ChargeDetail, WeChatBillDetail};
use chrono::{Datelike, NaiveDate};

/// splitmix64 finaliser.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

pub fn h(parts: &[u64]) -> u64 {
    parts.iter().fold(0x51_7CC1_B727_220A, |acc, p| mix(acc ^ p))
}

/// A token-like id (UUID shape) from a hash.
pub fn token_id(x: u64) -> String {
    let y = mix(x);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        x >> 32,
        (x >> 16) & 0xffff,
        x & 0xffff,
        y >> 48,
        y & 0xffff_ffff_ffff
    )
}

const MASK: u64 = (1 << 53) - 1;
const A: u64 = 0x1_5DEE_CE66_D2B5; // odd: invertible modulo 2^53

fn inverse() -> u64 {
    let mut inv: u64 = A;
    for _ in 0..6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(A.wrapping_mul(inv)));
    }
    inv & MASK
}

/// Opaque cursors: `((offset + 1) * A mod 2^53) XOR key`. The client never computes them.
#[derive(Debug, Clone, Copy)]
pub struct CursorCodec {
    key: u64,
}

impl CursorCodec {
    pub fn new(seed: u64, day: NaiveDate, rule: &str) -> Self {
        let rule_h = rule.bytes().fold(0u64, |a, b| mix(a ^ u64::from(b)));
        CursorCodec { key: h(&[seed, 0xC0, day.num_days_from_ce() as u64, rule_h]) & MASK }
    }
    pub fn encode(&self, offset: u64) -> u64 {
        ((offset + 1).wrapping_mul(A) & MASK) ^ self.key
    }
    /// `None` for a value no `encode` produced within `limit`.
    pub fn decode(&self, cursor: u64, limit: u64) -> Option<u64> {
        if cursor > MASK {
            return None;
        }
        let o1 = ((cursor ^ self.key).wrapping_mul(inverse())) & MASK;
        (o1 >= 1 && o1 - 1 <= limit).then(|| o1 - 1)
    }
}

/// Relative traffic per Beijing hour (a canteen day: breakfast, lunch, dinner).
const HOUR_WEIGHTS: [u64; 24] = [1, 1, 1, 1, 1, 2, 6, 14, 10, 4, 5, 16, 18, 8, 4, 4, 5, 14, 12, 6, 4, 3, 2, 1];

/// Maps a fraction of the day's traffic to a time of day (ms since 00:00), following the weights.
fn warp(num: u64, den: u64) -> i64 {
    let total: u64 = HOUR_WEIGHTS.iter().sum();
    let target = (u128::from(num) * u128::from(total) * 3_600_000 / u128::from(den.max(1))) as u64;
    let mut acc = 0u64;
    for (hour, w) in HOUR_WEIGHTS.iter().enumerate() {
        let span = w * 3_600_000;
        if target < acc + span {
            return (hour as i64) * 3_600_000 + ((target - acc) / w) as i64;
        }
        acc += span;
    }
    DAY_MS - 1
}

/// Generator settings for one mock.
#[derive(Debug, Clone)]
pub struct BillGen {
    pub seed: u64,
    pub rules: Vec<String>,
    /// Details per generated day.
    pub details_per_day: u64,
    /// Inject R6 three-way mismatches (about 0.2 % of tokens).
    pub anomalies: bool,
}

const CHARGED: [(&str, &str); 4] =
    [("0", "成功"), ("1002", "疑似非真人录制"), ("2006", "姓名和身份证号不一致"), ("2016", "比对相似度未满足要求")];
const FREE: [(&str, &str); 8] = [
    ("1001", "调用活体引擎失败"),
    ("1003", "用户未完成活体"),
    ("1004", "活体检测超时"),
    ("2001", "调用比对引擎失败"),
    ("2004", "传入的图片无法检测到人脸"),
    ("2015", "比对失败"),
    ("201", "微信实名认证失败"),
    ("5", "系统错误"),
];

/// One generated token on one day.
pub struct GenToken {
    pub offset: u64,
    /// Details of this token on the day (its size in offsets).
    pub span: u64,
    pub detail: WeChatBillDetail,
    /// Removed by the current revision (late data): not served, but still occupies offsets.
    pub removed: bool,
}

impl BillGen {
    fn rule_of(&self, id_hash: u64) -> String {
        self.rules[(mix(id_hash ^ 0x5EED) % self.rules.len() as u64) as usize].clone()
    }

    /// The id hash of the token that crosses from the day before `day` into `day`.
    fn cross_hash(&self, day: NaiveDate) -> u64 {
        h(&[self.seed, 0xC2055, day.num_days_from_ce() as u64])
    }

    /// The token that starts at detail `offset` of `day`.
    pub fn token_at(&self, day: NaiveDate, offset: u64, revision: u32) -> GenToken {
        let n = self.details_per_day;
        let dn = day.num_days_from_ce() as u64;
        let mut span = 1 + h(&[self.seed, dn, offset, 1]) % 3;
        span = span.min(n - offset);
        let last = offset + span == n;
        let id_hash = if offset == 0 {
            self.cross_hash(day)
        } else if last {
            self.cross_hash(day.succ_opt().expect("a next day exists"))
        } else {
            h(&[self.seed, dn, offset, 2])
        };
        let start = day_start_ms(day);
        let mut details = Vec::with_capacity(span as usize + 1);
        for j in 0..span {
            let o = offset + j;
            let req = if offset == 0 {
                start + 1_000 * (j as i64 + 1)
            } else if last {
                start + DAY_MS - 1_000 * (span - j) as i64
            } else {
                start + warp(o, n)
            };
            details.push(self.detail(h(&[self.seed, dn, o, 3]), req));
        }
        let mut removed = false;
        if revision > 0 {
            let r = h(&[self.seed, dn, offset, 11, u64::from(revision)]) % 400;
            match r {
                0 => removed = true,
                1 => {
                    let req = start + warp(offset, n) + 7;
                    let mut d = self.detail(h(&[self.seed, dn, offset, 12]) & !0xff, req);
                    d.is_need_charge = Some(true);
                    d.error_code = Some("0".into());
                    d.error_message = Some(CHARGED[0].1.into());
                    details.push(d);
                }
                2 => {
                    if let Some(d) = details.iter_mut().find(|d| d.is_need_charge == Some(false)) {
                        d.is_need_charge = Some(true);
                        d.error_code = Some("2016".into());
                        d.error_message = Some(CHARGED[3].1.into());
                    }
                }
                _ => {}
            }
        }
        let mut charge_count = details.iter().filter(|d| d.is_need_charge == Some(true)).count() as u64;
        if self.anomalies {
            match h(&[self.seed, dn, offset, 9]) % 500 {
                0 => charge_count += 1,
                1 => {
                    if let Some(d) = details.iter_mut().find(|d| d.is_need_charge == Some(true)) {
                        d.is_need_charge = Some(false); // flag disagrees with its charged code
                    }
                }
                _ => {}
            }
        }
        GenToken {
            offset,
            span,
            removed,
            detail: WeChatBillDetail {
                biz_token: Some(token_id(id_hash)),
                charge_count: Some(charge_count),
                charge_details: Some(details),
                rule_id: Some(self.rule_of(id_hash)),
            },
        }
    }

    /// One generated `ChargeDetail`; about 7 % have no comparison and are all null (R8).
    pub fn detail(&self, x: u64, req_time_ms: i64) -> ChargeDetail {
        let r = x % 100;
        if r < 7 {
            return ChargeDetail::default();
        }
        let (charged, (code, msg)) = match r {
            7..=61 => (true, CHARGED[0]),
            62..=66 => (true, CHARGED[1]),
            67..=69 => (true, CHARGED[2]),
            70..=74 => (true, CHARGED[3]),
            _ => (false, FREE[(mix(x) % FREE.len() as u64) as usize]),
        };
        let sim = 40.0 + (mix(x ^ 1) % 6000) as f64 / 100.0;
        ChargeDetail {
            req_time: Some(req_time_ms.to_string()),
            seq: Some(token_id(mix(x ^ 2))),
            id_card: Some(format!("1101************{:02}", x % 97)),
            name: Some("*某".into()),
            sim: Some(format!("{sim:.2}")),
            is_need_charge: Some(charged),
            charge_type: Some("核身".into()),
            error_code: Some(code.into()),
            error_message: Some(msg.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        crate::recon::calendar::parse_date(s).expect("date")
    }

    #[test]
    fn cursors_round_trip_and_are_not_offsets() {
        let c = CursorCodec::new(7, day("2026-07-01"), "");
        for o in [0u64, 1, 2, 999, 1_000_000] {
            let e = c.encode(o);
            assert_ne!(e, o);
            assert_eq!(c.decode(e, 1_000_000), Some(o));
        }
        assert_eq!(c.decode(c.encode(10), 5), None);
        assert_ne!(CursorCodec::new(8, day("2026-07-01"), "").encode(1), c.encode(1));
    }

    #[test]
    fn r7_crossing_token_appears_on_both_days_with_reqtimes_on_each() {
        let g = BillGen { seed: 1, rules: vec!["1".into()], details_per_day: 100, anomalies: false };
        let (d1, d2) = (day("2026-07-01"), day("2026-07-02"));
        let mut o = 0;
        let mut last = None;
        while o < 100 {
            let t = g.token_at(d1, o, 0);
            o += t.span;
            last = Some(t);
        }
        let last = last.expect("a token");
        let first = g.token_at(d2, 0, 0);
        assert_eq!(last.detail.biz_token, first.detail.biz_token);
        let end = day_start_ms(d2);
        for d in last.detail.charge_details.iter().flatten().filter_map(|d| d.req_time.as_deref()) {
            assert!(d.parse::<i64>().expect("ms") < end);
        }
        for d in first.detail.charge_details.iter().flatten().filter_map(|d| d.req_time.as_deref()) {
            assert!(d.parse::<i64>().expect("ms") >= end);
        }
    }

    #[test]
    fn generation_is_deterministic_and_warp_stays_in_the_day() {
        let g = BillGen { seed: 42, rules: vec!["1".into(), "2".into()], details_per_day: 1000, anomalies: true };
        let a = g.token_at(day("2026-07-01"), 500, 0);
        let b = g.token_at(day("2026-07-01"), 500, 0);
        assert_eq!(a.detail, b.detail);
        assert!(warp(999, 1000) < DAY_MS && warp(0, 1000) == 0);
    }
}
