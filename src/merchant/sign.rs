//! WeChat Pay API v3 signatures (SPEC B, API-NOTES §2): request signing
//! `WECHATPAY2-SHA256-RSA2048` with the merchant key (PKCS#8 or PKCS#1 PEM), response
//! verification with the platform key in both modes (public-key id `PUB_KEY_ID_…` and
//! platform-certificate serials), the three mandatory rejections (timestamp more than
//! 300 s off, an unsigned answer, a `WECHATPAY/SIGNTEST/` probe), RSA-OAEP (SHA-1, MGF1)
//! for sensitive fields, and AES-256-GCM decryption of downloaded certificates. All RSA
//! work is aws-lc-rs. Time is an argument (`now_unix`), so every rule is testable.

use std::collections::HashMap;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1};
use aws_lc_rs::signature::{self, KeyPair, ParsedPublicKey, RsaKeyPair, UnparsedPublicKey};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use parking_lot::RwLock;

use super::MerchantError;

/// The only signature scheme of API v3.
pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";
/// Probe signatures: a client that accepts one is broken (API-NOTES §2).
pub const PROBE_PREFIX: &str = "WECHATPAY/SIGNTEST/";
/// Largest allowed distance between a response timestamp and now.
pub const MAX_SKEW_S: u64 = 300;
/// The prefix of a platform public-key id (public-key mode).
pub const PUBLIC_KEY_ID_PREFIX: &str = "PUB_KEY_ID_";

/// Decodes every PEM block of `text` into `(label, der)`.
pub fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, MerchantError> {
    let mut out = Vec::new();
    let mut label: Option<String> = None;
    let mut body = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(l) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) {
            label = Some(l.to_string());
            body.clear();
        } else if line.starts_with("-----END ") {
            let l = label.take().ok_or_else(|| MerchantError::Key("PEM END without BEGIN".into()))?;
            let der = B64.decode(body.as_bytes()).map_err(|_| MerchantError::Key("PEM body is not base64".into()))?;
            out.push((l, der));
        } else if label.is_some() {
            body.push_str(line);
        }
    }
    if out.is_empty() {
        return Err(MerchantError::Key("no PEM block found".into()));
    }
    Ok(out)
}

/// Encodes DER as one PEM block.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b = B64.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// The merchant's signing identity. The key never leaves this type (no `Debug` of it).
pub struct MerchantSigner {
    pub mchid: String,
    pub serial_no: String,
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for MerchantSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerchantSigner").field("mchid", &self.mchid).field("serial_no", &self.serial_no).finish()
    }
}

impl MerchantSigner {
    /// From a `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1) PEM.
    pub fn from_pem(mchid: &str, serial_no: &str, pem: &str) -> Result<Self, MerchantError> {
        let (label, der) = pem_blocks(pem)?.into_iter().next().expect("pem_blocks returns at least one");
        let key = match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            _ => return Err(MerchantError::Key(format!("unsupported PEM label {label:?} for the merchant key"))),
        }
        .map_err(|e| MerchantError::Key(format!("merchant key rejected: {e}")))?;
        Ok(Self::from_key(mchid, serial_no, key))
    }

    pub fn from_key(mchid: &str, serial_no: &str, key: RsaKeyPair) -> Self {
        MerchantSigner { mchid: mchid.into(), serial_no: serial_no.into(), key, rng: SystemRandom::new() }
    }

    /// SHA256withRSA (PKCS#1 v1.5) of `message`, base64.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
            .expect("RSA signing with a valid key");
        B64.encode(sig)
    }

    /// The public key (X.509 SubjectPublicKeyInfo DER) matching the signing key.
    pub fn public_key_der(&self) -> Vec<u8> {
        use aws_lc_rs::encoding::AsDer;
        self.key.public_key().as_der().expect("encode public key").as_ref().to_vec()
    }

    /// The `Authorization` header value for one request (`path_query` as sent).
    pub fn authorization(&self, method: &str, path_query: &str, body: &str, ts: u64, nonce: &str) -> String {
        let msg = format!("{method}\n{path_query}\n{ts}\n{nonce}\n{body}\n");
        let sig = self.sign(msg.as_bytes());
        format!(
            "{SCHEME} mchid=\"{}\",nonce_str=\"{nonce}\",timestamp=\"{ts}\",serial_no=\"{}\",signature=\"{sig}\"",
            self.mchid, self.serial_no
        )
    }
}

/// The parsed `Authorization` header of a request (the mock verifies it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    pub mchid: String,
    pub nonce: String,
    pub timestamp: u64,
    pub serial_no: String,
    pub signature: String,
}

impl AuthorizationHeader {
    pub fn parse(v: &str) -> Result<Self, MerchantError> {
        let rest = v
            .strip_prefix(SCHEME)
            .ok_or_else(|| MerchantError::Signature("authorization scheme is not WECHATPAY2-SHA256-RSA2048".into()))?;
        let mut f: HashMap<&str, &str> = HashMap::new();
        for part in rest.trim().split(',') {
            let (k, v) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| MerchantError::Signature("bad authorization field".into()))?;
            f.insert(k.trim(), v.trim().trim_matches('"'));
        }
        let get = |k: &str| {
            f.get(k).map(|s| s.to_string()).ok_or_else(|| MerchantError::Signature(format!("authorization lacks {k}")))
        };
        Ok(AuthorizationHeader {
            mchid: get("mchid")?,
            nonce: get("nonce_str")?,
            timestamp: get("timestamp")?.parse().map_err(|_| MerchantError::Signature("bad timestamp".into()))?,
            serial_no: get("serial_no")?,
            signature: get("signature")?,
        })
    }
}

/// The signature headers of a response (`Wechatpay-*`), each optional as received.
#[derive(Debug, Clone, Default)]
pub struct ResponseSignature {
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub signature: Option<String>,
    pub serial: Option<String>,
}

impl ResponseSignature {
    pub fn from_headers(h: &reqwest::header::HeaderMap) -> Self {
        let g = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        ResponseSignature {
            timestamp: g("wechatpay-timestamp"),
            nonce: g("wechatpay-nonce"),
            signature: g("wechatpay-signature"),
            serial: g("wechatpay-serial"),
        }
    }
}

/// Verifies `signature` (base64) over `message` with an RSA public key (SPKI or PKCS#1 DER).
pub fn verify_rsa_sha256(public_key_der: &[u8], message: &[u8], signature_b64: &str) -> bool {
    let Ok(sig) = B64.decode(signature_b64.as_bytes()) else { return false };
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_key_der).verify(message, &sig).is_ok()
}

/// The validity of a platform certificate (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertValidity {
    pub effective: u64,
    pub expires: u64,
}

#[derive(Debug, Clone)]
struct KeyEntry {
    spki_der: Vec<u8>,
    /// The key parsed once, for verification (`None`: the bytes are not an RSA public key,
    /// so nothing verifies with it). Parsing it anew for every answer cost as much as a
    /// quarter of each verification (bench/peers/run.sh).
    parsed: Option<ParsedPublicKey>,
    /// `None`: the platform public key (`PUB_KEY_ID_…`); `Some`: a platform certificate.
    cert: Option<CertValidity>,
}

impl KeyEntry {
    fn new(spki_der: Vec<u8>, cert: Option<CertValidity>) -> Self {
        let parsed = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &spki_der).ok();
        KeyEntry { spki_der, parsed, cert }
    }
}

/// The platform keys we trust, by `Wechatpay-Serial`: the public key under its id
/// `PUB_KEY_ID_…` and platform-certificate serials in hex — both at once (SPEC B0: a
/// merchant moving from certificates to the public key holds both, and WeChat Pay signs
/// with whichever the request names).
#[derive(Default)]
pub struct PlatformKeys {
    keys: RwLock<HashMap<String, KeyEntry>>,
}

impl PlatformKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a key (SPKI DER) under its serial / id. An id `PUB_KEY_ID_…` is the
    /// platform public key; any other serial is taken as a certificate valid for ever
    /// (use [`PlatformKeys::insert_certificate`] when its validity is known).
    pub fn insert(&self, serial: &str, spki_der: Vec<u8>) {
        let cert =
            (!serial.starts_with(PUBLIC_KEY_ID_PREFIX)).then_some(CertValidity { effective: 0, expires: u64::MAX });
        self.keys.write().insert(serial.to_string(), KeyEntry::new(spki_der, cert));
    }

    /// Adds or replaces a platform certificate's key with its validity.
    pub fn insert_certificate(&self, serial: &str, spki_der: Vec<u8>, validity: CertValidity) {
        self.keys.write().insert(serial.to_string(), KeyEntry::new(spki_der, Some(validity)));
    }

    /// Drops every certificate expired at `now_unix` (the public key never expires here);
    /// returns how many were dropped.
    pub fn drop_expired(&self, now_unix: u64) -> usize {
        let mut k = self.keys.write();
        let before = k.len();
        k.retain(|_, e| e.cert.is_none_or(|c| c.expires > now_unix));
        before - k.len()
    }

    /// Adds a key from a `PUBLIC KEY` PEM (public-key mode).
    pub fn insert_pem(&self, serial: &str, pem: &str) -> Result<(), MerchantError> {
        let (label, der) = pem_blocks(pem)?.into_iter().next().expect("at least one block");
        if label != "PUBLIC KEY" {
            return Err(MerchantError::Key(format!("platform key PEM label {label:?} is not PUBLIC KEY")));
        }
        if PublicEncryptingKey::from_der(&der).is_err() {
            return Err(MerchantError::Key("platform key PEM is not an RSA public key".into()));
        }
        self.insert(serial, der);
        Ok(())
    }

    /// Forgets every key (tests of the refresh on an unknown serial).
    pub fn clear(&self) {
        self.keys.write().clear();
    }

    pub fn get(&self, serial: &str) -> Option<Vec<u8>> {
        self.keys.read().get(serial).map(|e| e.spki_der.clone())
    }

    /// Verifies `signature` (base64, SHA256withRSA) over `message` with the key held under
    /// `serial`; `None` when no key is held under it.
    pub fn verify_message(&self, serial: &str, message: &[u8], signature_b64: &str) -> Option<bool> {
        let key = self.keys.read().get(serial).map(|e| e.parsed.clone())?;
        let Some(key) = key else { return Some(false) };
        let Ok(sig) = B64.decode(signature_b64.as_bytes()) else { return Some(false) };
        Some(key.verify_sig(message, &sig).is_ok())
    }

    /// Whether any platform certificate is held.
    pub fn has_certificates(&self) -> bool {
        self.keys.read().values().any(|e| e.cert.is_some())
    }

    /// The key every request names in `Wechatpay-Serial` and sensitive fields are
    /// encrypted with (SPEC B0): the platform public key when one is held (the target of a
    /// migration), else the certificate with the newest effective time that is in effect
    /// at `now_unix` (a newer one not yet in effect is not used). `None` before any key is
    /// known (the first certificate download names none).
    pub fn current(&self, now_unix: u64) -> Option<(String, Vec<u8>)> {
        let k = self.keys.read();
        if let Some((id, e)) = k.iter().filter(|(_, e)| e.cert.is_none()).min_by(|a, b| a.0.cmp(b.0)) {
            return Some((id.clone(), e.spki_der.clone()));
        }
        k.iter()
            .filter_map(|(s, e)| e.cert.map(|c| (s, e, c)))
            .filter(|(_, _, c)| c.effective <= now_unix && now_unix < c.expires)
            .max_by(|a, b| a.2.effective.cmp(&b.2.effective).then_with(|| a.0.cmp(b.0)))
            .map(|(s, e, _)| (s.clone(), e.spki_der.clone()))
    }

    /// The key to encrypt sensitive fields with now: see [`PlatformKeys::current`].
    pub fn newest(&self) -> Option<(String, Vec<u8>)> {
        self.current(unix_now())
    }

    /// Verifies one response. `2xx` answers must be signed; any present signature must be
    /// valid, fresh (±300 s) and not a probe.
    pub fn verify(&self, sig: &ResponseSignature, body: &[u8], now_unix: u64) -> Result<(), MerchantError> {
        let (Some(ts), Some(nonce), Some(signature), Some(serial)) =
            (&sig.timestamp, &sig.nonce, &sig.signature, &sig.serial)
        else {
            return Err(MerchantError::Signature("response is not signed (treated as forged)".into()));
        };
        if signature.starts_with(PROBE_PREFIX) {
            return Err(MerchantError::Signature("probe signature WECHATPAY/SIGNTEST/ refused".into()));
        }
        let ts_n: u64 = ts.parse().map_err(|_| MerchantError::Signature("bad Wechatpay-Timestamp".into()))?;
        if ts_n.abs_diff(now_unix) > MAX_SKEW_S {
            return Err(MerchantError::Signature(format!("response timestamp is {} s off", ts_n.abs_diff(now_unix))));
        }
        let mut msg = Vec::with_capacity(body.len() + ts.len() + nonce.len() + 3);
        msg.extend_from_slice(ts.as_bytes());
        msg.push(b'\n');
        msg.extend_from_slice(nonce.as_bytes());
        msg.push(b'\n');
        msg.extend_from_slice(body);
        msg.push(b'\n');
        match self.verify_message(serial, &msg, signature) {
            None => Err(MerchantError::UnknownSerial(serial.clone())),
            Some(false) => Err(MerchantError::Signature("response signature does not verify".into())),
            Some(true) => Ok(()),
        }
    }
}

/// RSA-OAEP (SHA-1, MGF1-SHA-1) with a platform public key (SPKI DER), base64: the form of
/// every sensitive field (name, phone, id number).
pub fn oaep_encrypt(spki_der: &[u8], plaintext: &str) -> Result<String, MerchantError> {
    let pk = PublicEncryptingKey::from_der(spki_der).map_err(|e| MerchantError::Key(format!("platform key: {e}")))?;
    let oaep = OaepPublicEncryptingKey::new(pk).map_err(|_| MerchantError::Key("platform key: OAEP".into()))?;
    let mut out = vec![0u8; oaep.ciphertext_size()];
    let ct = oaep
        .encrypt(&OAEP_SHA1_MGF1SHA1, plaintext.as_bytes(), &mut out, None)
        .map_err(|_| MerchantError::Key("OAEP encryption failed (field too long?)".into()))?;
    Ok(B64.encode(ct))
}

/// AES-256-GCM decryption of an `encrypt_certificate` (APIv3 key, nonce, associated data).
pub fn aes_gcm_decrypt(
    apiv3_key: &[u8],
    nonce: &str,
    aad: &str,
    ciphertext_b64: &str,
) -> Result<Vec<u8>, MerchantError> {
    let bad = |w: &str| MerchantError::Signature(format!("certificate decryption: {w}"));
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, apiv3_key).map_err(|_| bad("APIv3 key must be 32 bytes"))?);
    let nonce = Nonce::try_assume_unique_for_key(nonce.as_bytes()).map_err(|_| bad("nonce must be 12 bytes"))?;
    let mut buf = B64.decode(ciphertext_b64.as_bytes()).map_err(|_| bad("ciphertext is not base64"))?;
    let plain =
        key.open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf).map_err(|_| bad("authentication failed"))?;
    Ok(plain.to_vec())
}

/// AES-256-GCM encryption (the mock's side of [`aes_gcm_decrypt`]).
pub fn aes_gcm_encrypt(apiv3_key: &[u8], nonce: &str, aad: &str, plain: &[u8]) -> Result<String, MerchantError> {
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, apiv3_key).map_err(|_| MerchantError::Key("APIv3 key".into()))?);
    let nonce = Nonce::try_assume_unique_for_key(nonce.as_bytes()).map_err(|_| MerchantError::Key("nonce".into()))?;
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(nonce, Aad::from(aad.as_bytes()), &mut buf)
        .map_err(|_| MerchantError::Key("seal".into()))?;
    Ok(B64.encode(buf))
}

/// Reads an RFC 3339 time as WeChat Pay writes it (`2025-01-01T00:00:00+08:00`, or `Z`)
/// into Unix seconds; `None` when it is not one.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let v = o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian), as in Howard Hinnant's algorithm.
    let (y2, m2) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se - offset).ok()
}

/// A random nonce of 32 hex characters.
pub fn nonce() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).expect("system RNG");
    hex::encode(b)
}

/// Now as Unix seconds (wall clock).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests;
