//! Configuration helpers shared by every product: the field checks that name the offending
//! field, and the identifier rules several products apply. Each product's configuration
//! lives with the product (`terminal::config`, `merchant::config`, the recon CLI flags).

use crate::error::{Error, Result};

/// Longest accepted identifier (ids, app ids, URLs). Longer is a bug in the caller.
pub const MAX_FIELD_LEN: usize = 256;

/// WeChat Pay's `out_trade_no`: 1–32 characters of `[A-Za-z0-9_-|*]`.
pub fn is_out_trade_no(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-|*".contains(c))
}

/// A non-empty identifier of at most [`MAX_FIELD_LEN`] bytes without control characters.
pub fn check_field(field: &'static str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        return Err(Error::invalid_config(field, "must not be empty"));
    }
    if v.len() > MAX_FIELD_LEN {
        return Err(Error::invalid_config(field, format!("longer than {MAX_FIELD_LEN} bytes")));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid_config(field, "contains control characters"));
    }
    Ok(())
}

/// A number that must not be 0 (timeouts, periods, TTLs).
pub fn check_positive(field: &'static str, v: u64) -> Result<()> {
    if v == 0 {
        return Err(Error::invalid_config(field, "must be greater than 0"));
    }
    Ok(())
}
