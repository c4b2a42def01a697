//! Typed reading of the face service driver's answers (SPEC T7.10, VENDOR-API §5): each
//! value arrives tagged with its Java type, so a missing or ill-typed key (`err_code` as a
//! String, `user_info_list` not a list, `need_ext_verify` absent, a `null` map) is a typed
//! error naming the key ([`VendorError::bad_answer`]), never a panic and never a credential.
//! `status` is a String (`FS_NORMAL` = valid); users are counted from the list, never from
//! `user_info_count`.

use std::collections::HashMap;

use facepay::terminal::face_service::{RecognitionEvent, ReturnCode, UserInfo, VResult, VendorError, ERR_NO_USER_INFO};
use facepay::Secret;

/// An answer as the driver sent it: key → tagged value.
pub type Answer = HashMap<String, String>;

/// One typed value of an answer (see the module comment for the tags).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(String),
    Int(i64),
    Bool(bool),
    Float,
    List(usize),
    Null,
    Other(String),
}

impl Val {
    pub(crate) fn parse(tagged: &str) -> Val {
        let (tag, v) = tagged.split_at(tagged.find(':').map_or(0, |i| i + 1));
        match tag {
            "s:" => Val::Str(v.to_owned()),
            "i:" => v.parse().map(Val::Int).unwrap_or(Val::Other(v.to_owned())),
            "b:" => match v {
                "true" => Val::Bool(true),
                "false" => Val::Bool(false),
                _ => Val::Other(v.to_owned()),
            },
            "f:" => Val::Float,
            "l:" => v.parse().map(Val::List).unwrap_or(Val::Other(v.to_owned())),
            "n:" => Val::Null,
            "o:" => Val::Other(v.to_owned()),
            // An untagged value is ill-typed by definition.
            _ => Val::Other(tagged.to_owned()),
        }
    }
}

pub(crate) type Typed = HashMap<String, Val>;

pub(crate) fn typed(a: &Answer) -> Typed {
    a.iter().map(|(k, v)| (k.clone(), Val::parse(v))).collect()
}

pub(crate) fn str_key(a: &Typed, k: &'static str) -> VResult<String> {
    match a.get(k) {
        Some(Val::Str(s)) => Ok(s.clone()),
        _ => Err(VendorError::bad_answer(k)),
    }
}

pub(crate) fn opt_str(a: &Typed, k: &'static str) -> VResult<Option<String>> {
    match a.get(k) {
        None | Some(Val::Null) => Ok(None),
        Some(Val::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(VendorError::bad_answer(k)),
    }
}

/// `err_code`: an Integer when present (VENDOR-API §5.2); a String is ill-typed.
pub(crate) fn err_code(a: &Typed) -> VResult<Option<i64>> {
    match a.get("err_code") {
        None | Some(Val::Null) => Ok(None),
        Some(Val::Int(v)) => Ok(Some(*v)),
        Some(_) => Err(VendorError::bad_answer("err_code")),
    }
}

pub(crate) fn vendor_result(a: &Typed) -> VResult<()> {
    let code = str_key(a, "return_code")?;
    let err = err_code(a)?.unwrap_or(0);
    match code.as_str() {
        "SUCCESS" => Ok(()),
        "FAIL" => Err(VendorError::new(ReturnCode::Fail, err)),
        "ERROR" => Err(VendorError::new(ReturnCode::Error, err)),
        _ => Err(VendorError::bad_answer("return_code")),
    }
}

/// A user as the adapter flattened it (`<prefix>user_id`, `out_user_id`, `user_name`,
/// `status`: all Strings, VENDOR-API §6; `status` is a String, `FS_NORMAL` = valid).
pub(crate) fn user_at(a: &Typed, prefix: &str) -> VResult<UserInfo> {
    let get = |k: &'static str| -> VResult<Option<String>> {
        match a.get(&format!("{prefix}{k}")) {
            None | Some(Val::Null) => Ok(None),
            Some(Val::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(VendorError::bad_answer(k)),
        }
    };
    Ok(UserInfo {
        user_id: get("user_id")?.ok_or(VendorError::bad_answer("user_id"))?,
        out_user_id: get("out_user_id")?.unwrap_or_default(),
        user_name: Secret::new(get("user_name")?.unwrap_or_default()),
        status: get("status")?.unwrap_or_default(),
    })
}

/// One answer of the `startVerify` callback (VENDOR-API §5.2): `FIRST_FRAME_CALLBACK`;
/// SUCCESS with `need_ext_verify` (Boolean, required) and `user_info_list` (a list,
/// counted: `user_info_count` is not relied on); or a failure with an Integer `err_code`
/// (possibly negative) and an optional Boolean `need_restart_verify`.
pub(crate) fn recognition(a: &Typed) -> VResult<RecognitionEvent> {
    let code = str_key(a, "return_code")?;
    match code.as_str() {
        "FIRST_FRAME_CALLBACK" => Ok(RecognitionEvent::FirstFrame),
        "SUCCESS" => {
            let need_ext_verify = match a.get("need_ext_verify") {
                Some(Val::Bool(b)) => *b,
                _ => return Err(VendorError::bad_answer("need_ext_verify")),
            };
            let n = match a.get("user_info_list") {
                Some(Val::List(n)) => *n,
                // The library removes an empty or unparsable list (VENDOR-API §5.1).
                None => 0,
                Some(_) => return Err(VendorError::bad_answer("user_info_list")),
            };
            let users = (0..n).map(|i| user_at(a, &format!("user.{i}."))).collect::<VResult<Vec<_>>>()?;
            if users.is_empty() {
                return Ok(RecognitionEvent::Failed { err_code: ERR_NO_USER_INFO, need_restart_verify: Some(false) });
            }
            Ok(RecognitionEvent::Recognised {
                need_ext_verify,
                face_verify_id: opt_str(a, "face_verify_id")?.unwrap_or_default(),
                users,
            })
        }
        _ => {
            let need_restart_verify = match a.get("need_restart_verify") {
                None | Some(Val::Null) => None,
                Some(Val::Bool(b)) => Some(*b),
                Some(_) => return Err(VendorError::bad_answer("need_restart_verify")),
            };
            Ok(RecognitionEvent::Failed { err_code: err_code(a)?.unwrap_or(0), need_restart_verify })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(kv: &[(&str, &str)]) -> Typed {
        typed(&kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn t7_10_ill_typed_or_missing_keys_are_typed_errors_naming_the_key() {
        let e = vendor_result(&ans(&[("return_code", "s:FAIL"), ("err_code", "s:271378620")]))
            .expect_err("string err_code");
        assert_eq!(e.bad_key, Some("err_code"));
        let e = vendor_result(&ans(&[])).expect_err("null or empty map");
        assert_eq!(e.bad_key, Some("return_code"));
        let e = recognition(&ans(&[("return_code", "s:SUCCESS"), ("user_info_list", "l:1")]))
            .expect_err("no need_ext_verify");
        assert_eq!(e.bad_key, Some("need_ext_verify"));
        let bad_list = [("return_code", "s:SUCCESS"), ("need_ext_verify", "b:false"), ("user_info_list", "s:[]")];
        assert_eq!(recognition(&ans(&bad_list)).expect_err("not a list").bad_key, Some("user_info_list"));
        let e = str_key(&ans(&[("rawdata", "i:3")]), "rawdata").expect_err("rawdata not a String");
        assert_eq!(e.bad_key, Some("rawdata"));
        let status_int = [("user.user_id", "s:u1"), ("user.status", "i:0")];
        assert_eq!(user_at(&ans(&status_int), "user.").expect_err("status").bad_key, Some("status"));
        assert_eq!(Val::parse("untagged"), Val::Other("untagged".into()));
    }

    #[test]
    fn t7_10_recognition_counts_the_list_and_reads_string_status() {
        let ok = ans(&[
            ("return_code", "s:SUCCESS"),
            ("need_ext_verify", "b:true"),
            ("user_info_list", "l:2"),
            ("user_info_count", "i:9"),
            ("user.0.user_id", "s:u0"),
            ("user.0.status", "s:FS_NORMAL"),
            ("user.1.user_id", "s:u1"),
            ("user.1.status", "s:FS_FROZEN"),
        ]);
        match recognition(&ok).expect("valid") {
            RecognitionEvent::Recognised { need_ext_verify, users, .. } => {
                assert!(need_ext_verify);
                assert_eq!(users.len(), 2, "counted from the list, not user_info_count");
                assert!(users[0].is_valid() && !users[1].is_valid());
            }
            other => panic!("{other:?}"),
        }
        let failed = ans(&[("return_code", "s:FAIL"), ("err_code", "i:-2")]);
        assert_eq!(
            recognition(&failed).expect("valid"),
            RecognitionEvent::Failed { err_code: -2, need_restart_verify: None }
        );
        let first = ans(&[("return_code", "s:FIRST_FRAME_CALLBACK")]);
        assert_eq!(recognition(&first).expect("valid"), RecognitionEvent::FirstFrame);
    }
}
