//! WeChat Pay notifications (SPEC B7, API-NOTES §2): the standard API v3 envelope
//! `{id, create_time, event_type, resource_type, summary, resource{algorithm
//! AEAD_AES_256_GCM, ciphertext, nonce, associated_data, original_type}}`, signed like an
//! answer (`Wechatpay-Timestamp / -Nonce / -Signature / -Serial`, ±300 s, no probe) and
//! encrypted with the APIv3 key. [`open`] verifies, decrypts and parses one
//! `FACEPAY.USER_STATE_CHANGE`; every refusal is a [`NotifyError`] whose text names the
//! reason and never a field of the resource. [`seal`] builds one (the mock's side).

use serde::{Deserialize, Serialize};

use super::sign::{self, MerchantSigner, PlatformKeys, ResponseSignature};
use super::MerchantError;

/// The contract notification of B7.
pub const USER_STATE_CHANGE: &str = "FACEPAY.USER_STATE_CHANGE";
pub const AEAD_AES_256_GCM: &str = "AEAD_AES_256_GCM";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    pub create_time: String,
    pub event_type: String,
    pub resource_type: String,
    #[serde(default)]
    pub summary: String,
    pub resource: Resource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub algorithm: String,
    pub ciphertext: String,
    pub nonce: String,
    #[serde(default)]
    pub associated_data: String,
    #[serde(default)]
    pub original_type: String,
}

/// The decrypted resource of `FACEPAY.USER_STATE_CHANGE`. `openid` identifies a person:
/// it is never logged. `contract_state` is read when present; the documented resource does
/// not list it, so the receiver asks the user query when it is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserStateChange {
    pub user_id: String,
    pub out_user_id: String,
    pub organization_id: String,
    pub mch_id: String,
    #[serde(default)]
    pub notify_create_time: String,
    #[serde(default)]
    pub appid: String,
    #[serde(default)]
    pub openid: String,
    #[serde(default)]
    pub contract_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_state: Option<String>,
}

/// Why a notification is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Unsigned, forged, stale (more than 300 s off), a probe.
    #[error("notification signature: {0}")]
    Signature(String),
    /// Signed by a key we do not hold (certificates mode refreshes on this).
    #[error("notification signed by an unknown platform key")]
    UnknownSerial,
    /// The resource does not decrypt with the APIv3 key.
    #[error("notification resource does not decrypt with the APIv3 key")]
    Decrypt,
    /// The envelope or the resource is not the documented shape.
    #[error("notification is not the documented shape")]
    Malformed,
    /// An event this receiver does not handle.
    #[error("notification event type {0:?} is not handled here")]
    UnknownEvent(String),
}

/// Verifies, decrypts and parses one notification (B7).
pub fn open(
    keys: &PlatformKeys,
    apiv3_key: &[u8],
    sig: &ResponseSignature,
    body: &[u8],
    now_unix: u64,
) -> Result<(Envelope, UserStateChange), NotifyError> {
    match keys.verify(sig, body, now_unix) {
        Ok(()) => {}
        Err(MerchantError::UnknownSerial(_)) => return Err(NotifyError::UnknownSerial),
        Err(MerchantError::Signature(m)) => return Err(NotifyError::Signature(m)),
        Err(_) => return Err(NotifyError::Signature("does not verify".into())),
    }
    let env: Envelope = serde_json::from_slice(body).map_err(|_| NotifyError::Malformed)?;
    if env.event_type != USER_STATE_CHANGE {
        // Only the event type (a fixed code, no personal data) is echoed.
        return Err(NotifyError::UnknownEvent(env.event_type.chars().take(64).collect()));
    }
    if env.resource.algorithm != AEAD_AES_256_GCM {
        return Err(NotifyError::Malformed);
    }
    let r = &env.resource;
    let plain = sign::aes_gcm_decrypt(apiv3_key, &r.nonce, &r.associated_data, &r.ciphertext)
        .map_err(|_| NotifyError::Decrypt)?;
    let change: UserStateChange = serde_json::from_slice(&plain).map_err(|_| NotifyError::Malformed)?;
    Ok((env, change))
}

/// Header name and value pairs of one notification.
pub type Headers = Vec<(&'static str, String)>;

/// One signed, encrypted notification: `(headers, body)` as WeChat Pay sends it.
pub fn seal(
    platform: &MerchantSigner,
    serial: &str,
    apiv3_key: &[u8],
    id: &str,
    event_type: &str,
    resource: &serde_json::Value,
    now_unix: u64,
) -> Result<(Headers, String), MerchantError> {
    let nonce = &sign::nonce()[..12];
    let aad = "facepay_user";
    let ciphertext = sign::aes_gcm_encrypt(apiv3_key, nonce, aad, resource.to_string().as_bytes())?;
    let env = Envelope {
        id: id.into(),
        create_time: "2026-01-01T12:00:00+08:00".into(),
        event_type: event_type.into(),
        resource_type: "encrypt-resource".into(),
        summary: "用户签约状态变更".into(),
        resource: Resource {
            algorithm: AEAD_AES_256_GCM.into(),
            ciphertext,
            nonce: nonce.into(),
            associated_data: aad.into(),
            original_type: "facepay_user".into(),
        },
    };
    let body = serde_json::to_string(&env)?;
    let ts = now_unix.to_string();
    let hnonce = sign::nonce();
    let signature = platform.sign(format!("{ts}\n{hnonce}\n{body}\n").as_bytes());
    let headers = vec![
        ("wechatpay-timestamp", ts),
        ("wechatpay-nonce", hnonce),
        ("wechatpay-signature", signature),
        ("wechatpay-serial", serial.to_string()),
        ("wechatpay-signature-type", sign::SCHEME.to_string()),
        ("content-type", "application/json".to_string()),
    ];
    Ok((headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn setup() -> (MerchantSigner, PlatformKeys) {
        let s = MerchantSigner::from_pem("1", "", &crate::merchant::generate_test_key_pem()).expect("key");
        let keys = PlatformKeys::new();
        keys.insert("PUB_KEY_ID_01", s.public_key_der());
        (s, keys)
    }

    fn resource() -> serde_json::Value {
        serde_json::json!({"user_id": "wxu1", "out_user_id": "ou1", "organization_id": "org1", "mch_id": "1900000100",
            "notify_create_time": "2026-01-01T12:00:00+08:00", "appid": "wx1", "openid": "o-secret", "contract_id": "c1"})
    }

    fn sig_of(h: &[(&'static str, String)]) -> ResponseSignature {
        let g = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
        ResponseSignature {
            timestamp: g("wechatpay-timestamp"),
            nonce: g("wechatpay-nonce"),
            signature: g("wechatpay-signature"),
            serial: g("wechatpay-serial"),
        }
    }

    #[test]
    fn b7_notification_verifies_decrypts_and_parses() {
        let (s, keys) = setup();
        let now = 1_800_000_000;
        let (h, body) = seal(&s, "PUB_KEY_ID_01", KEY, "n1", USER_STATE_CHANGE, &resource(), now).expect("seal");
        let (env, change) = open(&keys, KEY, &sig_of(&h), body.as_bytes(), now).expect("open");
        assert_eq!((env.id.as_str(), change.out_user_id.as_str(), change.contract_state), ("n1", "ou1", None));
    }

    #[test]
    fn b7_bad_notifications_are_refused_with_a_reason_and_no_personal_data() {
        let (s, keys) = setup();
        let now = 1_800_000_000;
        let (h, body) = seal(&s, "PUB_KEY_ID_01", KEY, "n1", USER_STATE_CHANGE, &resource(), now).expect("seal");
        // bad signature: the body changed after signing
        let tampered = body.replace("n1", "n2");
        assert!(matches!(open(&keys, KEY, &sig_of(&h), tampered.as_bytes(), now), Err(NotifyError::Signature(_))));
        // stale timestamp
        assert!(matches!(open(&keys, KEY, &sig_of(&h), body.as_bytes(), now + 301), Err(NotifyError::Signature(_))));
        // wrong APIv3 key
        let other = b"ffffffffffffffffffffffffffffffff";
        assert_eq!(open(&keys, other, &sig_of(&h), body.as_bytes(), now), Err(NotifyError::Decrypt));
        // unknown event type
        let (h2, b2) = seal(&s, "PUB_KEY_ID_01", KEY, "n3", "TRANSACTION.SUCCESS", &resource(), now).expect("seal");
        assert!(matches!(open(&keys, KEY, &sig_of(&h2), b2.as_bytes(), now), Err(NotifyError::UnknownEvent(_))));
        // malformed resource, validly signed and encrypted
        let (h3, b3) =
            seal(&s, "PUB_KEY_ID_01", KEY, "n4", USER_STATE_CHANGE, &serde_json::json!({"x": 1}), now).expect("seal");
        assert_eq!(open(&keys, KEY, &sig_of(&h3), b3.as_bytes(), now), Err(NotifyError::Malformed));
        // malformed JSON, validly signed
        let ts = now.to_string();
        let junk = "{not json";
        let mut sig = sig_of(&h);
        sig.timestamp = Some(ts.clone());
        sig.signature = Some(s.sign(format!("{ts}\n{}\n{junk}\n", sig.nonce.clone().expect("nonce")).as_bytes()));
        assert_eq!(open(&keys, KEY, &sig, junk.as_bytes(), now), Err(NotifyError::Malformed));
        // unknown serial
        let mut u = sig_of(&h);
        u.serial = Some("PUB_KEY_ID_99".into());
        assert_eq!(open(&keys, KEY, &u, body.as_bytes(), now), Err(NotifyError::UnknownSerial));
        for e in [NotifyError::Decrypt, NotifyError::Malformed, NotifyError::UnknownEvent("X".into())] {
            assert!(!e.to_string().contains("o-secret") && !e.to_string().contains("ou1"));
        }
    }
}
