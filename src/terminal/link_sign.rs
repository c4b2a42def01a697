//! The terminal's half of device authentication (SPEC S1): a [`DeviceSigner`] holds the
//! device id and the credential issued at enrolment (`facepay backend devices add`) and
//! signs every request to the merchant backend at the moment it is sent, with a fresh
//! nonce and the current wall time of its [`Clock`] — so a request the outbox retries is
//! signed again, never replayed. The credential is a [`Secret`]: it never reaches a log
//! line, a `Debug` output or an error.

use std::sync::Arc;

use crate::clock::{unix_s, Clock};
use crate::error::{Error, Result, Secret};
use crate::wire::auth;

pub struct DeviceSigner {
    device_id: String,
    credential: Secret,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DeviceSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSigner").field("device_id", &self.device_id).finish_non_exhaustive()
    }
}

impl DeviceSigner {
    /// Refuses a credential that does not have the enrolment form (names the field only).
    pub fn new(device_id: &str, credential: Secret, clock: Arc<dyn Clock>) -> Result<DeviceSigner> {
        crate::config::check_field("device_id", device_id)?;
        if !auth::is_credential(credential.expose()) {
            return Err(Error::invalid_config(
                "device_credential",
                "not a device credential (issued by `facepay backend devices add`)",
            ));
        }
        Ok(DeviceSigner { device_id: device_id.into(), credential, clock })
    }

    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The `Authorization` value for this request, signed now with a fresh nonce.
    pub fn authorization(&self, method: &str, path_and_query: &str, body: &[u8]) -> String {
        let now = unix_s(self.clock.wall());
        auth::authorization(&self.credential, &self.device_id, method, path_and_query, body, now, &auth::new_nonce())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn s1_every_signature_is_fresh_and_verifies() {
        let cred = Secret::new(format!("{}{}", auth::CREDENTIAL_PREFIX, "0f".repeat(32)));
        let clock = Arc::new(ManualClock::at_unix_s(1_800_000_000));
        let s = DeviceSigner::new("dev-1", cred.clone(), clock).expect("signer");
        let (a, b) = (s.authorization("GET", "/p", b""), s.authorization("GET", "/p", b""));
        assert_ne!(a, b, "a retry is signed again with a new nonce");
        let p = auth::parse(&a).expect("parse");
        assert_eq!(p.timestamp, 1_800_000_000);
        assert!(auth::verify(&cred, &p, "GET", "/p", b""));
        assert!(!format!("{s:?}").contains(cred.expose()));
        let e = DeviceSigner::new("dev-1", Secret::new("1234"), Arc::new(ManualClock::at_unix_s(1))).unwrap_err();
        assert!(e.to_string().contains("device_credential") && !e.to_string().contains("1234"));
    }
}
