//! The WeChat Pay side of a demo day, as the reference stack reports it and the demo
//! summary shows it (a build without `merchant` has none). Its own module so that the
//! demo and the reference stack share it without importing each other.

use std::collections::BTreeMap;

use serde::Serialize;

/// The WeChat Pay side of the day (only with the reference backend).
#[derive(Debug, Clone, Default, Serialize)]
pub struct WechatPaySide {
    /// Attempts (deductions and order queries) by outcome code.
    pub by_outcome: BTreeMap<String, u64>,
    /// Payments by final state (and failure reason).
    pub payments: BTreeMap<String, u64>,
    /// Deduction attempts beyond the first of each payment.
    pub retries: u64,
    pub order_queries: u64,
    /// Orders or payments charged more than once in the mock's ledger.
    pub charged_twice: u64,
    /// PAID without a charge, or charged without PAID.
    pub lost: u64,
}
