//! The enrolled population of the simulated face service: users generated from the
//! simulator's seeded RNG, each with a vendor `user_id`, the merchant's `out_user_id`, and a
//! name and phone kept as [`Secret`] (personal data, never logged). The face service keeps
//! a "cloud" flag (enrolled or cancelled) and a "device" flag (in the on-device feature
//! library) per user, which is what makes stale features (SPEC T4.3) observable.

use rand::{Rng, RngCore};

use crate::error::Secret;
use crate::terminal::face_service::UserInfo;

const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙"];
const GIVEN: &[&str] = &["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "涛", "明", "超", "霞"];
const PHONE_PREFIXES: &[&str] = &["13", "15", "17", "18", "19"];

/// One enrolled person. `Debug` masks the name and the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    /// Index in the population (stable: users are never removed, only cancelled).
    pub idx: usize,
    /// The vendor's user id (what `finishFaceVerify` and `getFacePayCredential` take).
    pub user_id: String,
    /// The merchant's own id for the user (e.g. a student number).
    pub out_user_id: String,
    pub name: Secret,
    /// 11-digit mainland mobile number; auxiliary verification (T7.6) accepts it or its
    /// last 4 digits.
    pub phone: Secret,
    /// `UserInfo.status` (a String, T7.10): `FS_NORMAL` unless the test sets another.
    pub status: String,
}

impl SimUser {
    /// Generates user number `idx` from `rng`.
    pub fn generate(idx: usize, rng: &mut impl RngCore) -> SimUser {
        let user_id = format!("oWx{:016x}{:08x}", rng.next_u64(), rng.next_u32());
        let out_user_id = format!("S{:06}", idx + 1);
        let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
        let mut name = String::with_capacity(9);
        name.push_str(surname);
        for _ in 0..rng.random_range(1..=2) {
            name.push_str(GIVEN[rng.random_range(0..GIVEN.len())]);
        }
        let prefix = PHONE_PREFIXES[rng.random_range(0..PHONE_PREFIXES.len())];
        let phone = format!("{prefix}{:09}", rng.random_range(0..1_000_000_000u32));
        let status = crate::terminal::face_service::STATUS_NORMAL.to_string();
        SimUser { idx, user_id, out_user_id, name: Secret::new(name), phone: Secret::new(phone), status }
    }

    /// The vendor `UserInfo` of this user (status `FS_NORMAL`).
    pub fn user_info(&self) -> UserInfo {
        UserInfo {
            user_id: self.user_id.clone(),
            out_user_id: self.out_user_id.clone(),
            user_name: self.name.clone(),
            status: self.status.clone(),
        }
    }

    /// Whether `entered` passes auxiliary verification: the full phone or its last 4 digits.
    pub fn phone_matches(&self, entered: &Secret) -> bool {
        let phone = self.phone.expose();
        let e = entered.expose();
        !e.is_empty() && (e == phone || (e.len() == 4 && phone.ends_with(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn users_are_seeded_and_personal_data_is_masked() {
        let a = SimUser::generate(0, &mut ChaCha8Rng::seed_from_u64(7));
        let b = SimUser::generate(0, &mut ChaCha8Rng::seed_from_u64(7));
        let c = SimUser::generate(0, &mut ChaCha8Rng::seed_from_u64(8));
        assert_eq!(a, b);
        assert_ne!(a.user_id, c.user_id);
        assert_eq!(a.phone.expose().len(), 11);
        let dbg = format!("{a:?}");
        assert!(!dbg.contains(a.phone.expose()) && !dbg.contains(a.name.expose()));
    }

    #[test]
    fn t7_6_phone_or_its_tail_matches() {
        let u = SimUser::generate(3, &mut ChaCha8Rng::seed_from_u64(1));
        let tail = &u.phone.expose()[7..];
        assert!(u.phone_matches(&u.phone));
        assert!(u.phone_matches(&Secret::new(tail)));
        assert!(!u.phone_matches(&Secret::new("")));
        assert!(!u.phone_matches(&Secret::new("0000000")));
        let wrong = if tail == "0000" { "1111" } else { "0000" };
        assert!(!u.phone_matches(&Secret::new(wrong)));
    }
}
