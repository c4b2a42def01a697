//! The start-up sequence after every (re)connection, as a pure policy (SPEC T3.6, T4.1,
//! T5, T9): init → `getWxpayfaceRawdata` → authinfo (the cache first, T3.1/T3.3, else the
//! backend) → `preloadSdkEnv` → `manualUpdateFaceDatas` → `getSdkInfo` → verification
//! opens. Every step after rawdata carries the authed map, so no step runs before an
//! authinfo is at hand. The library never calls the init callback again after a
//! reconnect (T9): the runtime restarts this sequence itself whenever the link comes up
//! again, and the library's own silent re-preload never counts as a step of it.

/// Where the sequence stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeqStep {
    /// Link not up: nothing runs.
    Idle,
    RawData,
    /// Waiting for an authinfo from the backend (none valid cached).
    AuthInfo,
    Preload,
    Update,
    SdkInfo,
    /// Verification is open.
    Open,
}

/// What the runtime must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqAction {
    CallRawData,
    /// Fetch an authinfo with the raw data just received.
    FetchAuthInfo,
    CallPreload,
    CallUpdate,
    CallSdkInfo,
    /// The sequence is complete: verification may start.
    Opened,
}

#[derive(Debug, Clone)]
pub struct Sequence {
    step: SeqStep,
    /// Completed sequences (the first one and one per reconnect).
    pub runs: u64,
}

impl Default for Sequence {
    fn default() -> Self {
        Sequence { step: SeqStep::Idle, runs: 0 }
    }
}

impl Sequence {
    pub fn step(&self) -> SeqStep {
        self.step
    }

    pub fn is_open(&self) -> bool {
        self.step == SeqStep::Open
    }

    /// The link came up (first init or any reconnect): start again from rawdata.
    pub fn on_link_up(&mut self) -> SeqAction {
        self.step = SeqStep::RawData;
        SeqAction::CallRawData
    }

    /// The link went down or was released: nothing runs until it is up again.
    pub fn on_link_down(&mut self) {
        self.step = SeqStep::Idle;
    }

    /// `getWxpayfaceRawdata` answered; `cached` says whether a valid authinfo is cached.
    pub fn on_raw_data(&mut self, cached: bool) -> Option<SeqAction> {
        if self.step != SeqStep::RawData {
            return None;
        }
        if cached {
            self.step = SeqStep::Preload;
            Some(SeqAction::CallPreload)
        } else {
            self.step = SeqStep::AuthInfo;
            Some(SeqAction::FetchAuthInfo)
        }
    }

    /// An authinfo is at hand (fetched, or a refresh landed while the sequence waited).
    pub fn on_auth_info(&mut self) -> Option<SeqAction> {
        (self.step == SeqStep::AuthInfo).then(|| {
            self.step = SeqStep::Preload;
            SeqAction::CallPreload
        })
    }

    /// `preloadSdkEnv` answered (a failure costs only camera warm-up, T5): update next.
    pub fn on_preload(&mut self) -> Option<SeqAction> {
        (self.step == SeqStep::Preload).then(|| {
            self.step = SeqStep::Update;
            SeqAction::CallUpdate
        })
    }

    /// T4.1: the first update answered, success or failure.
    pub fn on_update(&mut self) -> Option<SeqAction> {
        (self.step == SeqStep::Update).then(|| {
            self.step = SeqStep::SdkInfo;
            SeqAction::CallSdkInfo
        })
    }

    /// `getSdkInfo` answered: verification opens.
    pub fn on_sdk_info(&mut self) -> Option<SeqAction> {
        (self.step == SeqStep::SdkInfo).then(|| {
            self.step = SeqStep::Open;
            self.runs += 1;
            SeqAction::Opened
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t3_6_order_is_rawdata_authinfo_preload_update_sdkinfo_then_open() {
        let mut s = Sequence::default();
        assert_eq!(s.on_raw_data(true), None, "nothing before the link is up");
        assert_eq!(s.on_link_up(), SeqAction::CallRawData);
        assert_eq!(s.on_preload(), None, "T5: no preload before authinfo");
        assert_eq!(s.on_raw_data(false), Some(SeqAction::FetchAuthInfo));
        assert_eq!(s.on_update(), None, "T4.1: no update before preload");
        assert_eq!(s.on_auth_info(), Some(SeqAction::CallPreload));
        assert_eq!(s.on_preload(), Some(SeqAction::CallUpdate));
        assert!(!s.is_open());
        assert_eq!(s.on_update(), Some(SeqAction::CallSdkInfo));
        assert!(!s.is_open(), "T4.1: verification waits for getSdkInfo after the update");
        assert_eq!(s.on_sdk_info(), Some(SeqAction::Opened));
        assert!(s.is_open());
        assert_eq!(s.runs, 1);
    }

    #[test]
    fn t3_1_cached_authinfo_skips_the_backend() {
        let mut s = Sequence::default();
        s.on_link_up();
        assert_eq!(s.on_raw_data(true), Some(SeqAction::CallPreload));
        assert_eq!(s.on_auth_info(), None);
    }

    #[test]
    fn t9_every_reconnect_runs_the_whole_sequence_again() {
        let mut s = Sequence::default();
        s.on_link_up();
        s.on_raw_data(true);
        s.on_preload();
        s.on_update();
        s.on_sdk_info();
        s.on_link_down();
        assert_eq!(s.step(), SeqStep::Idle);
        assert!(!s.is_open(), "closed while down");
        assert_eq!(s.on_sdk_info(), None, "a late answer of the old link opens nothing");
        assert_eq!(s.on_link_up(), SeqAction::CallRawData);
        s.on_raw_data(true);
        s.on_preload();
        s.on_update();
        assert_eq!(s.on_sdk_info(), Some(SeqAction::Opened));
        assert_eq!(s.runs, 2);
    }
}
