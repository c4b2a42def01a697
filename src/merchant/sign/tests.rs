use super::*;

fn signer() -> (MerchantSigner, String) {
    let pem = crate::merchant::generate_test_key_pem();
    (MerchantSigner::from_pem("1900000100", "MERCHANTSERIAL", &pem).expect("key"), pem)
}

fn signed(s: &MerchantSigner, body: &str, ts: u64) -> ResponseSignature {
    let nonce = "n0nce";
    ResponseSignature {
        timestamp: Some(ts.to_string()),
        nonce: Some(nonce.into()),
        signature: Some(s.sign(format!("{ts}\n{nonce}\n{body}\n").as_bytes())),
        serial: Some("PUB_KEY_ID_0001".into()),
    }
}

#[test]
fn b_response_signature_accepted_and_rejections() {
    let (s, _) = signer();
    let keys = PlatformKeys::new();
    keys.insert("PUB_KEY_ID_0001", s.public_key_der());
    let now = 1_800_000_000;
    let body = r#"{"trade_state":"SUCCESS"}"#;
    keys.verify(&signed(&s, body, now), body.as_bytes(), now).expect("valid");
    // forged: body changed
    assert!(keys.verify(&signed(&s, body, now), b"{}", now).is_err());
    // expired: 301 s off either way
    assert!(keys.verify(&signed(&s, body, now - 301), body.as_bytes(), now).is_err());
    assert!(keys.verify(&signed(&s, body, now + 301), body.as_bytes(), now).is_err());
    // unsigned
    assert!(keys.verify(&ResponseSignature::default(), body.as_bytes(), now).is_err());
    // probe
    let mut p = signed(&s, body, now);
    p.signature = Some(format!("{PROBE_PREFIX}{}", p.signature.expect("sig")));
    assert!(matches!(keys.verify(&p, body.as_bytes(), now), Err(MerchantError::Signature(m)) if m.contains("probe")));
    // unknown serial
    let mut u = signed(&s, body, now);
    u.serial = Some("ABCDEF".into());
    assert!(matches!(keys.verify(&u, body.as_bytes(), now), Err(MerchantError::UnknownSerial(_))));
    // another key
    let (other, _) = signer();
    assert!(keys.verify(&signed(&other, body, now), body.as_bytes(), now).is_err());
}

#[test]
fn b_authorization_header_roundtrip_and_pkcs1_key() {
    let (s, _) = signer();
    let a = s.authorization("POST", "/v3/offlineface/transactions", "{}", 1_800_000_000, "abc");
    let h = AuthorizationHeader::parse(&a).expect("parse");
    assert_eq!((h.mchid.as_str(), h.serial_no.as_str(), h.timestamp), ("1900000100", "MERCHANTSERIAL", 1_800_000_000));
    let msg = "POST\n/v3/offlineface/transactions\n1800000000\nabc\n{}\n";
    assert!(verify_rsa_sha256(&s.public_key_der(), msg.as_bytes(), &h.signature));
    assert!(MerchantSigner::from_pem("1", "s", "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
        .is_err());
    assert!(!format!("{s:?}").contains("PRIVATE"));
}

#[test]
fn b_oaep_and_aes_gcm_roundtrip() {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey};
    let pk = PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("gen");
    let spki = pk.public_key().as_der().expect("der").as_ref().to_vec();
    let ct = oaep_encrypt(&spki, "13800138000").expect("encrypt");
    let raw = B64.decode(ct).expect("b64");
    let dk = OaepPrivateDecryptingKey::new(pk).expect("oaep");
    let mut out = vec![0u8; dk.min_output_size()];
    let pt = dk.decrypt(&OAEP_SHA1_MGF1SHA1, &raw, &mut out, None).expect("decrypt");
    assert_eq!(pt, b"13800138000");
    let key = [7u8; 32];
    let c = aes_gcm_encrypt(&key, "0123456789ab", "certificate", b"PEM").expect("seal");
    assert_eq!(aes_gcm_decrypt(&key, "0123456789ab", "certificate", &c).expect("open"), b"PEM");
    assert!(aes_gcm_decrypt(&key, "0123456789ab", "other", &c).is_err());
}

/// The same key and message signed by the `openssl` CLI give the same bytes
/// (PKCS#1 v1.5 is deterministic).
#[test]
fn b_signature_matches_openssl_cli() {
    let (s, pem) = signer();
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("k.pem");
    let msg = dir.path().join("m.txt");
    let text = "POST\n/v3/offlineface/transactions\n1800000000\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\n{\"a\":1}\n";
    std::fs::write(&key, &pem).expect("write key");
    std::fs::write(&msg, text).expect("write msg");
    let out =
        match std::process::Command::new("openssl").args(["dgst", "-sha256", "-sign"]).arg(&key).arg(&msg).output() {
            Ok(o) if o.status.success() => o.stdout,
            _ => {
                eprintln!("warning: openssl CLI not available; skipping the independent signature check");
                return;
            }
        };
    assert_eq!(B64.encode(out), s.sign(text.as_bytes()));
}

#[test]
fn b0_rfc3339_times_as_wechat_pay_writes_them() {
    assert_eq!(parse_rfc3339("1970-01-01T08:00:00+08:00"), Some(0));
    assert_eq!(parse_rfc3339("2025-01-01T00:00:00Z"), Some(1_735_689_600));
    assert_eq!(parse_rfc3339("2025-01-01T08:00:00.123+08:00"), Some(1_735_689_600));
    assert_eq!(parse_rfc3339("2024-02-29T12:00:00-01:30"), Some(1_709_213_400));
    for bad in ["", "2025-13-01T00:00:00Z", "2025-01-01 00:00:00Z", "2025-01-01T00:00:00", "2025-01-01T00:00:00+0800"] {
        assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
    }
}

#[test]
fn b0_public_key_and_certificates_at_once_newest_certificate_in_effect() {
    let (a, _) = signer();
    let (b, _) = signer();
    let (c, _) = signer();
    let keys = PlatformKeys::new();
    let now = 1_800_000_000;
    keys.insert_certificate("AA01", a.public_key_der(), CertValidity { effective: now - 1000, expires: now + 1000 });
    keys.insert_certificate("AA02", b.public_key_der(), CertValidity { effective: now - 10, expires: now + 5000 });
    // Not in effect yet: never chosen.
    keys.insert_certificate("AA03", c.public_key_der(), CertValidity { effective: now + 100, expires: now + 9000 });
    assert_eq!(keys.current(now).map(|k| k.0).as_deref(), Some("AA02"), "the newest by effective time");
    assert_eq!(keys.drop_expired(now + 2000), 1, "AA01 expired");
    assert!(keys.get("AA01").is_none() && keys.get("AA02").is_some());
    // Both modes at once: the public key is named, and every key still verifies.
    keys.insert("PUB_KEY_ID_0001", c.public_key_der());
    assert_eq!(keys.current(now).map(|k| k.0).as_deref(), Some("PUB_KEY_ID_0001"));
    let body = "{}";
    let mut sig = signed(&b, body, now);
    sig.serial = Some("AA02".into());
    keys.verify(&sig, body.as_bytes(), now).expect("a certificate-signed answer verifies beside the public key");
    let mut sig = signed(&c, body, now);
    sig.serial = Some("PUB_KEY_ID_0001".into());
    keys.verify(&sig, body.as_bytes(), now).expect("a key-signed answer verifies");
    assert!(keys.has_certificates());
}
