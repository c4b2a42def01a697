//! TC3-HMAC-SHA256, the request signature of Tencent Cloud API 3.0 (API-NOTES §3): the
//! canonical request, the string to sign, the derived key chain and the `Authorization`
//! header, plus the parser the mock server uses to verify a request. Pure functions: the
//! timestamp is an argument. Every FaceID call of R1–R6 is signed here.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// What a signature covers.
#[derive(Debug, Clone)]
pub struct SignInput<'a> {
    pub service: &'a str,
    pub host: &'a str,
    pub content_type: &'a str,
    /// Unix seconds; also gives the UTC date of the credential scope.
    pub timestamp: i64,
    pub payload: &'a [u8],
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// The UTC date (`YYYY-MM-DD`) of a unix timestamp, as the credential scope wants it.
pub fn utc_date(timestamp: i64) -> String {
    chrono::DateTime::from_timestamp(timestamp, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".to_string())
}

/// Canonical request for `POST /` with the given signed headers (name, value), names lowercase.
pub fn canonical_request(headers: &[(&str, &str)], payload: &[u8]) -> String {
    let mut canon = String::new();
    for (k, v) in headers {
        canon.push_str(&k.to_ascii_lowercase());
        canon.push(':');
        canon.push_str(v.trim());
        canon.push('\n');
    }
    let signed: Vec<String> = headers.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
    format!("POST\n/\n\n{canon}\n{}\n{}", signed.join(";"), sha256_hex(payload))
}

pub fn string_to_sign(timestamp: i64, service: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{}/{service}/tc3_request\n{}",
        utc_date(timestamp),
        sha256_hex(canonical.as_bytes())
    )
}

/// hex(HMAC(kSigning, string_to_sign)) with the TC3 key chain.
pub fn signature(secret_key: &str, date: &str, service: &str, string_to_sign: &str) -> String {
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, service.as_bytes());
    let k_signing = hmac(&k_service, b"tc3_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

/// Signs with the two headers every FaceID call signs (`content-type;host`); returns
/// `(signature, Authorization header value)`.
pub fn sign(secret_id: &str, secret_key: &str, input: &SignInput<'_>) -> (String, String) {
    let canonical = canonical_request(&[("content-type", input.content_type), ("host", input.host)], input.payload);
    let sts = string_to_sign(input.timestamp, input.service, &canonical);
    let date = utc_date(input.timestamp);
    let sig = signature(secret_key, &date, input.service, &sts);
    let auth = format!(
        "{ALGORITHM} Credential={secret_id}/{date}/{}/tc3_request, SignedHeaders=content-type;host, Signature={sig}",
        input.service
    );
    (sig, auth)
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=hex`.
pub fn parse_authorization(v: &str) -> Option<Authorization> {
    let rest = v.trim().strip_prefix(ALGORITHM)?.trim_start();
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, val) = part.trim().split_once('=')?;
        match k.trim() {
            "Credential" => cred = Some(val.trim()),
            "SignedHeaders" => signed = Some(val.trim()),
            "Signature" => sig = Some(val.trim()),
            _ => return None,
        }
    }
    let mut scope = cred?.split('/');
    let (id, date, service, term) = (scope.next()?, scope.next()?, scope.next()?, scope.next()?);
    if term != "tc3_request" || scope.next().is_some() || id.is_empty() {
        return None;
    }
    let signed_headers: Vec<String> = signed?.split(';').map(|s| s.trim().to_ascii_lowercase()).collect();
    if signed_headers.iter().any(String::is_empty) {
        return None;
    }
    Some(Authorization {
        secret_id: id.into(),
        date: date.into(),
        service: service.into(),
        signed_headers,
        signature: sig?.into(),
    })
}

/// Constant-time comparison of two signatures.
pub fn same_signature(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
    const KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
    const BODY: &str = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    #[test]
    fn tc3_reproduces_the_published_test_vector() {
        let input = SignInput {
            service: "cvm",
            host: "cvm.tencentcloudapi.com",
            content_type: "application/json; charset=utf-8",
            timestamp: 1551113065,
            payload: BODY.as_bytes(),
        };
        let (sig, auth) = sign(ID, KEY, &input);
        assert_eq!(sig, "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
        assert_eq!(
            auth,
            format!("TC3-HMAC-SHA256 Credential={ID}/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature={sig}")
        );
    }

    #[test]
    fn authorization_round_trips_and_garbage_is_rejected() {
        let input =
            SignInput { service: "faceid", host: "h", content_type: "application/json", timestamp: 0, payload: b"{}" };
        let (sig, auth) = sign("AKIDx", "k", &input);
        let parsed = parse_authorization(&auth).expect("parses");
        assert_eq!(parsed.secret_id, "AKIDx");
        assert_eq!(parsed.date, "1970-01-01");
        assert_eq!(parsed.service, "faceid");
        assert_eq!(parsed.signed_headers, vec!["content-type", "host"]);
        assert_eq!(parsed.signature, sig);
        assert!(parse_authorization("Bearer x").is_none());
        assert!(parse_authorization("TC3-HMAC-SHA256 Credential=a/b, SignedHeaders=x, Signature=y").is_none());
        assert!(same_signature(&sig, &parsed.signature));
        assert!(!same_signature(&sig, "00"));
    }

    #[test]
    fn a_changed_body_changes_the_signature() {
        let mk = |p: &'static [u8]| SignInput {
            service: "faceid",
            host: "faceid.tencentcloudapi.com",
            content_type: "application/json",
            timestamp: 1_700_000_000,
            payload: p,
        };
        assert_ne!(sign(ID, KEY, &mk(b"{\"Cursor\":0}")).0, sign(ID, KEY, &mk(b"{\"Cursor\":1}")).0);
    }
}
