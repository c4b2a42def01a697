//! SPEC T7.9: the consumer ProGuard rules keep the vendor's `UserInfo` whole. (Running
//! ProGuard over the wrapper jar comes with the Kotlin wrapper.)

#[test]
fn t7_9_user_info_is_kept_from_obfuscation() {
    let rules = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/proguard-rules.pro")).expect("rules");
    let kept = rules
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.replace(' ', "") == "-keepclasscom.tencent.wxpayface.data.UserInfo{*;}");
    assert!(kept, "proguard-rules.pro must keep com.tencent.wxpayface.data.UserInfo {{ *; }}");
}
