//! Wire types of the three FaceID actions we call (API-NOTES §3), with the published
//! casing (`Idcard`/`Errcode` in `DetectDetail`, `IdCard`/`ErrorCode` in `ChargeDetail`) and
//! every field the API may send as null held as an `Option` (R8). Both directions derive
//! serde so the mock server speaks the same types. Serves R1 (DetectAuth), R2–R4
//! (GetDetectInfoEnhanced) and R5–R8 (GetWeChatBillDetails).

use serde::{Deserialize, Serialize};

/// `Response.Error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    #[serde(rename = "Code")]
    pub code: String,
    #[serde(rename = "Message", default)]
    pub message: String,
}

/// The part of every answer that is read first: `Response.Error` and `Response.RequestId`.
#[derive(Debug, Deserialize)]
pub struct ErrorProbe {
    #[serde(rename = "Response")]
    pub response: ErrorProbeInner,
}

#[derive(Debug, Deserialize)]
pub struct ErrorProbeInner {
    #[serde(rename = "Error", default)]
    pub error: Option<ApiErrorBody>,
    #[serde(rename = "RequestId", default)]
    pub request_id: Option<String>,
}

/// `{"Response": T}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    #[serde(rename = "Response")]
    pub response: T,
}

/// A personal value (id number, name) sent to FaceID: serialised as the plain string on
/// the wire, never shown by `Debug` (so never in a log line or an error message).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Personal(String);

impl Personal {
    pub fn new(v: impl Into<String>) -> Self {
        Personal(v.into())
    }
    /// The raw value: only for the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Personal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Personal(***{})", self.0.chars().count())
    }
}

/// `DetectAuth`. `IdCard` / `Name` are required by RuleIds that compare against a given
/// identity; `Extra` is the merchant's own pass-through value (its business order id),
/// returned as `Text.Extra` by `GetDetectInfoEnhanced` (API-NOTES §3 "Corrections").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DetectAuthRequest {
    #[serde(rename = "RuleId")]
    pub rule_id: String,
    #[serde(rename = "IdCard", skip_serializing_if = "Option::is_none", default)]
    pub id_card: Option<Personal>,
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none", default)]
    pub name: Option<Personal>,
    #[serde(rename = "RedirectUrl", skip_serializing_if = "Option::is_none", default)]
    pub redirect_url: Option<String>,
    #[serde(rename = "Extra", skip_serializing_if = "Option::is_none", default)]
    pub extra: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DetectAuthResponse {
    #[serde(rename = "Url", default)]
    pub url: Option<String>,
    #[serde(rename = "BizToken", default)]
    pub biz_token: Option<String>,
    #[serde(rename = "RequestId", default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetDetectInfoEnhancedRequest {
    #[serde(rename = "BizToken")]
    pub biz_token: String,
    #[serde(rename = "RuleId")]
    pub rule_id: String,
    /// `"1"` = text only: what reconciliation needs (API-NOTES §3).
    #[serde(rename = "InfoType", skip_serializing_if = "Option::is_none", default)]
    pub info_type: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetDetectInfoEnhancedResponse {
    #[serde(rename = "Text", default)]
    pub text: Option<DetectInfoText>,
    #[serde(rename = "RequestId", default)]
    pub request_id: Option<String>,
}

/// `DetectInfoText`: all nullable. Personal fields (`IdCard`, `Name`) are deliberately not
/// modelled: reconciliation never needs them, so they are never parsed, stored or logged.
/// `Extra` is the merchant's own value given to `DetectAuth` (its join key).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectInfoText {
    /// 0 = passed (R3). Not a billing field (R4).
    #[serde(rename = "ErrCode", default)]
    pub err_code: Option<i64>,
    #[serde(rename = "ErrMsg", default)]
    pub err_msg: Option<String>,
    #[serde(rename = "LiveStatus", default)]
    pub live_status: Option<i64>,
    #[serde(rename = "Comparestatus", default)]
    pub comparestatus: Option<i64>,
    #[serde(rename = "Sim", default)]
    pub sim: Option<String>,
    #[serde(rename = "Extra", default)]
    pub extra: Option<String>,
    #[serde(rename = "LivenessDetail", default)]
    pub liveness_detail: Option<Vec<DetectDetail>>,
}

/// `DetectDetail` (note the casing): one liveness + 1:1 comparison attempt (R4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectDetail {
    /// Epoch milliseconds as a string (R7).
    #[serde(rename = "ReqTime", default)]
    pub req_time: Option<String>,
    #[serde(rename = "Seq", default)]
    pub seq: Option<String>,
    #[serde(rename = "Sim", default)]
    pub sim: Option<String>,
    /// The billing flag: only `true` is charged; false and null are free (R4, R8).
    #[serde(rename = "IsNeedCharge", default)]
    pub is_need_charge: Option<bool>,
    #[serde(rename = "Errcode", default)]
    pub errcode: Option<i64>,
    #[serde(rename = "Errmsg", default)]
    pub errmsg: Option<String>,
    #[serde(rename = "Livestatus", default)]
    pub livestatus: Option<i64>,
    #[serde(rename = "Livemsg", default)]
    pub livemsg: Option<String>,
    #[serde(rename = "Comparestatus", default)]
    pub comparestatus: Option<i64>,
    #[serde(rename = "Comparemsg", default)]
    pub comparemsg: Option<String>,
    #[serde(rename = "CompareLibType", default)]
    pub compare_lib_type: Option<String>,
    #[serde(rename = "LivenessMode", default)]
    pub liveness_mode: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetWeChatBillDetailsRequest {
    #[serde(rename = "Date")]
    pub date: String,
    #[serde(rename = "Cursor")]
    pub cursor: u64,
    #[serde(rename = "RuleId", skip_serializing_if = "Option::is_none", default)]
    pub rule_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetWeChatBillDetailsResponse {
    #[serde(rename = "HasNextPage", default)]
    pub has_next_page: Option<bool>,
    /// Opaque: passed back as is, never computed (R5).
    #[serde(rename = "NextCursor", default)]
    pub next_cursor: Option<u64>,
    #[serde(rename = "WeChatBillDetails", default)]
    pub we_chat_bill_details: Option<Vec<WeChatBillDetail>>,
    #[serde(rename = "RequestId", default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeChatBillDetail {
    #[serde(rename = "BizToken", default)]
    pub biz_token: Option<String>,
    #[serde(rename = "ChargeCount", default)]
    pub charge_count: Option<u64>,
    #[serde(rename = "ChargeDetails", default)]
    pub charge_details: Option<Vec<ChargeDetail>>,
    #[serde(rename = "RuleId", default)]
    pub rule_id: Option<String>,
}

/// `ChargeDetail`: one billed comparison (R6). Masked `IdCard`/`Name` are accepted on the
/// wire (the mock sends them) but never stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChargeDetail {
    /// 13-digit epoch milliseconds, Beijing-time day attribution (R7).
    #[serde(rename = "ReqTime", default)]
    pub req_time: Option<String>,
    #[serde(rename = "Seq", default)]
    pub seq: Option<String>,
    #[serde(rename = "IdCard", default, skip_deserializing)]
    pub id_card: Option<String>,
    #[serde(rename = "Name", default, skip_deserializing)]
    pub name: Option<String>,
    #[serde(rename = "Sim", default)]
    pub sim: Option<String>,
    #[serde(rename = "IsNeedCharge", default)]
    pub is_need_charge: Option<bool>,
    #[serde(rename = "ChargeType", default)]
    pub charge_type: Option<String>,
    /// A **string** here, unlike `DetectDetail.Errcode`.
    #[serde(rename = "ErrorCode", default)]
    pub error_code: Option<String>,
    #[serde(rename = "ErrorMessage", default)]
    pub error_message: Option<String>,
}

/// Parses `ReqTime` (epoch milliseconds as a string). `None` for null or garbage (R8: such
/// a detail is attributed to no day and never charged by itself).
pub fn parse_req_time(s: Option<&str>) -> Option<i64> {
    let s = s?.trim();
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r8_nulls_everywhere_parse_and_are_not_charged() {
        let j = r#"{"HasNextPage":false,"NextCursor":null,"WeChatBillDetails":[{"BizToken":"t1","ChargeCount":null,
            "ChargeDetails":[{"ReqTime":null,"Seq":null,"IdCard":null,"Name":null,"Sim":null,"IsNeedCharge":null,
            "ChargeType":null,"ErrorCode":null,"ErrorMessage":null}],"RuleId":null}],"RequestId":"r"}"#;
        let r: GetWeChatBillDetailsResponse = serde_json::from_str(j).expect("parses");
        let d = &r.we_chat_bill_details.as_ref().expect("details")[0];
        assert_eq!(d.charge_count, None);
        let c = &d.charge_details.as_ref().expect("charge details")[0];
        assert_eq!(c.is_need_charge, None);
        assert_ne!(c.is_need_charge, Some(true));
        assert_eq!(parse_req_time(c.req_time.as_deref()), None);
    }

    #[test]
    fn detect_detail_uses_the_documented_casing() {
        let j = r#"{"ErrCode":0,"LivenessDetail":[{"ReqTime":"1700000000000","Seq":"s","Idcard":"x","Name":"y",
            "IsNeedCharge":true,"Errcode":0,"Livestatus":0,"Comparestatus":0,"Sim":"99.10"}]}"#;
        let t: DetectInfoText = serde_json::from_str(j).expect("parses");
        let d = &t.liveness_detail.expect("details")[0];
        assert_eq!(d.errcode, Some(0));
        assert_eq!(d.is_need_charge, Some(true));
        assert_eq!(parse_req_time(d.req_time.as_deref()), Some(1_700_000_000_000));
    }

    #[test]
    fn detect_auth_sends_identity_and_extra_but_never_prints_them() {
        let r = DetectAuthRequest {
            rule_id: "1".into(),
            id_card: Some(Personal::new("110101199001011234")),
            name: Some(Personal::new("张三")),
            extra: Some("order-42".into()),
            ..DetectAuthRequest::default()
        };
        let j = serde_json::to_string(&r).expect("json");
        assert!(j.contains(r#""IdCard":"110101199001011234""#) && j.contains(r#""Name":"张三""#), "{j}");
        assert!(j.contains(r#""Extra":"order-42""#));
        let d = format!("{r:?}");
        assert!(!d.contains("1990") && !d.contains("张"), "{d}");
        let bare =
            serde_json::to_string(&DetectAuthRequest { rule_id: "1".into(), ..Default::default() }).expect("json");
        assert_eq!(bare, r#"{"RuleId":"1"}"#);
        let t: DetectInfoText =
            serde_json::from_str(r#"{"ErrCode":0,"Extra":"order-42","Name":"张三"}"#).expect("text");
        assert_eq!(t.extra.as_deref(), Some("order-42"));
    }

    #[test]
    fn r7_req_time_garbage_is_none() {
        assert_eq!(parse_req_time(Some("17e3")), None);
        assert_eq!(parse_req_time(Some("")), None);
        assert_eq!(parse_req_time(Some("1700000000000")), Some(1_700_000_000_000));
    }
}
