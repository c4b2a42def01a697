//! Migration of a store of the layout before R9 (built here with [`V1_SCHEMA`]).

use super::*;
use crate::recon::calendar::parse_date;
use crate::recon::check::ChargedCodes;
use crate::recon::ledger::{self, TokenKey};
use crate::recon::report;
use crate::store::StorePath;

/// 2026-07-01 12:00 Beijing.
const NOON: i64 = 1_782_878_400_000;

fn old_store(path: &StorePath) {
    let s = Store::open(path).expect("store");
    s.conn().execute_batch(V1_SCHEMA).expect("v1 schema");
    let c = s.conn();
    c.execute("INSERT INTO recon_tokens (biz_token, rule_id, issued_at_ms, fetched, is_final, charges) VALUES ('led', '1', ?1, 1, 1, 1)", [NOON - 60_000])
        .expect("token");
    c.execute(
        "INSERT INTO recon_liveness (biz_token, seq_key, seq, idx, req_time_ms, is_need_charge, errcode)
         VALUES ('led', 's1', 's1', 0, ?1, 1, 0)",
        [NOON],
    )
    .expect("liveness");
    let pull = |date: &str, rule: &str, complete: bool| {
        c.execute(
            "INSERT INTO recon_bill_pulls (bill_date, rule_key, generation, complete, next_cursor, pages, details,
                started_at_ms) VALUES (?1, ?2, 1, ?3, 0, 1, 1, 0)",
            params![date, rule, complete],
        )
        .expect("pull");
    };
    let detail = |date: &str, tok: &str, seq: &str| {
        c.execute(
            "INSERT INTO recon_bill_tokens (bill_date, biz_token, rule_id, charge_count, generation) VALUES (?1, ?2, '1', 1, 1)",
            params![date, tok],
        )
        .expect("bill token");
        c.execute(
            "INSERT INTO recon_charge_details (biz_token, seq_key, bill_date, rule_id, seq, req_time_ms, is_need_charge,
                error_code, generation) VALUES (?1, ?2, ?3, '1', ?2, ?4, 1, '0', 1)",
            params![tok, seq, date, NOON],
        )
        .expect("detail");
    };
    pull("2026-07-01", "", true);
    detail("2026-07-01", "led", "s1");
    pull("2026-07-02", "", true);
    pull("2026-07-02", "1", true);
    detail("2026-07-02", "mixed", "m1");
    pull("2026-07-03", "", false);
    detail("2026-07-03", "partial", "p1");
}

#[test]
fn r9_an_old_store_is_refused_until_migrated_then_keeps_what_is_sound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = StorePath::File(dir.path().join("old.db"));
    old_store(&path);
    let e = crate::recon::open_store(&path).err().expect("refused").to_string();
    assert!(e.contains("facepay recon migrate") && e.contains("R9"), "{e}");

    let acct = Account::parse("canteen").expect("account");
    let mut raw = Store::open(&path).expect("raw");
    let rep = migrate(&mut raw, &acct).expect("migrate");
    drop(raw);
    assert_eq!((rep.ledger_tokens, rep.ledger_details), (1, 1));
    assert_eq!(rep.days_moved, vec![("2026-07-01".to_string(), String::new())]);
    let dropped: Vec<&str> = rep.days_dropped.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(dropped, vec!["2026-07-02", "2026-07-02", "2026-07-03"], "mixed and partial days are dropped");

    let s = crate::recon::open_store(&path).expect("migrated store opens");
    let key = TokenKey { account: &acct, rule_id: "1", biz_token: "led" };
    assert_eq!(ledger::charges(&s, key).expect("charges"), 1);
    let all = Scope::new(acct.clone(), None);
    let r = report::build(&s, &all, parse_date("2026-07-01").expect("d"), &ChargedCodes::default()).expect("report");
    assert_eq!((r.totals.details, r.totals.need_charge), (1, 1));
    assert_eq!(r.cross.mismatches(), 0, "ledger and bill moved over together: {:?}", r.cross);
    for d in ["2026-07-02", "2026-07-03"] {
        let e = report::build(&s, &all, parse_date(d).expect("d"), &ChargedCodes::default()).unwrap_err();
        assert!(e.to_string().contains("no bill pulled"), "never a mixed or partial day: {e}");
    }
    // Another account sees nothing of the migrated data.
    let other = Scope::new(Account::parse("other").expect("other"), None);
    assert!(report::build(&s, &other, parse_date("2026-07-01").expect("d"), &ChargedCodes::default()).is_err());
    // Migrating again is a no-op.
    drop(s);
    let mut raw = Store::open(&path).expect("raw");
    assert_eq!(
        migrate(&mut raw, &acct).expect("again"),
        MigrationReport { account: "canteen".into(), ..Default::default() }
    );
}
