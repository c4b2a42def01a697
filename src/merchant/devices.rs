//! The reference backend's enrolled terminals (SPEC S1, S2): `facepay backend devices
//! add|list|revoke`. Enrolment issues a device credential once (32 random bytes, shown to
//! the operator once and never again) bound to one device id and one organisation, with
//! an optional per-device amount limit. The backend verifies HMAC signatures with it, so it
//! must hold the key itself (a hash would not let it verify): the credential lives in the
//! backend's SQLite store, which is created owner-only (0600, `merchant::files`). Every
//! request reads the device row again, so a revocation from another process is effective
//! at the very next request.

use parking_lot::Mutex;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::MerchantError;
use crate::config::check_field;
use crate::error::Secret;
use crate::store::{Store, StorePath};
use crate::wire::auth::CREDENTIAL_PREFIX;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mch_devices (
  device_id TEXT PRIMARY KEY NOT NULL,
  organization_id TEXT NOT NULL,
  credential TEXT NOT NULL,
  max_amount_fen INTEGER,
  enrolled_at INTEGER NOT NULL,
  revoked_at INTEGER);
";

/// An enrolled device as the backend acts on it (no credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub device_id: String,
    pub organization_id: String,
    /// The device's own amount limit (fen); `None` = the configuration's default.
    pub max_amount_fen: Option<u64>,
    pub enrolled_at: u64,
    pub revoked_at: Option<u64>,
}

/// What a lookup finds: the device and its credential, or why there is none.
pub enum Lookup {
    Active(Device, Secret),
    Revoked,
    Unknown,
}

pub struct Registry {
    store: Mutex<Store>,
}

impl Registry {
    pub fn open(path: &StorePath) -> Result<Registry, MerchantError> {
        let store = Store::open(path)?;
        store.ensure_schema(SCHEMA)?;
        Ok(Registry { store: Mutex::new(store) })
    }

    /// Enrols a device and returns its credential — the only time it is ever shown. A
    /// device already enrolled (and not revoked) is refused: revoke it first.
    pub fn add(
        &self,
        device_id: &str,
        organization_id: &str,
        max_amount_fen: Option<u64>,
        now: u64,
    ) -> Result<Secret, MerchantError> {
        check_field("device_id", device_id).map_err(|e| MerchantError::Config(e.to_string()))?;
        check_field("organization", organization_id).map_err(|e| MerchantError::Config(e.to_string()))?;
        if max_amount_fen == Some(0) || max_amount_fen.is_some_and(|m| m > i64::MAX as u64) {
            return Err(MerchantError::Config("--max-amount must be a positive number of fen".into()));
        }
        let st = self.store.lock();
        let c = st.conn();
        let active: Option<Option<i64>> = c
            .query_row("SELECT revoked_at FROM mch_devices WHERE device_id = ?1", [device_id], |r| r.get(0))
            .optional()?;
        if matches!(active, Some(None)) {
            return Err(MerchantError::Config(format!("device {device_id} is already enrolled: revoke it first")));
        }
        let credential = Secret::new(format!("{CREDENTIAL_PREFIX}{}{}", super::sign::nonce(), super::sign::nonce()));
        c.execute(
            "INSERT INTO mch_devices (device_id, organization_id, credential, max_amount_fen, enrolled_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL)
             ON CONFLICT(device_id) DO UPDATE SET organization_id = excluded.organization_id,
               credential = excluded.credential, max_amount_fen = excluded.max_amount_fen,
               enrolled_at = excluded.enrolled_at, revoked_at = NULL",
            params![device_id, organization_id, credential.expose(), max_amount_fen.map(|m| m as i64), now as i64],
        )?;
        Ok(credential)
    }

    /// Revokes a device: its next request is refused. Unknown devices are an error.
    pub fn revoke(&self, device_id: &str, now: u64) -> Result<(), MerchantError> {
        let st = self.store.lock();
        let n = st.conn().execute(
            "UPDATE mch_devices SET revoked_at = ?2 WHERE device_id = ?1 AND revoked_at IS NULL",
            params![device_id, now as i64],
        )?;
        if n == 0 {
            return Err(MerchantError::Config(format!("no enrolled device {device_id}")));
        }
        Ok(())
    }

    /// Every device, revoked ones included (never a credential).
    pub fn list(&self) -> Result<Vec<Device>, MerchantError> {
        let st = self.store.lock();
        let mut s = st.conn().prepare(
            "SELECT device_id, organization_id, max_amount_fen, enrolled_at, revoked_at FROM mch_devices ORDER BY device_id",
        )?;
        let v = s.query_map([], row_device)?.collect::<Result<Vec<_>, _>>()?;
        Ok(v)
    }

    /// The device and its credential, read from the store on every call (S1: revocation
    /// is effective at once, even from another process).
    pub fn lookup(&self, device_id: &str) -> Result<Lookup, MerchantError> {
        let st = self.store.lock();
        let mut q = st.conn().prepare_cached(
            "SELECT device_id, organization_id, max_amount_fen, enrolled_at, revoked_at, credential
             FROM mch_devices WHERE device_id = ?1",
        )?;
        let row = q.query_row([device_id], |r| Ok((row_device(r)?, r.get::<_, String>(5)?))).optional()?;
        Ok(match row {
            None => Lookup::Unknown,
            Some((d, _)) if d.revoked_at.is_some() => Lookup::Revoked,
            Some((d, c)) => Lookup::Active(d, Secret::new(c)),
        })
    }
}

fn row_device(r: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        device_id: r.get(0)?,
        organization_id: r.get(1)?,
        max_amount_fen: r.get::<_, Option<i64>>(2)?.map(|m| m as u64),
        enrolled_at: r.get::<_, i64>(3)? as u64,
        revoked_at: r.get::<_, Option<i64>>(4)?.map(|t| t as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s1_enrol_once_revoke_at_once_re_enrol_with_a_new_credential() {
        let r = Registry::open(&StorePath::Memory).expect("open");
        let c1 = r.add("dev-1", "org-1", Some(5000), 10).expect("add");
        assert!(crate::wire::auth::is_credential(c1.expose()));
        assert!(r.add("dev-1", "org-1", None, 11).is_err(), "already enrolled");
        match r.lookup("dev-1").expect("lookup") {
            Lookup::Active(d, c) => {
                assert_eq!((d.organization_id.as_str(), d.max_amount_fen, c), ("org-1", Some(5000), c1.clone()))
            }
            _ => panic!("dev-1 is active"),
        }
        assert!(matches!(r.lookup("dev-2").expect("lookup"), Lookup::Unknown));
        r.revoke("dev-1", 12).expect("revoke");
        assert!(matches!(r.lookup("dev-1").expect("lookup"), Lookup::Revoked));
        assert!(r.revoke("dev-1", 13).is_err(), "revoked twice");
        let c2 = r.add("dev-1", "org-1", None, 14).expect("re-enrol");
        assert_ne!(c1, c2);
        let listed = serde_json::to_string(&r.list().expect("list")).expect("json");
        assert!(!listed.contains(c2.expose()) && listed.contains("dev-1"));
        assert!(r.add("", "org-1", None, 1).is_err() && r.add("d", "org", Some(0), 1).is_err());
    }
}
