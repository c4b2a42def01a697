//! The verify flow as a pure state machine (SPEC T7). The only legal order is
//! `startVerify → recognition callback → (auxiliary verification if need_ext_verify) →
//! finishFaceVerify → getFacePayCredential`. A [`Flow`] is consumed by [`Flow::handle`]
//! with an [`Input`] and `now`, and returns the next flow and the [`Action`]s the runtime
//! must carry out; an illegal app call is refused locally with `OutOfOrder { expected, got }`
//! and leaves the flow as it was (T7.3, T7.4, T7.6), so the vendor never sees it and never
//! counts a lost user. Deadlines (the overall flow timeout T7.2 and the first-callback
//! watchdog T1.1) are fields; [`Flow::poll_timeout`] says when to wake. The flow holds its
//! whole truth: the recognised user travels in the state up to the credential, the
//! requests it asks for carry exactly the keys of T7.10 (the runtime adds the authed map,
//! newest authinfo, when it sends them), a user whose status is not `FS_NORMAL` ends it
//! before any credential, and recognition failures are classified as VENDOR-API §9.3/§10
//! say (hints keep recognising, `271378526` and restart-needing codes end the flow).

// The flow travels by value both ways (`Ok` carries it too); a refusal hands it back
// unchanged, so the `Err` side is as large as the `Ok` side by design.
#![allow(clippy::result_large_err)]

use std::time::{Duration, Instant};

use crate::error::{Error, ErrorCode, Secret};
use crate::terminal::face_service::{
    Credential, RecogMode, UserInfo, VResult, VendorError, ERR_FACE_NOT_RECOGNISED, ERR_SIMILAR_FACES,
    ERR_USER_STATUS_ABNORMAL, RECOGNITION_HINTS,
};

/// What a flow is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum FlowMode {
    /// Face payment (团餐, canteens): ends with the credential.
    #[default]
    Pay,
    /// Continuous recognition at an access gate (门禁): the same maps, no credential.
    Gate,
}

/// `finishFaceVerify`'s own keys (the runtime adds the authed map): `user_phone` when
/// auxiliary verification gave one (T7.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishReq {
    pub user_phone: Option<Secret>,
}

/// `getFacePayCredential`'s own keys (T7.10): `user_id` (String), `recog_mode` (Integer
/// 0/1), `total_fee` (String, fen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialReq {
    pub user_id: String,
    pub recog_mode: RecogMode,
    pub total_fee: String,
}

/// Whether a failed recognition answer ends the flow (VENDOR-API §9.3, §10): negative
/// codes and the known hint codes never do; `need_restart_verify == false` (present) is a
/// hint unless the code is `271378526` ("face not recognised, fail directly"); anything
/// else (absent or `true`) needs a new verification, so the flow ends with it.
pub fn recognition_failure_is_final(err_code: i64, need_restart_verify: Option<bool>) -> bool {
    if err_code < 0 || RECOGNITION_HINTS.contains(&err_code) {
        return false;
    }
    err_code == ERR_FACE_NOT_RECOGNISED || need_restart_verify != Some(false)
}

/// A step of the verify flow, as named in ordering errors (T7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Step {
    Start,
    Recognition,
    ExtVerify,
    Finish,
    Credential,
    Stop,
    /// The flow has ended: no further call is legal.
    Ended,
}

impl Step {
    /// The step's name as ordering errors carry it (`Error::OutOfOrder`).
    pub fn name(self) -> &'static str {
        match self {
            Step::Start => "Start",
            Step::Recognition => "Recognition",
            Step::ExtVerify => "ExtVerify",
            Step::Finish => "Finish",
            Step::Credential => "Credential",
            Step::Stop => "Stop",
            Step::Ended => "Ended",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct FlowId(pub u64);

/// How a flow ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Outcome {
    /// The credential was issued (T7.8): the payment's one end point.
    Credential,
    /// Gate mode: recognised, no payment.
    Recognised,
    Cancelled,
    TimedOut,
    /// The service stopped answering or restarted (T1.2: a clear error, never a hang).
    Disconnected,
    /// The vendor refused a step; the credential is never requested after it (T7.5).
    Failed {
        step: Step,
        err_code: i64,
    },
}

impl Outcome {
    pub fn error(&self, flow_timeout: Duration) -> Option<Error> {
        match self {
            Outcome::Credential | Outcome::Recognised => None,
            Outcome::Cancelled => Some(Error::FlowCancelled),
            Outcome::TimedOut => Some(Error::FlowTimeout(flow_timeout)),
            Outcome::Disconnected => Some(Error::ServiceDisconnected),
            Outcome::Failed { step, err_code } => {
                Some(Error::Vendor { op: op_of(*step).name(), return_code: "FAIL".into(), err_code: *err_code })
            }
        }
    }

    pub fn code(&self) -> Option<ErrorCode> {
        self.error(Duration::ZERO).map(|e| e.code())
    }

    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Credential => "paid",
            Outcome::Recognised => "recognised",
            Outcome::Cancelled => "cancelled",
            Outcome::TimedOut => "timed-out",
            Outcome::Disconnected => "disconnected",
            Outcome::Failed { .. } => "failed",
        }
    }
}

fn op_of(step: Step) -> crate::terminal::face_service::Op {
    use crate::terminal::face_service::Op;
    match step {
        Step::Start | Step::Recognition => Op::StartVerify,
        Step::ExtVerify | Step::Finish => Op::Finish,
        Step::Credential => Op::Credential,
        Step::Stop | Step::Ended => Op::StopVerify,
    }
}

/// What the flow is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// `startVerify` sent, not yet accepted.
    Starting,
    /// Recognition runs; failures restart it by themselves (T7.1).
    Recognising {
        seen_callback: bool,
    },
    Recognised {
        user: UserInfo,
        need_ext: bool,
    },
    /// T7.6: auxiliary verification supplied; finish carries it.
    ExtProvided {
        user: UserInfo,
        phone: Secret,
    },
    Finishing {
        user: UserInfo,
        with_phone: bool,
    },
    Finished {
        user: UserInfo,
        with_phone: bool,
    },
    /// The user travels up to the credential: the payment is made for this one.
    Crediting {
        user: UserInfo,
        with_phone: bool,
    },
    Ended(Outcome),
}

/// Something that happened to the flow: a service answer, an app call, time, the link.
#[derive(Debug, Clone)]
pub enum Input {
    StartAnswered(VResult<()>),
    FirstFrame,
    /// A failed recognition answer, classified by [`recognition_failure_is_final`].
    AttemptFailed {
        err_code: i64,
        need_restart_verify: Option<bool>,
    },
    Recognised {
        need_ext_verify: bool,
        user: UserInfo,
    },
    FinishAnswered(VResult<UserInfo>),
    CredentialAnswered(VResult<Credential>),
    ExtVerify(Secret),
    Finish,
    Credential,
    Stop,
    /// Time passed: check the deadlines.
    Tick,
    /// The service connection was lost.
    Disconnected,
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    StopVerify,
    CallFinish(FinishReq),
    CallCredential(CredentialReq),
    /// Tell waiters the user was recognised.
    Recognised {
        user: UserInfo,
        need_ext_verify: bool,
    },
    AttemptFailed {
        err_code: i64,
    },
    /// The finish answered: the user is known.
    Finished(UserInfo),
    /// The credential arrived for this user: hand both to the outbox.
    Credentialed {
        credential: Credential,
        user: UserInfo,
    },
    /// No callback within the watchdog deadline: the service is presumed dead (T1.1).
    ServiceSilent,
    Ended(Outcome),
}

/// Per-stage timestamps of a flow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stamps {
    pub first_frame: Option<Instant>,
    pub recognised: Option<Instant>,
    pub finished: Option<Instant>,
    pub credential: Option<Instant>,
    pub ended: Option<Instant>,
}

#[derive(Debug, Clone)]
pub struct Flow {
    pub id: FlowId,
    /// Echoed by the service in recognition events.
    pub session: u64,
    pub mode: FlowMode,
    pub total_fee: Option<u64>,
    pub started_at: Instant,
    /// Overall deadline (T7.2); `None` in continuous gate mode.
    deadline: Option<Instant>,
    /// First callback expected by then (T1.1).
    first_callback_deadline: Instant,
    failures: u32,
    state: State,
    pub stamps: Stamps,
}

type Handled = Result<(Flow, Vec<Action>), (Flow, Error)>;

impl Flow {
    /// A flow whose `startVerify` is being sent now.
    pub fn new(
        id: FlowId,
        session: u64,
        mode: FlowMode,
        total_fee: Option<u64>,
        now: Instant,
        timeout: Option<Duration>,
        first_callback_timeout: Duration,
    ) -> Flow {
        Flow {
            id,
            session,
            mode,
            total_fee,
            started_at: now,
            deadline: timeout.map(|t| now + t),
            first_callback_deadline: now + first_callback_timeout,
            failures: 0,
            state: State::Starting,
            stamps: Stamps::default(),
        }
    }

    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.state {
            State::Ended(o) => Some(o),
            _ => None,
        }
    }

    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended(_))
    }

    pub fn recognition_failures(&self) -> u32 {
        self.failures
    }

    /// The step the flow waits for next (what an out-of-order call is told).
    pub fn expected(&self) -> Step {
        match &self.state {
            State::Starting | State::Recognising { .. } => Step::Recognition,
            State::Recognised { need_ext: true, .. } => Step::ExtVerify,
            State::Recognised { .. } | State::ExtProvided { .. } | State::Finishing { .. } => Step::Finish,
            State::Finished { .. } | State::Crediting { .. } => Step::Credential,
            State::Ended(_) => Step::Ended,
        }
    }

    /// The recognised user and whether auxiliary verification was asked for (T7.6), from
    /// the recognition callback until the flow ends: the one copy the runtime reads.
    pub fn recognised(&self) -> Option<(&UserInfo, bool)> {
        match &self.state {
            State::Recognised { user, need_ext } => Some((user, *need_ext)),
            State::ExtProvided { user, .. } => Some((user, true)),
            State::Finishing { user, with_phone }
            | State::Finished { user, with_phone }
            | State::Crediting { user, with_phone } => Some((user, *with_phone)),
            State::Starting | State::Recognising { .. } | State::Ended(_) => None,
        }
    }

    /// Continuous recognition at a gate (no payment credential).
    pub fn is_gate(&self) -> bool {
        self.mode == FlowMode::Gate
    }

    /// When the runtime must deliver [`Input::Tick`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Ended(_) => None,
            State::Starting | State::Recognising { seen_callback: false } => {
                Some(self.deadline.map_or(self.first_callback_deadline, |d| d.min(self.first_callback_deadline)))
            }
            _ => self.deadline,
        }
    }

    fn end(mut self, outcome: Outcome, now: Instant, mut actions: Vec<Action>, stop: bool) -> Handled {
        if stop {
            actions.insert(0, Action::StopVerify);
        }
        self.stamps.ended = Some(now);
        actions.push(Action::Ended(outcome.clone()));
        self.state = State::Ended(outcome);
        Ok((self, actions))
    }

    fn refuse(self, got: Step) -> Handled {
        let expected = self.expected();
        Err((self, Error::OutOfOrder { expected: expected.name(), got: got.name() }))
    }

    fn vendor_fail(self, step: Step, e: VendorError, now: Instant) -> Handled {
        self.end(Outcome::Failed { step, err_code: e.err_code }, now, vec![], true)
    }

    pub fn handle(mut self, input: Input, now: Instant) -> Handled {
        let state = std::mem::replace(&mut self.state, State::Starting);
        match (state, input) {
            // A flow that ended takes no further call (T7.7) and ignores late answers.
            (s @ State::Ended(_), input) => {
                self.state = s;
                match app_step(&input) {
                    Some(step) => self.refuse(step),
                    None => Ok((self, vec![])),
                }
            }
            (_, Input::Disconnected) => self.end(Outcome::Disconnected, now, vec![], false),
            (_, Input::Stop) => self.end(Outcome::Cancelled, now, vec![], true),
            (s, Input::Tick) => {
                if self.deadline.is_some_and(|d| now >= d) {
                    return self.end(Outcome::TimedOut, now, vec![], true);
                }
                let silent = matches!(s, State::Starting | State::Recognising { seen_callback: false });
                if silent && now >= self.first_callback_deadline {
                    return self.end(Outcome::Disconnected, now, vec![Action::ServiceSilent], false);
                }
                self.state = s;
                Ok((self, vec![]))
            }
            (State::Starting, Input::StartAnswered(Ok(()))) => {
                self.state = State::Recognising { seen_callback: false };
                Ok((self, vec![]))
            }
            (State::Starting, Input::StartAnswered(Err(e))) => {
                self.end(Outcome::Failed { step: Step::Start, err_code: e.err_code }, now, vec![], false)
            }
            (State::Starting | State::Recognising { .. }, Input::FirstFrame) => {
                self.stamps.first_frame.get_or_insert(now);
                self.state = State::Recognising { seen_callback: true };
                Ok((self, vec![]))
            }
            (State::Starting | State::Recognising { .. }, Input::AttemptFailed { err_code, need_restart_verify }) => {
                self.failures += 1;
                if recognition_failure_is_final(err_code, need_restart_verify) {
                    let failed = Outcome::Failed { step: Step::Recognition, err_code };
                    return self.end(failed, now, vec![Action::AttemptFailed { err_code }], true);
                }
                // T7.1: the service restarts recognition by itself.
                self.state = State::Recognising { seen_callback: true };
                Ok((self, vec![Action::AttemptFailed { err_code }]))
            }
            (State::Starting | State::Recognising { .. }, Input::Recognised { need_ext_verify, user }) => {
                self.stamps.recognised = Some(now);
                self.stamps.first_frame.get_or_insert(now);
                if !user.is_valid() {
                    // T7.10: no credential (and no gate opening) for a user not FS_NORMAL.
                    let failed = Outcome::Failed { step: Step::Recognition, err_code: ERR_USER_STATUS_ABNORMAL };
                    return self.end(failed, now, vec![], true);
                }
                if self.mode == FlowMode::Gate {
                    // Nobody types a phone at a gate: a result that needs auxiliary
                    // verification is a failed recognition there, and the gate goes on.
                    if need_ext_verify {
                        let failed = Outcome::Failed { step: Step::ExtVerify, err_code: ERR_SIMILAR_FACES };
                        return self.end(failed, now, vec![], false);
                    }
                    let act = Action::Recognised { user, need_ext_verify };
                    return self.end(Outcome::Recognised, now, vec![act], false);
                }
                let act = Action::Recognised { user: user.clone(), need_ext_verify };
                self.state = State::Recognised { user, need_ext: need_ext_verify };
                Ok((self, vec![act]))
            }
            (State::Recognised { user, need_ext: true }, Input::ExtVerify(phone)) => {
                if phone.is_empty() {
                    self.state = State::Recognised { user, need_ext: true };
                    return Err((self, Error::invalid_arg("phone", "empty")));
                }
                self.state = State::ExtProvided { user, phone };
                Ok((self, vec![]))
            }
            (State::Recognised { user, need_ext: false }, Input::Finish) => {
                self.state = State::Finishing { user, with_phone: false };
                Ok((self, vec![Action::CallFinish(FinishReq { user_phone: None })]))
            }
            (State::ExtProvided { user, phone }, Input::Finish) => {
                self.state = State::Finishing { user, with_phone: true };
                Ok((self, vec![Action::CallFinish(FinishReq { user_phone: Some(phone) })]))
            }
            (State::Finishing { with_phone, .. }, Input::FinishAnswered(Ok(user))) => {
                self.stamps.finished = Some(now);
                if !user.is_valid() {
                    // T7.10: a user whose status is not FS_NORMAL gets no credential.
                    let failed = Outcome::Failed { step: Step::Finish, err_code: ERR_USER_STATUS_ABNORMAL };
                    return self.end(failed, now, vec![], true);
                }
                self.state = State::Finished { user: user.clone(), with_phone };
                Ok((self, vec![Action::Finished(user)]))
            }
            (State::Finishing { .. }, Input::FinishAnswered(Err(e))) => self.vendor_fail(Step::Finish, e, now),
            (State::Finished { user, with_phone }, Input::Credential) => {
                let p = CredentialReq {
                    user_id: user.user_id.clone(),
                    recog_mode: if with_phone { RecogMode::WithPhone } else { RecogMode::Face },
                    total_fee: self.total_fee.unwrap_or(0).to_string(),
                };
                self.state = State::Crediting { user, with_phone };
                Ok((self, vec![Action::CallCredential(p)]))
            }
            (State::Crediting { user, .. }, Input::CredentialAnswered(Ok(credential))) => {
                self.stamps.credential = Some(now);
                self.end(Outcome::Credential, now, vec![Action::Credentialed { credential, user }], false)
            }
            (State::Crediting { .. }, Input::CredentialAnswered(Err(e))) => self.vendor_fail(Step::Credential, e, now),
            (s, input) => {
                self.state = s;
                match app_step(&input) {
                    Some(step) => self.refuse(step),
                    // A late or duplicate service answer (e.g. a second recognition callback).
                    None => Ok((self, vec![])),
                }
            }
        }
    }
}

/// The step an app call stands for; `None` for service answers and time.
fn app_step(input: &Input) -> Option<Step> {
    match input {
        Input::ExtVerify(_) => Some(Step::ExtVerify),
        Input::Finish => Some(Step::Finish),
        Input::Credential => Some(Step::Credential),
        Input::Stop => Some(Step::Stop),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
