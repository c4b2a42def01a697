//! Request and response bodies of the offline-face endpoints of API v3 (SPEC B1–B5,
//! field names as in API-NOTES §2). Sensitive fields (name, phone, id number) are
//! [`Secret`] and are OAEP-encrypted by the client before they are sent.

use serde::{Deserialize, Serialize};

use crate::error::Secret;

/// B1 `POST /v3/offlinefacemch/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    pub scene: String,
    pub web_init_data: WebInitData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebInitData {
    pub out_user_id: String,
    pub organization_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token: Secret,
}

/// B2 `PATCH …/users/out-user-id/{out_user_id}` body (plain values; the client encrypts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub student_info: Option<StudentInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_info: Option<StaffInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudentInfo {
    pub class_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffInfo {
    pub occupation: String,
}

/// B3 `POST /v3/offlineface/authinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthInfoCall {
    pub sp_appid: String,
    pub sub_mchid: String,
    pub device_id: String,
    pub raw_data: String,
    pub organization_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_appid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthInfoAnswer {
    pub authinfo: Secret,
}

/// B4 `POST /v3/offlineface/contracts/presign`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignRequest {
    pub business_name: String,
    pub facepay_user: FacepayUser,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_bank_card: Option<serde_json::Value>,
    pub contract_mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacepayUser {
    pub out_user_id: String,
    pub identification_name: Secret,
    pub identification_number: Secret,
    pub phone: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignAnswer {
    pub presign_token: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub total: u64,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Business {
    pub business_product_id: u32,
    pub business_scene_id: u32,
}

/// B5 `POST /v3/offlineface/transactions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRequest {
    pub auth_code: Secret,
    pub sp_appid: String,
    pub sp_mchid: String,
    pub sub_mchid: String,
    pub amount: Amount,
    pub description: String,
    /// Our payment id: lets the ledger tie every order to one payment.
    pub attach: String,
    pub out_trade_no: String,
    pub business: Business,
}

/// The trade states of B5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradeState {
    Success,
    Refund,
    Notpay,
    Closed,
    Revoked,
    Userpaying,
    Payerror,
}

/// B5 answer (also the order query's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub out_trade_no: String,
    pub trade_state: TradeState,
    #[serde(default)]
    pub trade_state_description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
}

/// Error body of every endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub code: String,
    pub message: String,
}

/// `GET /v3/certificates` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateList {
    pub data: Vec<CertificateEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateEntry {
    pub serial_no: String,
    pub effective_time: String,
    pub expire_time: String,
    pub encrypt_certificate: EncryptCertificate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptCertificate {
    pub algorithm: String,
    pub nonce: String,
    pub associated_data: String,
    pub ciphertext: String,
}
