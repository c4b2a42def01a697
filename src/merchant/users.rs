//! The out_user_id registry (SPEC B6): one `out_user_id` per user per organisation,
//! enforced by a primary key in SQLite, never a second one for the same user; and the
//! sync of user changes (name, class, phone, status) through B2 at once.

use rusqlite::{params, OptionalExtension};

use super::client::WechatPayClient;
use super::models::UserUpdate;
use super::MerchantError;
use crate::store::Store;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mch_users (
  organization_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  out_user_id TEXT NOT NULL,
  PRIMARY KEY (organization_id, user_id),
  UNIQUE (organization_id, out_user_id));
";

pub struct UserRegistry {
    store: Store,
}

impl UserRegistry {
    pub fn new(store: Store) -> Result<Self, MerchantError> {
        store.ensure_schema(SCHEMA)?;
        Ok(UserRegistry { store })
    }

    /// B6: the user's out_user_id in this organisation, created once and never again.
    pub fn out_user_id(&self, organization_id: &str, user_id: &str) -> Result<String, MerchantError> {
        let c = self.store.conn();
        let q = "SELECT out_user_id FROM mch_users WHERE organization_id = ?1 AND user_id = ?2";
        if let Some(id) = c.query_row(q, params![organization_id, user_id], |r| r.get(0)).optional()? {
            return Ok(id);
        }
        let id = format!("ou_{}", &super::sign::nonce()[..20]);
        c.prepare_cached(
            "INSERT OR IGNORE INTO mch_users (organization_id, user_id, out_user_id) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![organization_id, user_id, id])?;
        Ok(c.query_row(q, params![organization_id, user_id], |r| r.get(0))?)
    }

    /// B6: binds an out_user_id that already exists at WeChat Pay; refuses a second id
    /// for the same user and an id already held by another user.
    pub fn bind(&self, organization_id: &str, user_id: &str, out_user_id: &str) -> Result<(), MerchantError> {
        let c = self.store.conn();
        let held: Option<String> = c
            .prepare_cached("SELECT out_user_id FROM mch_users WHERE organization_id = ?1 AND user_id = ?2")?
            .query_row(params![organization_id, user_id], |r| r.get(0))
            .optional()?;
        match held {
            Some(h) if h == out_user_id => Ok(()),
            Some(_) => {
                Err(MerchantError::Mismatch("B6: this user already has an out_user_id in this organisation".into()))
            }
            None => c
                .prepare_cached("INSERT INTO mch_users (organization_id, user_id, out_user_id) VALUES (?1, ?2, ?3)")?
                .execute(params![organization_id, user_id, out_user_id])
                .map(|_| ())
                .map_err(|_| MerchantError::Mismatch("B6: out_user_id already belongs to another user".into())),
        }
    }

    /// B2: syncs a change of the user at once (name, class, phone, status).
    pub async fn sync(
        &self,
        client: &WechatPayClient,
        organization_id: &str,
        user_id: &str,
        change: &UserUpdate,
    ) -> Result<(), MerchantError> {
        let out = self.out_user_id(organization_id, user_id)?;
        client.update_user(organization_id, &out, change).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StorePath;

    #[test]
    fn b6_one_out_user_id_per_user_per_organisation() {
        let r = UserRegistry::new(Store::open(&StorePath::Memory).expect("store")).expect("schema");
        let a = r.out_user_id("org1", "u1").expect("id");
        assert_eq!(r.out_user_id("org1", "u1").expect("id"), a);
        assert_ne!(r.out_user_id("org2", "u1").expect("id"), a);
        assert!(r.bind("org1", "u1", "other").is_err());
        assert!(r.bind("org1", "u2", &a).is_err());
        r.bind("org1", "u1", &a).expect("same binding is fine");
    }
}
