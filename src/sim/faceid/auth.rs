//! Who is calling the mock FaceID server: TC3-HMAC-SHA256 verification (API-NOTES §3) and
//! the accounts it knows. Each account (a sub-account of its own, SPEC R9) has permanent
//! credentials and may have temporary (STS) ones whose session token must come as
//! `X-TC-Token`. Refusals use the documented codes: a bad signature
//! `AuthFailure.SignatureFailure`, more than 5 min off `AuthFailure.SignatureExpire`, an
//! unknown SecretId `AuthFailure.SecretIdNotFound`, a missing, wrong or expired session token
//! `AuthFailure.TokenFailure`. Where the real service's answer is not documented (a token sent
//! with permanent credentials) the mock is stricter and refuses with `TokenFailure` too.

use axum::http::HeaderMap;

use crate::recon::tc3;

/// One temporary credential of an account: valid until `expires_ms` (virtual clock).
#[derive(Debug, Clone)]
pub struct TempCredential {
    pub secret_id: String,
    pub secret_key: String,
    pub token: String,
    pub expires_ms: i64,
}

/// An account the mock serves besides the primary one, with bills of its own (its seed).
#[derive(Debug, Clone)]
pub struct MockAccount {
    pub secret_id: String,
    pub secret_key: String,
    pub seed: u64,
}

pub type Reject = (&'static str, String);

/// The caller resolved from a request: the index of its account (0 = primary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub account: usize,
}

/// The credentials a request may be signed with.
pub struct Keyring<'a> {
    /// `(secret_id, secret_key)` of every account, primary first.
    pub permanent: Vec<(&'a str, &'a str)>,
    /// `(account, credential)`.
    pub temporary: Vec<(usize, &'a TempCredential)>,
}

/// TC3 verification of one request at virtual time `now_ms` (signatures are checked against
/// real time, as FaceID checks them against its own clock).
pub fn verify(keys: &Keyring<'_>, headers: &HeaderMap, body: &[u8], now_ms: i64) -> Result<Caller, Reject> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let auth = header("authorization")
        .and_then(tc3::parse_authorization)
        .ok_or(("AuthFailure.SignatureFailure", "the Authorization header is missing or malformed".to_string()))?;
    let token = header("x-tc-token").filter(|t| !t.is_empty());
    let (caller, key) = match keys.permanent.iter().position(|(id, _)| *id == auth.secret_id) {
        Some(i) if token.is_none() => (Caller { account: i }, keys.permanent[i].1),
        Some(_) => return Err(("AuthFailure.TokenFailure", "a token was sent with permanent credentials".into())),
        None => match keys.temporary.iter().find(|(_, c)| c.secret_id == auth.secret_id) {
            None => return Err(("AuthFailure.SecretIdNotFound", "the SecretId is not found".into())),
            Some((_, c)) if token != Some(c.token.as_str()) => {
                return Err(("AuthFailure.TokenFailure", "the token is missing or does not match".into()))
            }
            Some((_, c)) if now_ms >= c.expires_ms => {
                return Err(("AuthFailure.TokenFailure", "the token has expired".into()))
            }
            Some((a, c)) => (Caller { account: *a }, c.secret_key.as_str()),
        },
    };
    let ts: i64 = header("x-tc-timestamp")
        .and_then(|v| v.trim().parse().ok())
        .ok_or(("AuthFailure.SignatureFailure", "X-TC-Timestamp is missing or invalid".to_string()))?;
    let real_now = crate::clock::unix_ms(std::time::SystemTime::now()) / 1000;
    if (real_now - ts).abs() > 300 {
        return Err(("AuthFailure.SignatureExpire", "the request timestamp is more than 5 minutes off".into()));
    }
    if auth.date != tc3::utc_date(ts) || auth.service != "faceid" {
        return Err((
            "AuthFailure.SignatureFailure",
            "the credential scope does not match the timestamp or service".into(),
        ));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") || !auth.signed_headers.iter().any(|h| h == "content-type") {
        return Err(("AuthFailure.SignatureFailure", "content-type and host must be signed".into()));
    }
    let mut pairs = Vec::new();
    for name in &auth.signed_headers {
        let v = header(name).ok_or(("AuthFailure.SignatureFailure", format!("signed header {name} is missing")))?;
        pairs.push((name.as_str(), v));
    }
    let canonical = tc3::canonical_request(&pairs, body);
    let sts = tc3::string_to_sign(ts, "faceid", &canonical);
    let expect = tc3::signature(key, &auth.date, "faceid", &sts);
    if !tc3::same_signature(&expect, &auth.signature) {
        return Err(("AuthFailure.SignatureFailure", "the signature does not match".into()));
    }
    Ok(caller)
}
