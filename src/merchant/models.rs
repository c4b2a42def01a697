//! Request and response bodies of the offline-face endpoints of API v3 (SPEC B1–B5, B7,
//! field names as in API-NOTES §2). Sensitive fields (name, phone, id number, bank card)
//! are [`Secret`] and are OAEP-encrypted by the client before they are sent. Answers are
//! read tolerantly (B5.1/B5.2): an unknown trade state is [`TradeState::Unrecognized`]
//! (an unknown outcome, queried), not a parse error that would lose the payment.

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bank_card: Option<LimitBankCard>,
    /// `LIMIT_BANK_CARD` / `PRIORITY_BANK_CARD` / `LIMIT_NONE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_mode: Option<String>,
}

/// The id document of a presign, nested as the API has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identification {
    /// `IDCARD`.
    pub identification_type: String,
    pub identification_number: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacepayUser {
    pub out_user_id: String,
    pub organization_id: String,
    pub identification_name: Secret,
    pub identification: Identification,
    pub phone: Secret,
}

/// A chosen bank card of a presign (every personal field encrypted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitBankCard {
    pub bank_card_number: Secret,
    pub identification_name: Secret,
    pub identification: Identification,
    pub phone: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_thru: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_type: Option<String>,
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

/// `scene_info` of a deduction: the terminal's IP is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneInfo {
    pub device_ip: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleInfo {
    pub profit_sharing: bool,
}

/// B5 `POST /v3/offlineface/transactions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionRequest {
    pub auth_code: Secret,
    pub sp_appid: String,
    pub sp_mchid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_appid: Option<String>,
    pub sub_mchid: String,
    pub amount: Amount,
    pub scene_info: SceneInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_info: Option<SettleInfo>,
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
    /// A state this client does not know (B5.1: tolerate it): the outcome is unknown and
    /// the order is queried again, never taken as final.
    #[serde(other)]
    Unrecognized,
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
    /// `{sp_openid, sub_openid}`: an identifier of the payer; never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<serde_json::Value>,
    /// B5.2 `NOT_DEBT` / `DEBT` / `REPAYMENT` (kept as sent: an unknown value is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debt_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repayment_transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_detail: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_type: Option<String>,
}

/// Error body of every endpoint: `{code, message, detail{field, value, issue, location}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<ErrorDetail>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// May echo a submitted field (personal data): never kept, see [`ErrorDetail::redacted`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl ErrorDetail {
    /// `field / issue / location` as JSON, without the echoed `value`.
    pub fn redacted(&self) -> String {
        serde_json::to_string(&ErrorDetail { value: None, ..self.clone() }).expect("serialize")
    }
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
