//! The little X.509 the certificates mode of API-NOTES §2 needs: read the serial number
//! and the SubjectPublicKeyInfo out of a platform certificate (DER), and — for the mock —
//! build a self-signed RSA certificate. The certificate's authenticity comes from the
//! AES-256-GCM envelope keyed by the APIv3 key (only WeChat Pay and the merchant know it)
//! and from the signed `/v3/certificates` response, as in the official SDKs.

use super::MerchantError;

fn bad(w: &str) -> MerchantError {
    MerchantError::Key(format!("certificate: {w}"))
}

/// One DER element: `(tag, whole element, content, rest)`.
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn tlv(input: &[u8]) -> Result<Tlv<'_>, MerchantError> {
    let (&tag, rest) = input.split_first().ok_or_else(|| bad("truncated"))?;
    let (&l0, rest) = rest.split_first().ok_or_else(|| bad("truncated"))?;
    let (len, rest) = if l0 < 0x80 {
        (l0 as usize, rest)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad("bad length"));
        }
        (rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize), &rest[n..])
    };
    if rest.len() < len {
        return Err(bad("truncated"));
    }
    let header = input.len() - rest.len();
    Ok((tag, &input[..header + len], &rest[..len], &rest[len..]))
}

/// What the certificates mode needs from a platform certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Upper-case hex, no leading zero byte: the form of `Wechatpay-Serial`.
    pub serial_hex: String,
    /// SubjectPublicKeyInfo DER.
    pub spki_der: Vec<u8>,
}

/// Reads serial and public key from a DER certificate.
pub fn parse_certificate(der: &[u8]) -> Result<CertInfo, MerchantError> {
    let (t, _, cert, _) = tlv(der)?;
    let (t2, _, tbs, _) = tlv(cert)?;
    if t != 0x30 || t2 != 0x30 {
        return Err(bad("not a certificate"));
    }
    let mut rest = tbs;
    let (mut tag, _, mut content, mut next) = tlv(rest)?;
    if tag == 0xA0 {
        rest = next;
        (tag, _, content, next) = tlv(rest)?;
    }
    if tag != 0x02 {
        return Err(bad("no serial number"));
    }
    let serial = content.iter().skip_while(|&&b| b == 0).copied().collect::<Vec<u8>>();
    rest = next;
    for _ in 0..4 {
        // signature algorithm, issuer, validity, subject
        rest = tlv(rest)?.3;
    }
    let (tag, spki, _, _) = tlv(rest)?;
    if tag != 0x30 {
        return Err(bad("no public key"));
    }
    Ok(CertInfo { serial_hex: hex::encode_upper(serial), spki_der: spki.to_vec() })
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        v.push(0x80 | bytes.len() as u8);
        v.extend(bytes);
    }
    v.extend_from_slice(content);
    v
}

/// A self-signed RSA certificate (sha256WithRSAEncryption) with this serial: the mock's
/// platform certificate.
pub fn self_signed(key: &super::sign::MerchantSigner, serial: &[u8], common_name: &str) -> Vec<u8> {
    use base64::Engine as _;
    let alg =
        der(0x30, &[&[0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B][..], &[0x05, 0x00]].concat());
    let name = der(
        0x30,
        &der(0x31, &der(0x30, &[der(0x06, &[0x55, 0x04, 0x03]), der(0x0C, common_name.as_bytes())].concat())),
    );
    let validity = der(0x30, &[der(0x17, b"250101000000Z"), der(0x17, b"491231235959Z")].concat());
    let mut serial_int = serial.to_vec();
    if serial_int.first().is_some_and(|&b| b & 0x80 != 0) {
        serial_int.insert(0, 0);
    }
    let tbs = der(
        0x30,
        &[
            der(0xA0, &der(0x02, &[2])),
            der(0x02, &serial_int),
            alg.clone(),
            name.clone(),
            validity,
            name,
            key.public_key_der(),
        ]
        .concat(),
    );
    let sig = base64::engine::general_purpose::STANDARD.decode(key.sign(&tbs)).expect("own base64");
    let mut bits = vec![0u8];
    bits.extend(sig);
    der(0x30, &[tbs, alg, der(0x03, &bits)].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b_certificate_roundtrip_serial_and_key() {
        let pem = crate::merchant::generate_test_key_pem();
        let s = crate::merchant::sign::MerchantSigner::from_pem("1", "x", &pem).expect("key");
        let cert = self_signed(&s, &[0x9F, 0x01, 0x02], "Tenpay.com Root CA test");
        let info = parse_certificate(&cert).expect("parse");
        assert_eq!(info.serial_hex, "9F0102");
        assert_eq!(info.spki_der, s.public_key_der());
        assert!(parse_certificate(&cert[..cert.len() / 2]).is_err());
    }

    #[test]
    fn b_certificate_parses_with_openssl_when_present() {
        let pem = crate::merchant::generate_test_key_pem();
        let s = crate::merchant::sign::MerchantSigner::from_pem("1", "x", &pem).expect("key");
        let cert = self_signed(&s, &[0x12, 0x34], "mock");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.der");
        std::fs::write(&p, &cert).expect("write");
        match std::process::Command::new("openssl")
            .args(["x509", "-inform", "DER", "-noout", "-serial", "-in"])
            .arg(&p)
            .output()
        {
            Ok(o) => assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "serial=1234"),
            Err(_) => eprintln!("warning: openssl not found; skipping the independent certificate check"),
        }
    }
}
