//! Device authentication of the terminal ↔ backend link (SPEC S1), the half both sides
//! share: the signed message, the `Authorization` header's form, the ±300 s window and the
//! stable refusal codes. A terminal signs every request with the credential it got at
//! enrolment (HMAC-SHA256, as TC3 and WeChat Pay sign theirs): the message binds the
//! method, the path with its query, the SHA-256 of the exact body bytes, the timestamp,
//! a nonce and the device id. The backend (`merchant::link_auth`) checks the time, the
//! device, the signature (constant-time) and that the nonce is new within the window.
//! Nothing here logs; no credential ever appears in a `Debug`, `Display` or error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::Secret;

/// The scheme word of the `Authorization` header.
pub const SCHEME: &str = "FACEPAY-HMAC-SHA256";
/// The header a request carries its signature in.
pub const HEADER: &str = "authorization";
/// A signed timestamp is accepted within this many seconds of the backend's clock (S1).
pub const WINDOW_S: u64 = 300;
/// Every device credential starts with this (so a pasted value is recognisable).
pub const CREDENTIAL_PREFIX: &str = "fpdc1_";

/// 401 codes (stable; `docs/merchant-protocol.md` "Errors").
pub const CODE_AUTH_MISSING: &str = "AUTH_MISSING";
pub const CODE_AUTH_MALFORMED: &str = "AUTH_MALFORMED";
pub const CODE_AUTH_EXPIRED: &str = "AUTH_EXPIRED";
pub const CODE_AUTH_REPLAYED: &str = "AUTH_REPLAYED";
pub const CODE_AUTH_BAD_SIGNATURE: &str = "AUTH_BAD_SIGNATURE";
/// Unknown and revoked devices answer alike (the log tells them apart).
pub const CODE_AUTH_DEVICE_UNKNOWN: &str = "AUTH_DEVICE_UNKNOWN";

type HmacSha256 = Hmac<Sha256>;

/// Why a request was not authenticated (S1). Carries no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    Expired,
    Replayed,
    BadSignature,
    UnknownDevice,
    Revoked,
}

impl Refusal {
    /// The stable code of the 401 answer.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Missing => CODE_AUTH_MISSING,
            Refusal::Malformed => CODE_AUTH_MALFORMED,
            Refusal::Expired => CODE_AUTH_EXPIRED,
            Refusal::Replayed => CODE_AUTH_REPLAYED,
            Refusal::BadSignature => CODE_AUTH_BAD_SIGNATURE,
            Refusal::UnknownDevice | Refusal::Revoked => CODE_AUTH_DEVICE_UNKNOWN,
        }
    }

    /// For the operator's log only (tells revoked from unknown).
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "no Authorization header",
            Refusal::Malformed => "malformed Authorization header",
            Refusal::Expired => "timestamp outside the window",
            Refusal::Replayed => "nonce already used",
            Refusal::BadSignature => "signature does not match",
            Refusal::UnknownDevice => "device not enrolled",
            Refusal::Revoked => "device revoked",
        }
    }
}

/// The parts of a parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub device_id: String,
    pub timestamp: u64,
    pub nonce: String,
    /// Lower-case hex of the HMAC.
    pub signature: String,
}

/// The exact bytes that are signed: every element on its own line, the body as the hex
/// SHA-256 of the bytes sent (empty body for GET).
pub fn message(
    method: &str,
    path_and_query: &str,
    body: &[u8],
    timestamp: u64,
    nonce: &str,
    device_id: &str,
) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    format!("{SCHEME}\n{method}\n{path_and_query}\n{body_hash}\n{timestamp}\n{nonce}\n{device_id}\n")
}

fn mac(credential: &Secret) -> HmacSha256 {
    HmacSha256::new_from_slice(credential.expose().as_bytes()).expect("HMAC takes a key of any length")
}

/// The `Authorization` header value of one request.
pub fn authorization(
    credential: &Secret,
    device_id: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    timestamp: u64,
    nonce: &str,
) -> String {
    let mut m = mac(credential);
    m.update(message(method, path_and_query, body, timestamp, nonce, device_id).as_bytes());
    let sig = hex::encode(m.finalize().into_bytes());
    format!("{SCHEME} device_id=\"{device_id}\",timestamp=\"{timestamp}\",nonce=\"{nonce}\",signature=\"{sig}\"")
}

/// Parses a header value; any deviation from the one form is `Malformed`.
pub fn parse(value: &str) -> Result<Signed, Refusal> {
    let rest = value.strip_prefix(SCHEME).and_then(|r| r.strip_prefix(' ')).ok_or(Refusal::Malformed)?;
    let (mut device_id, mut timestamp, mut nonce, mut signature) = (None, None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(Refusal::Malformed)?;
        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).ok_or(Refusal::Malformed)?;
        let slot = match k {
            "device_id" => &mut device_id,
            "timestamp" => &mut timestamp,
            "nonce" => &mut nonce,
            "signature" => &mut signature,
            _ => return Err(Refusal::Malformed),
        };
        if slot.replace(v.to_string()).is_some() {
            return Err(Refusal::Malformed);
        }
    }
    let device_id =
        device_id.filter(|d| crate::config::check_field("device_id", d).is_ok()).ok_or(Refusal::Malformed)?;
    let timestamp = timestamp
        .filter(|t| !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or(Refusal::Malformed)?;
    let nonce = nonce
        .filter(|n| (16..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or(Refusal::Malformed)?;
    let signature =
        signature.filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).ok_or(Refusal::Malformed)?;
    Ok(Signed { device_id, timestamp, nonce, signature: signature.to_ascii_lowercase() })
}

/// The ±[`WINDOW_S`] check against the verifier's wall time (Unix seconds).
pub fn within_window(timestamp: u64, now: u64) -> bool {
    timestamp.abs_diff(now) <= WINDOW_S
}

/// Constant-time check of the signature over this request.
pub fn verify(credential: &Secret, s: &Signed, method: &str, path_and_query: &str, body: &[u8]) -> bool {
    let Ok(sig) = hex::decode(&s.signature) else { return false };
    let mut m = mac(credential);
    m.update(message(method, path_and_query, body, s.timestamp, &s.nonce, &s.device_id).as_bytes());
    m.verify_slice(&sig).is_ok()
}

/// A fresh nonce: unique per process and call (wall nanoseconds, process id and a
/// counter, hashed). It needs uniqueness within the window, not secrecy: the signature
/// covers it.
pub fn new_nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let seed = format!("{t}:{}:{n}", std::process::id());
    hex::encode(&Sha256::digest(seed.as_bytes())[..16])
}

/// True when `s` has the form of a device credential (prefix and 64 hex digits).
pub fn is_credential(s: &str) -> bool {
    s.strip_prefix(CREDENTIAL_PREFIX).is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred() -> Secret {
        Secret::new(format!("{CREDENTIAL_PREFIX}{}", "ab".repeat(32)))
    }

    #[test]
    fn s1_a_signature_binds_method_path_body_time_nonce_and_device() {
        let c = cred();
        let h = authorization(&c, "dev-1", "POST", "/facepay/v1/payments", b"{}", 1_800_000_000, "0123456789abcdef");
        let s = parse(&h).expect("parses");
        assert!(verify(&c, &s, "POST", "/facepay/v1/payments", b"{}"));
        assert!(!verify(&c, &s, "GET", "/facepay/v1/payments", b"{}"));
        assert!(!verify(&c, &s, "POST", "/facepay/v1/authinfo", b"{}"));
        assert!(!verify(&c, &s, "POST", "/facepay/v1/payments", b"{ }"));
        let other = Secret::new(format!("{CREDENTIAL_PREFIX}{}", "cd".repeat(32)));
        assert!(!verify(&other, &s, "POST", "/facepay/v1/payments", b"{}"));
        for (field, forged) in [
            ("timestamp", Signed { timestamp: s.timestamp + 1, ..s.clone() }),
            ("nonce", Signed { nonce: "0123456789abcdee".into(), ..s.clone() }),
            ("device", Signed { device_id: "dev-2".into(), ..s.clone() }),
        ] {
            assert!(!verify(&c, &forged, "POST", "/facepay/v1/payments", b"{}"), "{field} is signed");
        }
    }

    #[test]
    fn s1_headers_of_any_other_form_are_malformed() {
        let good = authorization(&cred(), "dev-1", "GET", "/x", b"", 1, "0123456789abcdef");
        assert!(parse(&good).is_ok());
        for bad in [
            "",
            "Bearer x",
            &good.replace(SCHEME, "FACEPAY-HMAC-SHA1"),
            &good.replace("timestamp=\"1\"", "timestamp=\"-1\""),
            &good.replace("nonce=\"0123456789abcdef\"", "nonce=\"short\""),
            &format!("{good},nonce=\"0123456789abcdef\""),
            &good.replace("device_id=\"dev-1\"", "device_id=\"\""),
            &good.replace("device_id=\"dev-1\"", "device_id=\"a\u{7}b\""),
        ] {
            assert_eq!(parse(bad), Err(Refusal::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn s1_window_is_300_s_either_way_and_nonces_differ() {
        assert!(within_window(1000, 1300) && within_window(1300, 1000));
        assert!(!within_window(1000, 1301) && !within_window(1301, 1000));
        let a = new_nonce();
        assert_ne!(a, new_nonce());
        assert_eq!(a.len(), 32);
        assert!(is_credential(cred().expose()) && !is_credential("fpdc1_xyz"));
        assert_eq!(Refusal::Revoked.code(), Refusal::UnknownDevice.code());
    }
}
