//! The B5 deduction policy, pure: a function of the last outcome, the facts of the
//! current order and `now` (Unix seconds) that returns the next action. It encodes the
//! B5 table exactly: SUCCESS/REFUND are paid; NOTPAY/USERPAYING retry the same order
//! number within 24 h; CLOSED/REVOKED/PAYERROR retry under a new order number; at most 5
//! SYSTEM_ERROR retries per order per (Beijing) day; back-off on 429; no retry on
//! PARAM_ERROR / INVALID_REQUEST (the operator is told); an unknown outcome (timeout,
//! dropped connection, unverifiable answer, a trade state we do not know) is followed by
//! an order query, never by a blind retry. B5.1: 502/503 retry the same order later;
//! INVALID_REQUEST after an attempt of the order whose outcome was unknown or retried
//! ("credential already used and charged") is followed by an order query before any
//! final decision; only `ORDER_NOT_EXIST` means "no such order"; unknown outcomes are
//! queried with a back-off that reaches one query per payment per 5 minutes and stays
//! there, never abandoned. [`super::engine`] does the IO and the durable bookkeeping.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::models::TradeState;

/// Same-order retries of NOTPAY/USERPAYING stop 24 h after the order was created.
pub const SAME_ORDER_WINDOW_S: u64 = 24 * 3600;
/// SYSTEM_ERROR retries per order per day (more blocks the user).
pub const MAX_SYSTEM_ERROR_RETRIES: u32 = 5;
/// New order numbers per payment (CLOSED/REVOKED/PAYERROR) before the operator is asked.
pub const MAX_ORDERS: u32 = 5;
/// B5.1: the back-off of order queries for an unknown outcome reaches this and stays.
pub const UNKNOWN_QUERY_CAP_S: u64 = 300;
/// B5.1: a payment unresolved this long after it was recorded is reported.
pub const UNRESOLVED_ALERT_S: u64 = 3600;

/// What one attempt (deduction or order query) ended with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    State(TradeState),
    /// 500 SYSTEM_ERROR.
    SystemError,
    /// 429 RATELIMIT_EXCEEDED.
    RateLimited,
    /// B5.1: 502 / 503 / 504, the service is unavailable: retry the same order later.
    Unavailable,
    /// 400 PARAM_ERROR.
    ParamError,
    /// 400 INVALID_REQUEST.
    InvalidRequest,
    /// The order query found no such order: the deduction never reached WeChat Pay.
    OrderNotExist,
    /// Timeout, dropped connection, unverifiable or unreadable answer, or an attempt
    /// recorded but never answered (a crash).
    Unknown,
    /// Any other error code: not in the B5 table, so a person must look.
    Other(String),
}

impl Outcome {
    /// The stable text stored in the attempts table.
    pub fn as_code(&self) -> String {
        match self {
            Outcome::State(s) => serde_json::to_value(s).expect("enum").as_str().expect("string").to_string(),
            Outcome::SystemError => "SYSTEM_ERROR".into(),
            Outcome::RateLimited => "RATELIMIT_EXCEEDED".into(),
            Outcome::Unavailable => "UNAVAILABLE".into(),
            Outcome::ParamError => "PARAM_ERROR".into(),
            Outcome::InvalidRequest => "INVALID_REQUEST".into(),
            Outcome::OrderNotExist => "ORDER_NOT_EXIST".into(),
            Outcome::Unknown => "UNKNOWN".into(),
            Outcome::Other(c) => format!("OTHER:{c}"),
        }
    }

    pub fn from_code(c: &str) -> Outcome {
        match c {
            "SYSTEM_ERROR" => Outcome::SystemError,
            "RATELIMIT_EXCEEDED" => Outcome::RateLimited,
            "UNAVAILABLE" => Outcome::Unavailable,
            "PARAM_ERROR" => Outcome::ParamError,
            "INVALID_REQUEST" => Outcome::InvalidRequest,
            "ORDER_NOT_EXIST" => Outcome::OrderNotExist,
            "UNKNOWN" => Outcome::Unknown,
            o => match serde_json::from_value::<TradeState>(serde_json::Value::String(o.into())) {
                Ok(TradeState::Unrecognized) | Err(_) => match o.strip_prefix("OTHER:") {
                    Some(c) => Outcome::Other(c.to_string()),
                    None => Outcome::Unknown,
                },
                Ok(s) => Outcome::State(s),
            },
        }
    }

    /// An outcome after which the same order is (or may be) sent again: the next
    /// INVALID_REQUEST of that order may mean "already charged" (B5.1).
    pub fn retried_or_unknown(&self) -> bool {
        matches!(
            self,
            Outcome::Unknown
                | Outcome::SystemError
                | Outcome::RateLimited
                | Outcome::Unavailable
                | Outcome::OrderNotExist
                | Outcome::State(TradeState::Notpay | TradeState::Userpaying | TradeState::Unrecognized)
        )
    }
}

/// What the engine knows about the current order (from the attempts table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderFacts {
    /// When the current order number was first used.
    pub created_at: u64,
    /// SYSTEM_ERROR answers for this order on the Beijing day of `now`, this one included.
    pub system_errors_today: u32,
    /// Consecutive 429s (this one included).
    pub rate_limits: u32,
    /// Consecutive unknown outcomes (this one included).
    pub unknowns: u32,
    /// Consecutive 502 / 503 answers (this one included).
    pub unavailable: u32,
    /// B5.1: an attempt of this order before the last one ended unknown or was retried.
    pub retried: bool,
    /// B5.1: the last attempt is an order query made because the last deduction of this
    /// order answered INVALID_REQUEST after a retried attempt.
    pub after_invalid: bool,
    /// NOTPAY/USERPAYING answers of this order (this one included).
    pub pending: u32,
    /// Order numbers used by the payment so far.
    pub orders: u32,
}

/// Why a payment failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailReason {
    /// PARAM_ERROR / INVALID_REQUEST / an unlisted code: the operator must look.
    Operator(String),
    /// The 6th SYSTEM_ERROR of an order in one day.
    SystemErrorLimit,
    /// NOTPAY/USERPAYING still after 24 h.
    Expired,
    /// Too many new order numbers (CLOSED/REVOKED/PAYERROR again and again).
    TooManyOrders(String),
}

impl FailReason {
    pub fn as_code(&self) -> String {
        match self {
            FailReason::Operator(c) => c.clone(),
            FailReason::SystemErrorLimit => "SYSTEM_ERROR_LIMIT".into(),
            FailReason::Expired => "EXPIRED_24H".into(),
            FailReason::TooManyOrders(c) => format!("TOO_MANY_ORDERS:{c}"),
        }
    }
}

/// The next step of one payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the deduction at `at`, under the current order number or a new one.
    Pay {
        new_order: bool,
        at: u64,
    },
    /// Query the current order at `at` before anything else.
    Query {
        at: u64,
    },
    Paid,
    Failed(FailReason),
}

/// Exponential back-off `base · 2^(n-1)` seconds (`n` 1-based), capped.
fn backoff(n: u32, base: u64, cap: u64) -> u64 {
    crate::clock::backoff(Duration::from_secs(base), Duration::from_secs(cap), n.saturating_sub(1)).as_secs()
}

/// SUCCESS / REFUND: the payment is paid whatever else is known about its order (the B5
/// table; B5.1 after an INVALID_REQUEST too). The engine records the final state with
/// the answer that brings it.
pub fn is_paid(last: &Outcome) -> bool {
    matches!(last, Outcome::State(TradeState::Success | TradeState::Refund))
}

/// The B5 table. `last = None` means no attempt yet.
pub fn next_action(last: Option<&Outcome>, f: &OrderFacts, now: u64) -> Action {
    let Some(last) = last else { return Action::Pay { new_order: true, at: now } };
    if f.after_invalid {
        // B5.1: the query decides: charged means paid, anything else is the INVALID_REQUEST.
        return match last {
            l if is_paid(l) => Action::Paid,
            Outcome::Unknown => Action::Query { at: now + unknown_wait(f.unknowns) },
            _ => Action::Failed(FailReason::Operator("INVALID_REQUEST".into())),
        };
    }
    match last {
        Outcome::State(TradeState::Success | TradeState::Refund) => Action::Paid,
        Outcome::State(TradeState::Notpay | TradeState::Userpaying) => {
            if now >= f.created_at + SAME_ORDER_WINDOW_S {
                Action::Failed(FailReason::Expired)
            } else {
                Action::Pay { new_order: false, at: now + backoff(f.pending, 2, 30) }
            }
        }
        Outcome::State(s @ (TradeState::Closed | TradeState::Revoked | TradeState::Payerror)) => {
            if f.orders >= MAX_ORDERS {
                Action::Failed(FailReason::TooManyOrders(Outcome::State(*s).as_code()))
            } else {
                Action::Pay { new_order: true, at: now }
            }
        }
        Outcome::SystemError => {
            if f.system_errors_today > MAX_SYSTEM_ERROR_RETRIES {
                Action::Failed(FailReason::SystemErrorLimit)
            } else {
                Action::Pay { new_order: false, at: now + backoff(f.system_errors_today, 1, 30) }
            }
        }
        Outcome::RateLimited => Action::Pay { new_order: false, at: now + backoff(f.rate_limits, 1, 60) },
        Outcome::Unavailable => Action::Pay { new_order: false, at: now + backoff(f.unavailable, 1, 60) },
        Outcome::ParamError => Action::Failed(FailReason::Operator("PARAM_ERROR".into())),
        Outcome::InvalidRequest if f.retried => Action::Query { at: now },
        Outcome::InvalidRequest => Action::Failed(FailReason::Operator("INVALID_REQUEST".into())),
        Outcome::Other(c) => Action::Failed(FailReason::Operator(c.clone())),
        // A state we do not know is an unknown outcome: query (B5.1).
        Outcome::Unknown | Outcome::State(TradeState::Unrecognized) => {
            Action::Query { at: now + unknown_wait(f.unknowns) }
        }
        Outcome::OrderNotExist => Action::Pay { new_order: false, at: now },
    }
}

/// B5.1: the first query of an unknown outcome goes at once, then 1, 2, 4 … s up to
/// [`UNKNOWN_QUERY_CAP_S`], and stays there: never more often, never given up.
fn unknown_wait(unknowns: u32) -> u64 {
    if unknowns <= 1 {
        0
    } else {
        backoff(unknowns - 1, 1, UNKNOWN_QUERY_CAP_S)
    }
}

/// The Beijing (UTC+8) calendar day of a Unix time: "per day" in B5.
pub fn beijing_day(unix: u64) -> u64 {
    (unix + 8 * 3600) / 86_400
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn facts() -> OrderFacts {
        OrderFacts { created_at: NOW, orders: 1, ..Default::default() }
    }

    #[test]
    fn b5_first_attempt_opens_an_order() {
        assert_eq!(next_action(None, &facts(), NOW), Action::Pay { new_order: true, at: NOW });
    }

    #[test]
    fn b5_success_and_refund_are_paid() {
        for s in [TradeState::Success, TradeState::Refund] {
            assert_eq!(next_action(Some(&Outcome::State(s)), &facts(), NOW), Action::Paid);
        }
    }

    /// The engine makes a payment PAID in the transaction that records an answer for
    /// which `is_paid` holds: it must hold exactly where the policy says Paid, whatever the
    /// facts (B5.1's after-INVALID_REQUEST query included).
    #[test]
    fn b5_is_paid_is_exactly_where_the_policy_says_paid() {
        let all = [
            TradeState::Success,
            TradeState::Refund,
            TradeState::Notpay,
            TradeState::Closed,
            TradeState::Revoked,
            TradeState::Userpaying,
            TradeState::Payerror,
            TradeState::Unrecognized,
        ];
        let mut paid = 0;
        for s in all {
            let oc = Outcome::State(s);
            for after_invalid in [false, true] {
                let f = OrderFacts { after_invalid, retried: after_invalid, ..facts() };
                assert_eq!(next_action(Some(&oc), &f, NOW) == Action::Paid, is_paid(&oc), "{s:?} {after_invalid}");
            }
            paid += usize::from(is_paid(&oc));
        }
        assert_eq!(paid, 2);
        for oc in [Outcome::Unknown, Outcome::SystemError, Outcome::InvalidRequest, Outcome::OrderNotExist] {
            assert!(!is_paid(&oc));
        }
    }

    #[test]
    fn b5_notpay_retries_same_order_number() {
        for s in [TradeState::Notpay, TradeState::Userpaying] {
            let f = OrderFacts { pending: 1, ..facts() };
            assert_eq!(
                next_action(Some(&Outcome::State(s)), &f, NOW + 10),
                Action::Pay { new_order: false, at: NOW + 12 }
            );
        }
    }

    #[test]
    fn b5_notpay_after_24h_fails() {
        let f = OrderFacts { pending: 40, ..facts() };
        let a = next_action(Some(&Outcome::State(TradeState::Notpay)), &f, NOW + SAME_ORDER_WINDOW_S);
        assert_eq!(a, Action::Failed(FailReason::Expired));
        let b = next_action(Some(&Outcome::State(TradeState::Userpaying)), &f, NOW + SAME_ORDER_WINDOW_S - 1);
        assert!(matches!(b, Action::Pay { new_order: false, .. }));
    }

    #[test]
    fn b5_closed_revoked_payerror_take_a_new_order_number() {
        for s in [TradeState::Closed, TradeState::Revoked, TradeState::Payerror] {
            assert_eq!(next_action(Some(&Outcome::State(s)), &facts(), NOW), Action::Pay { new_order: true, at: NOW });
            let many = OrderFacts { orders: MAX_ORDERS, ..facts() };
            assert!(matches!(
                next_action(Some(&Outcome::State(s)), &many, NOW),
                Action::Failed(FailReason::TooManyOrders(_))
            ));
        }
    }

    #[test]
    fn b5_system_error_at_most_five_retries_per_order_per_day() {
        for n in 1..=5 {
            let f = OrderFacts { system_errors_today: n, ..facts() };
            assert!(
                matches!(next_action(Some(&Outcome::SystemError), &f, NOW), Action::Pay { new_order: false, .. }),
                "retry {n}"
            );
        }
        let f = OrderFacts { system_errors_today: 6, ..facts() };
        assert_eq!(next_action(Some(&Outcome::SystemError), &f, NOW), Action::Failed(FailReason::SystemErrorLimit));
        assert_ne!(beijing_day(1_700_000_000), beijing_day(1_700_000_000 + 86_400));
    }

    #[test]
    fn b5_ratelimit_backs_off_and_retries_same_order() {
        let a1 = next_action(Some(&Outcome::RateLimited), &OrderFacts { rate_limits: 1, ..facts() }, NOW);
        let a4 = next_action(Some(&Outcome::RateLimited), &OrderFacts { rate_limits: 4, ..facts() }, NOW);
        let a30 = next_action(Some(&Outcome::RateLimited), &OrderFacts { rate_limits: 30, ..facts() }, NOW);
        assert_eq!(a1, Action::Pay { new_order: false, at: NOW + 1 });
        assert_eq!(a4, Action::Pay { new_order: false, at: NOW + 8 });
        assert_eq!(a30, Action::Pay { new_order: false, at: NOW + 60 });
    }

    #[test]
    fn b5_param_error_and_invalid_request_are_not_retried() {
        assert_eq!(
            next_action(Some(&Outcome::ParamError), &facts(), NOW),
            Action::Failed(FailReason::Operator("PARAM_ERROR".into()))
        );
        assert_eq!(
            next_action(Some(&Outcome::InvalidRequest), &facts(), NOW),
            Action::Failed(FailReason::Operator("INVALID_REQUEST".into()))
        );
    }

    #[test]
    fn b5_unknown_outcome_queries_before_any_retry() {
        assert_eq!(
            next_action(Some(&Outcome::Unknown), &OrderFacts { unknowns: 1, ..facts() }, NOW),
            Action::Query { at: NOW }
        );
        assert_eq!(
            next_action(Some(&Outcome::OrderNotExist), &facts(), NOW),
            Action::Pay { new_order: false, at: NOW }
        );
    }

    #[test]
    fn b5_1_unavailable_retries_the_same_order() {
        for n in [1, 3, 30] {
            let a = next_action(Some(&Outcome::Unavailable), &OrderFacts { unavailable: n, ..facts() }, NOW);
            assert!(matches!(a, Action::Pay { new_order: false, at } if at > NOW && at <= NOW + 60), "{a:?}");
        }
    }

    #[test]
    fn b5_1_invalid_request_after_a_retried_attempt_is_queried_first() {
        let f = OrderFacts { retried: true, ..facts() };
        assert_eq!(next_action(Some(&Outcome::InvalidRequest), &f, NOW), Action::Query { at: NOW });
        let q = OrderFacts { after_invalid: true, ..facts() };
        assert_eq!(next_action(Some(&Outcome::State(TradeState::Success)), &q, NOW), Action::Paid);
        for o in [Outcome::OrderNotExist, Outcome::State(TradeState::Notpay), Outcome::State(TradeState::Closed)] {
            assert_eq!(
                next_action(Some(&o), &q, NOW),
                Action::Failed(FailReason::Operator("INVALID_REQUEST".into())),
                "{o:?}"
            );
        }
        let u = OrderFacts { after_invalid: true, unknowns: 3, ..facts() };
        assert!(matches!(next_action(Some(&Outcome::Unknown), &u, NOW), Action::Query { .. }));
    }

    #[test]
    fn b5_1_unknown_outcomes_back_off_to_one_query_per_5_minutes_and_never_stop() {
        let mut prev = 0;
        for n in 1..=2000 {
            let f = OrderFacts { unknowns: n, ..facts() };
            let Action::Query { at } = next_action(Some(&Outcome::Unknown), &f, NOW) else {
                panic!("unknown #{n} must be queried");
            };
            let wait = at - NOW;
            assert!(wait >= prev && wait <= UNKNOWN_QUERY_CAP_S, "#{n}: {wait}");
            prev = wait;
        }
        assert_eq!(prev, UNKNOWN_QUERY_CAP_S, "the cap is reached and held");
        let unrecognized = Outcome::State(TradeState::Unrecognized);
        assert!(matches!(next_action(Some(&unrecognized), &facts(), NOW), Action::Query { .. }));
    }

    #[test]
    fn b5_outcome_codes_roundtrip() {
        for o in [
            Outcome::State(TradeState::Userpaying),
            Outcome::SystemError,
            Outcome::RateLimited,
            Outcome::Unavailable,
            Outcome::ParamError,
            Outcome::InvalidRequest,
            Outcome::OrderNotExist,
            Outcome::Unknown,
            Outcome::Other("NO_AUTH".into()),
        ] {
            assert_eq!(Outcome::from_code(&o.as_code()), o);
        }
        assert_eq!(Outcome::from_code("SOME_NEW_STATE"), Outcome::Unknown);
    }
}
