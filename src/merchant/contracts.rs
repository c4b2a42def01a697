//! The offline-face endpoints beyond B1–B5 (SPEC B7, API-NOTES §2 "More offline-face
//! endpoints") and the contract-state registry. Client calls: the user query (B2 path,
//! `GET` → `contract_state`, `face_image_ok`, `contract_id`), terminate contract, the
//! contract query, the repayment URL of a K12 debt (B5.2), the organisations query (T3.5)
//! and the face collections. The registry keeps each user's last known contract state in
//! the backend's store (table `mch_contracts`) and the ids of the notifications applied
//! (table `mch_notifications`), so a `FACEPAY.USER_STATE_CHANGE` is applied once and a
//! deduction for a user known to be terminated is refused before it is sent (B7).

use reqwest::Method;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::client::WechatPayClient;
use super::MerchantError;

/// The refusal of a deduction for a user whose contract is known to be terminated (B7).
pub const CODE_CONTRACT_TERMINATED: &str = "CONTRACT_TERMINATED";
/// The contract state that refuses a deduction; any other (or none known) does not.
pub const STATE_TERMINATED: &str = "TERMINATED";

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mch_contracts (
  organization_id TEXT NOT NULL,
  out_user_id TEXT NOT NULL,
  user_id TEXT,
  contract_id TEXT,
  contract_state TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (organization_id, out_user_id));
CREATE TABLE IF NOT EXISTS mch_notifications (
  id TEXT PRIMARY KEY NOT NULL,
  event_type TEXT NOT NULL,
  received_at INTEGER NOT NULL);
";

/// `GET /v3/offlinefacemch/organizations/{organization_id}/users/out-user-id/{out_user_id}`.
/// Personal fields (name, phone) are not read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserQueryAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default)]
    pub out_user_id: String,
    #[serde(default)]
    pub organization_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_image_ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_id: Option<String>,
}

/// `GET /v3/offlineface/contracts/{contract_id}?appid=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractAnswer {
    pub contract_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_signed_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_terminated_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_mode: Option<String>,
}

/// `POST /v3/offlineface/repayment-url` body and answer (B5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepaymentUrlRequest {
    pub out_user_id: String,
    pub organization_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepaymentUrlAnswer {
    pub repayment_url: String,
    #[serde(default)]
    pub expire_at: String,
}

/// `GET /v3/offlinefacemch/organizations?organization_id=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationAnswer {
    pub organization_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
}

/// One face collection (`GET /v3/offlineface/face-collections/{collection_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceCollection {
    pub collection_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_state: Option<String>,
}

/// `GET /v3/offlineface/face-collections?organization_id=&offset=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceCollectionList {
    #[serde(default)]
    pub data: Vec<FaceCollection>,
    #[serde(default)]
    pub total_count: u64,
    #[serde(default)]
    pub offset: u64,
    #[serde(default)]
    pub limit: u64,
}

/// Path segments and query values are ids of `[A-Za-z0-9_-]`; anything else is refused
/// before it can change the path that is signed.
fn id(name: &str, v: &str) -> Result<(), MerchantError> {
    if v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(MerchantError::Config(format!("{name}: 1-64 characters of [A-Za-z0-9_-]")));
    }
    Ok(())
}

impl WechatPayClient {
    /// B7 user query: contract state, face image, contract id.
    pub async fn query_user(&self, organization_id: &str, out_user_id: &str) -> Result<UserQueryAnswer, MerchantError> {
        id("organization_id", organization_id)?;
        id("out_user_id", out_user_id)?;
        let path = format!("/v3/offlinefacemch/organizations/{organization_id}/users/out-user-id/{out_user_id}");
        Ok(self.answered(Method::GET, &path, None::<&()>).await?.value)
    }

    /// B7 terminate contract (`user_id` is WeChat Pay's id of the user); answers 204.
    pub async fn terminate_contract(&self, organization_id: &str, user_id: &str) -> Result<(), MerchantError> {
        id("organization_id", organization_id)?;
        id("user_id", user_id)?;
        let path =
            format!("/v3/offlinefacemch/organizations/{organization_id}/users/user-id/{user_id}/terminate-contract");
        self.empty(Method::POST, &path, None).await
    }

    /// B7 contract query.
    pub async fn query_contract(&self, contract_id: &str, appid: &str) -> Result<ContractAnswer, MerchantError> {
        id("contract_id", contract_id)?;
        id("appid", appid)?;
        let path = format!("/v3/offlineface/contracts/{contract_id}?appid={appid}");
        Ok(self.answered(Method::GET, &path, None::<&()>).await?.value)
    }

    /// B5.2 the page where a K12 user repays a debt.
    pub async fn repayment_url(
        &self,
        organization_id: &str,
        out_user_id: &str,
    ) -> Result<RepaymentUrlAnswer, MerchantError> {
        let req = RepaymentUrlRequest { out_user_id: out_user_id.into(), organization_id: organization_id.into() };
        Ok(self.answered(Method::POST, "/v3/offlineface/repayment-url", Some(&req)).await?.value)
    }

    /// T3.5 organisations query: `Ok(Some)` when WeChat Pay knows the organisation under
    /// this merchant, `Ok(None)` when it answers that it does not (400 / 403 / 404).
    pub async fn query_organization(&self, organization_id: &str) -> Result<Option<OrganizationAnswer>, MerchantError> {
        id("organization_id", organization_id)?;
        let path = format!("/v3/offlinefacemch/organizations?organization_id={organization_id}");
        match self.answered(Method::GET, &path, None::<&()>).await {
            Ok(a) => Ok(Some(a.value)),
            Err(MerchantError::Api { status: 400 | 403 | 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Face collections of an organisation, one page.
    pub async fn face_collections(
        &self,
        organization_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<FaceCollectionList, MerchantError> {
        id("organization_id", organization_id)?;
        let path =
            format!("/v3/offlineface/face-collections?organization_id={organization_id}&offset={offset}&limit={limit}");
        Ok(self.answered(Method::GET, &path, None::<&()>).await?.value)
    }

    /// One face collection.
    pub async fn face_collection(
        &self,
        organization_id: &str,
        collection_id: &str,
    ) -> Result<FaceCollection, MerchantError> {
        id("organization_id", organization_id)?;
        id("collection_id", collection_id)?;
        let path = format!("/v3/offlineface/face-collections/{collection_id}?organization_id={organization_id}");
        Ok(self.answered(Method::GET, &path, None::<&()>).await?.value)
    }
}

/// One user's contract as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContractRecord {
    pub organization_id: String,
    pub out_user_id: String,
    pub user_id: Option<String>,
    pub contract_id: Option<String>,
    pub contract_state: String,
    pub updated_at: u64,
}

/// The last known contract state of a user (B7); `None` when none is known.
pub fn state(c: &Connection, organization_id: &str, out_user_id: &str) -> Result<Option<String>, MerchantError> {
    Ok(c.prepare_cached("SELECT contract_state FROM mch_contracts WHERE organization_id = ?1 AND out_user_id = ?2")?
        .query_row(params![organization_id, out_user_id], |r| r.get(0))
        .optional()?)
}

/// Records a user's contract state (from a user query or a notification).
pub fn record(c: &Connection, r: &ContractRecord) -> Result<(), MerchantError> {
    c.prepare_cached(
        "INSERT INTO mch_contracts (organization_id, out_user_id, user_id, contract_id, contract_state, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(organization_id, out_user_id) DO UPDATE SET
           user_id = COALESCE(excluded.user_id, user_id), contract_id = COALESCE(excluded.contract_id, contract_id),
           contract_state = excluded.contract_state, updated_at = excluded.updated_at",
    )?
    .execute(params![
        r.organization_id,
        r.out_user_id,
        r.user_id,
        r.contract_id,
        r.contract_state,
        r.updated_at as i64
    ])?;
    Ok(())
}

/// Marks a user terminated by WeChat Pay's `user_id` (after a terminate-contract answered
/// 204); returns whether the registry knew the user.
pub fn mark_terminated(c: &Connection, organization_id: &str, user_id: &str, now: u64) -> Result<bool, MerchantError> {
    Ok(c.prepare_cached(
        "UPDATE mch_contracts SET contract_state = ?3, updated_at = ?4 WHERE organization_id = ?1 AND user_id = ?2",
    )?
    .execute(params![organization_id, user_id, STATE_TERMINATED, now as i64])?
        > 0)
}

/// Applies a notification once: records its id and the contract in one transaction.
/// `Ok(false)` when the id was applied before (a replay changes nothing).
pub fn apply_once(
    c: &mut Connection,
    notification_id: &str,
    event_type: &str,
    r: &ContractRecord,
) -> Result<bool, MerchantError> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let fresh = tx
        .prepare_cached("INSERT OR IGNORE INTO mch_notifications (id, event_type, received_at) VALUES (?1, ?2, ?3)")?
        .execute(params![notification_id, event_type, r.updated_at as i64])?
        == 1;
    if fresh {
        record(&tx, r)?;
    }
    tx.commit()?;
    Ok(fresh)
}

/// Whether a notification id was applied.
pub fn applied(c: &Connection, notification_id: &str) -> Result<bool, MerchantError> {
    Ok(c.prepare_cached("SELECT 1 FROM mch_notifications WHERE id = ?1")?
        .query_row([notification_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Every contract known (operator view).
pub fn list(c: &Connection) -> Result<Vec<ContractRecord>, MerchantError> {
    let mut s = c.prepare(
        "SELECT organization_id, out_user_id, user_id, contract_id, contract_state, updated_at FROM mch_contracts ORDER BY 1, 2",
    )?;
    let v = s
        .query_map([], |r| {
            Ok(ContractRecord {
                organization_id: r.get(0)?,
                out_user_id: r.get(1)?,
                user_id: r.get(2)?,
                contract_id: r.get(3)?,
                contract_state: r.get(4)?,
                updated_at: r.get::<_, i64>(5)? as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StorePath};

    fn rec(state: &str, at: u64) -> ContractRecord {
        ContractRecord {
            organization_id: "org1".into(),
            out_user_id: "ou1".into(),
            user_id: Some("wxu1".into()),
            contract_id: None,
            contract_state: state.into(),
            updated_at: at,
        }
    }

    #[test]
    fn b7_a_notification_is_applied_once() {
        let mut s = Store::open(&StorePath::Memory).expect("store");
        s.ensure_schema(SCHEMA).expect("schema");
        assert_eq!(state(s.conn(), "org1", "ou1").expect("state"), None, "nothing known yet");
        assert!(apply_once(s.conn_mut(), "n1", "FACEPAY.USER_STATE_CHANGE", &rec("SIGNED", 1)).expect("apply"));
        assert!(apply_once(s.conn_mut(), "n2", "FACEPAY.USER_STATE_CHANGE", &rec(STATE_TERMINATED, 2)).expect("apply"));
        // A replay of the first notification changes nothing.
        assert!(!apply_once(s.conn_mut(), "n1", "FACEPAY.USER_STATE_CHANGE", &rec("SIGNED", 3)).expect("replay"));
        assert_eq!(state(s.conn(), "org1", "ou1").expect("state").as_deref(), Some(STATE_TERMINATED));
        assert!(applied(s.conn(), "n1").expect("applied"));
        assert_eq!(list(s.conn()).expect("list")[0].updated_at, 2);
    }

    #[test]
    fn b7_ids_that_would_change_the_signed_path_are_refused() {
        assert!(id("organization_id", "org-1_A").is_ok());
        for bad in ["", "a/b", "a?b=c", "a b", "../x"] {
            assert!(id("organization_id", bad).is_err(), "{bad:?}");
        }
    }
}
