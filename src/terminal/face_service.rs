//! The vendor face service (`com.tencent.wxpayface`, API-NOTES §1) as a trait. The engine
//! drives it and never replaces it. On Android the JNI layer implements it over the
//! Kotlin `FaceServiceDriver`; in tests and the demo, `sim::face_service` does.
//!
//! Every operation is a future that resolves when the vendor callback answers; the engine
//! wraps each in a deadline (T1.1), so an implementation may hang (a dead service does).
//! Unsolicited callbacks (recognition results, late answers after the library's timeout
//! FAIL) go to the listener set with [`FaceService::set_listener`]. The request shapes are
//! the library's (VENDOR-API.md, SPEC T2.4, T3.6, T7.10, T9): a proxy-only init map, the
//! authed map on every call after rawdata, Integer `recog_mode`, String `total_fee`.

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
/// Recognition hints the integrator app shows without ending the flow (VENDOR-API §9.3, §10).
pub const RECOGNITION_HINTS: [i64; 6] = [271_377_930, 271_377_935, 271_377_936, 271_377_938, 271_378_510, 271_378_511];

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
    /// The answer itself was malformed: this key was missing or ill-typed.
    pub bad_key: Option<&'static str>,
}

/// `err_code` of a malformed vendor answer (not a vendor code): see [`VendorError::bad_answer`].
pub const ERR_BAD_ANSWER: i64 = 990_100_002;

impl VendorError {
    pub fn new(return_code: ReturnCode, err_code: i64) -> Self {
        VendorError { return_code, err_code, bad_key: None }
    }
    /// A vendor answer with a missing or ill-typed `key` (never a panic, never a credential).
    pub fn bad_answer(key: &'static str) -> Self {
        VendorError { return_code: ReturnCode::Error, err_code: ERR_BAD_ANSWER, bad_key: Some(key) }
    }
    pub fn into_error(self, op: Op) -> crate::Error {
        match self.bad_key {
            Some(key) => crate::Error::BadAnswer { op: op.name(), key },
            None => crate::Error::Vendor {
                op: op.name(),
                return_code: self.return_code.as_str().into(),
                err_code: self.err_code,
            },
        }
    }
}

pub type VResult<T> = Result<T, VendorError>;

/// The 3-argument `initWxpayface` map (VENDOR-API §2, T2.4): proxy / performance
/// configuration only (`ip`, `port`, `user`, `passwd`, `proxy_type`, `tcp_port`,
/// `perform_mode`). Merchant ids and authinfo never go here. `None` = the 2-argument call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitParams {
    pub proxy: Option<Vec<(String, String)>>,
}

/// The authed map (T3.6): carried by every call after `getWxpayfaceRawdata`, always with
/// the newest authinfo. `authinfo` is a secret (never logged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthedMap {
    pub appid: String,
    pub mch_id: String,
    pub mch_name: String,
    pub sub_appid: Option<String>,
    pub sub_mch_id: Option<String>,
    pub organization_id: String,
    pub authinfo: Secret,
}

impl AuthedMap {
    /// Whether the map carries what the service needs after rawdata (the real service
    /// refuses a mismatched organisation with "机构id不匹配").
    pub fn is_complete(&self) -> bool {
        !self.authinfo.is_empty() && !self.organization_id.is_empty() && !self.mch_id.is_empty()
    }
}

/// A shared authed map: one per authinfo, cloned cheaply into every call.
pub type Authed = std::sync::Arc<AuthedMap>;

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

/// `recog_mode` of `getFacePayCredential` (T7.10): an **Integer** on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum RecogMode {
    /// 0: no phone was entered.
    #[default]
    Face = 0,
    /// 1: auxiliary verification with a phone (T7.6).
    WithPhone = 1,
}

impl RecogMode {
    pub fn as_int(self) -> i32 {
        self as i32
    }
}

/// The request of `startVerify`: the authed map (T7.10). `session` is ours, not a vendor
/// key: every [`ServiceEvent::Recognition`] of this verification echoes it, so results of
/// a stopped verification are never taken for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyParams {
    pub session: u64,
    pub authed: Authed,
}

/// `UserInfo.status` of a user who may pay (`UserInfo.isValidUser()`, VENDOR-API §6).
pub const STATUS_NORMAL: &str = "FS_NORMAL";

/// `com.tencent.wxpayface.data.UserInfo` / `K12UserInfo`. The name is personal data: a
/// [`Secret`]. `status` is a String (T7.10); only [`STATUS_NORMAL`] is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub user_id: String,
    pub out_user_id: String,
    pub user_name: Secret,
    pub status: String,
}

impl UserInfo {
    /// `isValidUser()`: `"FS_NORMAL".equals(status)`.
    pub fn is_valid(&self) -> bool {
        self.status == STATUS_NORMAL
    }
}

/// The request of `finishFaceVerify` (T7.10): the authed map, and `user_phone` when
/// auxiliary verification gave one (T7.6). No `user_id`: no source knows of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishParams {
    pub authed: Authed,
    pub user_phone: Option<Secret>,
}

/// The request of `getFacePayCredential` (T7.10): the authed map, `user_id` (String),
/// `recog_mode` (Integer 0/1) and `total_fee` (String, fen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialParams {
    pub authed: Authed,
    pub user_id: String,
    pub recog_mode: RecogMode,
    pub total_fee: String,
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
    /// Recognition failed (`err_code`, possibly negative; `need_restart_verify` may be
    /// absent): hints keep recognising, other codes end the flow (`verify`, VENDOR-API §10).
    Failed { err_code: i64, need_restart_verify: Option<bool> },
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
    /// An init callback the engine did not wait for (T9: the library never re-fires the
    /// app's init callback after a reconnect; an implementation that sees one reports it
    /// here and the engine ignores it — reconnects are detected by the engine itself).
    InitCallback {
        ok: bool,
    },
    /// A second answer for a call already answered (T9: the 10 s timeout answered FAIL and
    /// kept the call; the real answer followed). Exactly one answer counts: the engine
    /// drops this one and only counts it.
    LateAnswer {
        op: Op,
    },
}

/// The vendor face service. Futures may never resolve (a dead service): the engine puts a
/// deadline on every call. Every call after `raw_data` takes the authed map (T3.6).
pub trait FaceService: Send + Sync + 'static {
    /// Where unsolicited callbacks go. Called once, before `init`.
    fn set_listener(&self, tx: UnboundedSender<ServiceEvent>);
    fn init(&self, p: InitParams) -> BoxFut<'_, VResult<()>>;
    fn raw_data(&self) -> BoxFut<'_, VResult<String>>;
    fn preload(&self, m: Authed) -> BoxFut<'_, VResult<()>>;
    fn update_features(&self, m: Authed) -> BoxFut<'_, VResult<()>>;
    fn sdk_info(&self, m: Authed) -> BoxFut<'_, VResult<SdkInfo>>;
    fn set_preview(&self, surface: Surface, m: Authed) -> BoxFut<'_, VResult<()>>;
    fn remove_preview(&self, m: Authed) -> BoxFut<'_, VResult<()>>;
    /// Accepted means recognition runs; its results arrive as [`ServiceEvent::Recognition`].
    fn start_verify(&self, p: VerifyParams) -> BoxFut<'_, VResult<()>>;
    fn stop_verify(&self, m: Authed) -> BoxFut<'_, VResult<()>>;
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
