//! Field validation of the terminal ↔ backend protocol (SPEC S2, `docs/merchant-protocol.md`
//! "Endpoints"): every field of an authinfo or payment request is checked before anything
//! is stored or sent upstream — the idempotency key 1–256 bytes, non-empty credential and
//! ids, no control characters, bounded sizes, an amount within the device's limit. A
//! failure names the field (never its value, which may be personal) and answers
//! `400 PARAM_ERROR`.

use crate::config::MAX_FIELD_LEN;
use crate::wire::{AuthInfoRequest, PaymentRequest};

/// Longest `raw_data` accepted (the face service's raw data is a few KB at most).
pub const MAX_RAW_DATA: usize = 8 * 1024;
/// Longest `face_token` accepted.
pub const MAX_FACE_TOKEN: usize = 1024;

/// `Err(field: why)` for the first bad field.
fn text(field: &str, v: &str, max: usize) -> Result<(), String> {
    if v.is_empty() || v.trim().is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    if v.len() > max {
        return Err(format!("{field}: longer than {max} bytes"));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("{field}: contains control characters"));
    }
    Ok(())
}

pub fn check_authinfo(r: &AuthInfoRequest) -> Result<(), String> {
    text("device_id", &r.device_id, MAX_FIELD_LEN)?;
    text("organization_id", &r.organization_id, MAX_FIELD_LEN)?;
    text("raw_data", &r.raw_data, MAX_RAW_DATA)
}

/// S2: every field, and `1 <= amount_fen <= max_amount_fen`.
pub fn check_payment(r: &PaymentRequest, max_amount_fen: u64) -> Result<(), String> {
    text("idempotency_key", &r.idempotency_key, 256)?;
    text("face_token", r.face_token.expose(), MAX_FACE_TOKEN)?;
    text("user_id", &r.user_id, MAX_FIELD_LEN)?;
    text("out_user_id", &r.out_user_id, MAX_FIELD_LEN)?;
    text("organization_id", &r.organization_id, MAX_FIELD_LEN)?;
    text("device_id", &r.device_id, MAX_FIELD_LEN)?;
    if r.amount_fen == 0 {
        return Err("amount_fen: must be positive".into());
    }
    if r.amount_fen > max_amount_fen {
        return Err(format!("amount_fen: exceeds this device's limit of {max_amount_fen} fen"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Secret;

    fn pay() -> PaymentRequest {
        PaymentRequest {
            idempotency_key: "k".into(),
            face_token: Secret::new("ft"),
            user_id: "u".into(),
            out_user_id: "ou".into(),
            amount_fen: 100,
            organization_id: "org".into(),
            device_id: "d".into(),
        }
    }

    #[test]
    fn s2_every_field_is_bounded_and_named_never_echoed() {
        assert!(check_payment(&pay(), 100).is_ok());
        let cases: Vec<(PaymentRequest, &str)> = vec![
            (PaymentRequest { idempotency_key: String::new(), ..pay() }, "idempotency_key"),
            (PaymentRequest { idempotency_key: "k".repeat(257), ..pay() }, "idempotency_key"),
            (PaymentRequest { face_token: Secret::new(""), ..pay() }, "face_token"),
            (PaymentRequest { face_token: Secret::new("a\nb"), ..pay() }, "face_token"),
            (PaymentRequest { user_id: " ".into(), ..pay() }, "user_id"),
            (PaymentRequest { device_id: String::new(), ..pay() }, "device_id"),
            (PaymentRequest { amount_fen: 0, ..pay() }, "amount_fen"),
            (PaymentRequest { amount_fen: 101, ..pay() }, "amount_fen"),
            (PaymentRequest { amount_fen: u64::MAX, ..pay() }, "amount_fen"),
        ];
        for (r, field) in cases {
            let e = check_payment(&r, 100).expect_err(field);
            assert!(e.starts_with(field), "{e}");
            assert!(!e.contains("a\nb"));
        }
        assert!(check_payment(&PaymentRequest { idempotency_key: "k".repeat(256), ..pay() }, 100).is_ok());
        let a = AuthInfoRequest { device_id: "d".into(), raw_data: "r".into(), organization_id: "o".into() };
        assert!(check_authinfo(&a).is_ok());
        assert!(check_authinfo(&AuthInfoRequest { raw_data: "x".repeat(MAX_RAW_DATA + 1), ..a.clone() }).is_err());
        assert!(check_authinfo(&AuthInfoRequest { device_id: "\u{0}".into(), ..a }).is_err());
    }
}
