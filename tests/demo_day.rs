//! The demo's day, shortened: every number in its summary comes from the engines and the
//! mocks, and a day with an OTA restart and a network outage loses nothing.

use facepay::sim::demo::{run_blocking, DemoOptions};

#[test]
fn t1_t3_t4_a_day_with_restart_and_outage_loses_nothing() {
    // 06:00 + 9 h covers the lunch rush, the 12:10 OTA restart and the 14:00 outage.
    let s = run_blocking(&DemoOptions { terminals: 2, gates: 1, hours: 9, seed: 3 }, &|_, _| {}).expect("demo");
    assert!(s.customers > 100, "{s:?}");
    let paid = s.outcomes.get("paid").copied().unwrap_or(0);
    assert!(paid as f64 > 0.9 * s.customers as f64, "{s:?}");
    assert_eq!(s.payments_queued, paid);
    assert_eq!(s.payments_paid + s.payments_failed + s.payments_pending, s.payments_queued);
    assert_eq!((s.lost, s.charged_twice, s.vendor_order_violations), (0, 0, 0), "{s:?}");
    assert!(s.disconnects >= 3 && s.reconnects == s.disconnects, "every face service restarted and recovered: {s:?}");
    assert!(s.features_stale_alerts >= 3, "the 25-minute outage made features stale: {s:?}");
    assert!(s.gate_recognitions > 1000, "{s:?}");
}

#[test]
fn the_same_seed_gives_the_same_day() {
    let o = DemoOptions { terminals: 1, gates: 0, hours: 2, seed: 9 };
    let a = run_blocking(&o, &|_, _| {}).expect("demo");
    let b = run_blocking(&o, &|_, _| {}).expect("demo");
    assert_eq!(serde_json::to_string(&a).expect("json"), serde_json::to_string(&b).expect("json"));
}

#[test]
fn bad_options_are_refused() {
    for o in [
        DemoOptions { terminals: 0, ..DemoOptions::default() },
        DemoOptions { hours: 0, ..DemoOptions::default() },
        DemoOptions { gates: 99, ..DemoOptions::default() },
    ] {
        let e = run_blocking(&o, &|_, _| {}).expect_err("refused");
        assert_eq!(e.code(), facepay::ErrorCode::InvalidArgument);
    }
}
