//! The vendor face service (`com.tencent.wxpayface`, API-NOTES §1) as a trait. The engine
//! drives it and never replaces it. On Android the JNI layer implements it over the
//! Kotlin `FaceServiceDriver`; in tests and the demo, `sim::face_service` does.
//!
//! Every operation is a future that resolves when the vendor callback answers; the engine
//! wraps each in a deadline (T1.1), so an implementation may hang (a dead service does).
//! Unsolicited callbacks (recognition results, the init callback fired again on every
//! reconnect) go to the listener set with [`FaceService::set_listener`].

use tokio::sync::mpsc::UnboundedSender;

use crate::error::Secret;

pub use crate::wire::BoxFut;

/// `err_code` of "service not initialised".
pub const ERR_NOT_INITIALISED: i64 = 271_378_620;
/// `err_code` of "initialising: retry init after ~500 ms".
pub const ERR_INITIALISING: i64 = 271_378_621;
/// Recognition failures seen in integrator code (shown to the user; recognition restarts).
pub const ERR_NO_MATCHING_USER: i64 = 271_378_532;
pub const ERR_SIMILAR_FACES: i64 = 271_378_587;
pub const ERR_USER_STATUS_ABNORMAL: i64 = 271_378_533;
pub const ERR_NO_USER_INFO: i64 = 271_378_595;
pub const ERR_RISK_CONTROL: i64 = 271_378_527;
pub const ERR_FACE_NOT_RECOGNISED: i64 = 271_378_526;

/// The vendor operations, as named in deadlines, errors and events. The discriminant is
/// the operation's stable number (the JNI driver protocol and per-op counters use it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[repr(u8)]
pub enum Op {
    Init = 0,
    RawData = 1,
    Preload = 2,
    UpdateFeatures = 3,
    SdkInfo = 4,
    SetPreview = 5,
    RemovePreview = 6,
    StartVerify = 7,
    StopVerify = 8,
    Finish = 9,
    Credential = 10,
    Release = 11,
}

impl Op {
    /// Every operation, in number order (`Op::ALL[op.index()] == op`).
    pub const ALL: [Op; 12] = [
        Op::Init,
        Op::RawData,
        Op::Preload,
        Op::UpdateFeatures,
        Op::SdkInfo,
        Op::SetPreview,
        Op::RemovePreview,
        Op::StartVerify,
        Op::StopVerify,
        Op::Finish,
        Op::Credential,
        Op::Release,
    ];

    /// The operation's stable number.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The operation's name as errors carry it (`Error::CallTimeout`, `Error::Vendor`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Init => "Init",
            Op::RawData => "RawData",
            Op::Preload => "Preload",
            Op::UpdateFeatures => "UpdateFeatures",
            Op::SdkInfo => "SdkInfo",
            Op::SetPreview => "SetPreview",
            Op::RemovePreview => "RemovePreview",
            Op::StartVerify => "StartVerify",
            Op::StopVerify => "StopVerify",
            Op::Finish => "Finish",
            Op::Credential => "Credential",
            Op::Release => "Release",
        }
    }
}

/// `return_code` of a vendor answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ReturnCode {
    Success,
    Error,
    Fail,
}

impl ReturnCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnCode::Success => "SUCCESS",
            ReturnCode::Error => "ERROR",
            ReturnCode::Fail => "FAIL",
        }
    }
}

/// A vendor answer that was not `SUCCESS`. `return_msg` is not kept: vendor messages may
/// echo user data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorError {
    pub return_code: ReturnCode,
    pub err_code: i64,
}

impl VendorError {
    pub fn new(return_code: ReturnCode, err_code: i64) -> Self {
        VendorError { return_code, err_code }
    }
    pub fn into_error(self, op: Op) -> crate::Error {
        crate::Error::Vendor { op: op.name(), return_code: self.return_code.as_str().into(), err_code: self.err_code }
    }
}

pub type VResult<T> = Result<T, VendorError>;

/// The request map of `initWxpayface`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitParams {
    pub appid: String,
    pub mch_id: String,
    pub sub_appid: Option<String>,
    pub sub_mch_id: Option<String>,
    pub organization_id: String,
}

/// What `getSdkInfo` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdkInfo {
    pub sdk_version: String,
    pub face_feature_version: String,
    pub user_info_dbcount: u64,
    pub user_info_total_count: u64,
    /// `last_update_data_time`, Unix ms; `None` if the service never updated.
    pub last_update_data_time_ms: Option<i64>,
}

/// An opaque preview surface (a `SurfaceView` on Android), with its current size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Surface {
    pub id: u64,
    pub width: u32,
    pub height: u32,
}

/// `recog_mode` of `startVerify` / `getFacePayCredential`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum RecogMode {
    /// Face payment (团餐, canteens).
    #[default]
    Pay,
    /// Continuous recognition for access control (门禁).
    Gate,
}

/// The request map of `startVerify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyParams {
    /// Echoed in every [`ServiceEvent::Recognition`] of this verification, so results of a
    /// stopped verification are never taken for the next one.
    pub session: u64,
    pub authinfo: Secret,
    pub appid: String,
    pub mch_id: String,
    pub sub_appid: Option<String>,
    pub sub_mch_id: Option<String>,
    pub organization_id: String,
    pub recog_mode: RecogMode,
    pub total_fee: Option<u64>,
    pub out_trade_no: Option<String>,
}

/// `com.tencent.wxpayface.data.UserInfo`. The name is personal data: a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub user_id: String,
    pub out_user_id: String,
    pub user_name: Secret,
    pub status: i32,
    pub valid: bool,
}

/// The request map of `finishFaceVerify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishParams {
    pub user_id: String,
    /// Auxiliary verification (T7.6): the phone (or its tail) the user entered.
    pub user_phone: Option<Secret>,
}

/// The request map of `getFacePayCredential`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialParams {
    pub user_id: String,
    pub recog_mode: RecogMode,
    pub total_fee: Option<u64>,
}

/// The payment credential: `face_token`, sent by the backend as `auth_code` (T7.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub face_token: Secret,
}

/// One answer of the `startVerify` callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecognitionEvent {
    /// `return_code == "FIRST_FRAME_CALLBACK"`: progress, not a result.
    FirstFrame,
    /// Recognition failed; the service restarts recognition by itself (T7.1).
    Failed { err_code: i64, need_restart_verify: bool },
    /// Recognition succeeded and stopped by itself (T7.1).
    Recognised { need_ext_verify: bool, face_verify_id: String, users: Vec<UserInfo> },
}

/// A callback the service fires on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEvent {
    Recognition {
        session: u64,
        event: RecognitionEvent,
    },
    /// The init callback, fired again by the vendor SDK on every reconnect.
    InitCallback {
        ok: bool,
    },
}

/// The vendor face service. Futures may never resolve (a dead service): the engine puts a
/// deadline on every call.
pub trait FaceService: Send + Sync + 'static {
    /// Where unsolicited callbacks go. Called once, before `init`.
    fn set_listener(&self, tx: UnboundedSender<ServiceEvent>);
    fn init(&self, p: InitParams) -> BoxFut<'_, VResult<()>>;
    fn raw_data(&self) -> BoxFut<'_, VResult<String>>;
    fn preload(&self) -> BoxFut<'_, VResult<()>>;
    fn update_features(&self) -> BoxFut<'_, VResult<()>>;
    fn sdk_info(&self) -> BoxFut<'_, VResult<SdkInfo>>;
    fn set_preview(&self, surface: Surface) -> BoxFut<'_, VResult<()>>;
    fn remove_preview(&self) -> BoxFut<'_, VResult<()>>;
    /// Accepted means recognition runs; its results arrive as [`ServiceEvent::Recognition`].
    fn start_verify(&self, p: VerifyParams) -> BoxFut<'_, VResult<()>>;
    fn stop_verify(&self) -> BoxFut<'_, VResult<()>>;
    fn finish_verify(&self, p: FinishParams) -> BoxFut<'_, VResult<UserInfo>>;
    fn credential(&self, p: CredentialParams) -> BoxFut<'_, VResult<Credential>>;
    /// Last resort only (T2.2): the engine never calls it on a normal path.
    fn release(&self) -> BoxFut<'_, VResult<()>>;
}

#[cfg(test)]
mod tests {
    use super::Op;

    #[test]
    fn op_numbers_are_stable_and_all_lists_each_once() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), i, "{op:?}");
        }
        assert_eq!((Op::Init.index(), Op::StartVerify.index(), Op::Release.index()), (0, 7, 11));
    }
}
