//! The service link (SPEC T1, T2). Pure. Init is sent once at start (T2.3) and answered
//! once for every caller (T2.1: a second init while initialising or initialised is a no-op
//! with the same result). A lost service (a call past its deadline, no callback when one
//! was due, or a "not initialised" answer from a service we had initialised — T1.1) moves
//! the link to `Down`; it is re-initialised by itself with bounded exponential backoff
//! (T1.2), and "initialising, retry after ~500 ms" is honoured as such. The generation
//! number changes on every loss, so answers of the old connection are recognised and
//! dropped. Every loss and recovery is counted (T1.4).

use std::time::{Duration, Instant};

use crate::clock::backoff;
use crate::terminal::face_service::{VendorError, ERR_INITIALISING};

/// Delay before retrying an init that answered "initialising" (API-NOTES §1).
pub const INITIALISING_RETRY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Not started, or released by the app (T2.2: last resort).
    Uninitialised,
    /// Init in flight (first time).
    Initialising,
    Ready,
    /// Lost; waiting to re-init or re-initialising (T1.2).
    Disconnected,
}

/// Why the link was declared lost (T1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossReason {
    CallTimeout,
    NoCallback,
    NotInitialised,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    /// Send `initWxpayface` now.
    CallInit,
    /// The link is up: run the post-init work (feature update T4.1, preload T5, preview).
    Up { reconnected_after: Option<Duration> },
    /// The link was lost (T1.4 event).
    Lost(LossReason),
}

#[derive(Debug, Clone)]
pub struct Lifecycle {
    state: LinkState,
    initial: Duration,
    max: Duration,
    generation: u64,
    attempt: u32,
    init_in_flight: bool,
    retry_at: Option<Instant>,
    down_since: Option<Instant>,
    pub disconnects: u64,
    pub reconnects: u64,
    pub init_calls: u64,
}

impl Lifecycle {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Lifecycle {
            state: LinkState::Uninitialised,
            initial,
            max,
            generation: 0,
            attempt: 0,
            init_in_flight: false,
            retry_at: None,
            down_since: None,
            disconnects: 0,
            reconnects: 0,
            init_calls: 0,
        }
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    pub fn is_ready(&self) -> bool {
        self.state == LinkState::Ready
    }

    /// Answers of calls made under another generation are stale.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// T2.1: start init if nothing is under way; otherwise nothing (the caller waits for
    /// the answer of the init already running, or has it already).
    pub fn start(&mut self) -> Option<LinkAction> {
        match self.state {
            LinkState::Uninitialised => {
                self.state = LinkState::Initialising;
                self.attempt = 0;
                Some(self.send_init())
            }
            _ => None,
        }
    }

    fn send_init(&mut self) -> LinkAction {
        self.init_in_flight = true;
        self.retry_at = None;
        self.init_calls += 1;
        LinkAction::CallInit
    }

    /// The init call answered (`Err(None)`: it passed its deadline).
    pub fn on_init_answered(&mut self, r: Result<(), Option<VendorError>>, now: Instant) -> Option<LinkAction> {
        if !self.init_in_flight {
            return None;
        }
        self.init_in_flight = false;
        match r {
            Ok(()) => {
                let reconnected_after = self.down_since.take().map(|s| now.saturating_duration_since(s));
                if reconnected_after.is_some() {
                    self.reconnects += 1;
                }
                self.state = LinkState::Ready;
                self.attempt = 0;
                Some(LinkAction::Up { reconnected_after })
            }
            Err(Some(e)) if e.err_code == ERR_INITIALISING => {
                self.retry_at = Some(now + INITIALISING_RETRY);
                None
            }
            Err(_) => {
                self.retry_at = Some(now + backoff(self.initial, self.max, self.attempt));
                self.attempt = self.attempt.saturating_add(1);
                None
            }
        }
    }

    /// An init passed its deadline while the link was down. The library answers an init
    /// only when it connects, and an init never takes its pending slot (T9): the next one
    /// goes after the first backoff step, so the link is back the moment the service is.
    pub fn on_init_timed_out(&mut self, now: Instant) -> Option<LinkAction> {
        if !self.init_in_flight {
            return None;
        }
        if self.state != LinkState::Disconnected {
            return self.on_init_answered(Err(None), now);
        }
        self.init_in_flight = false;
        self.retry_at = Some(now + self.initial);
        None
    }

    /// T1.1: the service is gone. Flows end; reconnect after the first backoff step.
    pub fn on_lost(&mut self, reason: LossReason, now: Instant) -> Option<LinkAction> {
        if self.state != LinkState::Ready {
            return None;
        }
        self.state = LinkState::Disconnected;
        self.generation += 1;
        self.disconnects += 1;
        self.down_since = Some(now);
        self.attempt = 0;
        self.init_in_flight = false;
        self.retry_at = Some(now + self.initial);
        Some(LinkAction::Lost(reason))
    }

    /// T2.2: the app released the service; nothing reconnects until it inits again.
    pub fn on_released(&mut self) {
        self.state = LinkState::Uninitialised;
        self.generation += 1;
        self.init_in_flight = false;
        self.retry_at = None;
        self.down_since = None;
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Time passed: send the next init if its backoff elapsed.
    pub fn poll(&mut self, now: Instant) -> Option<LinkAction> {
        match self.retry_at {
            Some(t) if now >= t && !self.init_in_flight => Some(self.send_init()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terminal::face_service::ReturnCode;

    const MS: Duration = Duration::from_millis(1);

    fn life() -> Lifecycle {
        Lifecycle::new(500 * MS, 8000 * MS)
    }

    #[test]
    fn t2_1_second_init_while_initialising_or_ready_is_a_no_op() {
        let now = Instant::now();
        let mut l = life();
        assert_eq!(l.start(), Some(LinkAction::CallInit));
        assert_eq!(l.start(), None, "initialising");
        assert_eq!(l.on_init_answered(Ok(()), now), Some(LinkAction::Up { reconnected_after: None }));
        assert_eq!(l.start(), None, "initialised");
        assert_eq!(l.init_calls, 1);
    }

    #[test]
    fn t2_initialising_answer_retries_after_500ms() {
        let now = Instant::now();
        let mut l = life();
        l.start();
        let busy = VendorError::new(ReturnCode::Error, ERR_INITIALISING);
        assert_eq!(l.on_init_answered(Err(Some(busy)), now), None);
        assert_eq!(l.poll_timeout(), Some(now + INITIALISING_RETRY));
        assert_eq!(l.poll(now + 499 * MS), None);
        assert_eq!(l.poll(now + INITIALISING_RETRY), Some(LinkAction::CallInit));
    }

    #[test]
    fn t1_2_reconnect_with_bounded_backoff() {
        let now = Instant::now();
        let mut l = life();
        l.start();
        l.on_init_answered(Ok(()), now);
        let g = l.generation();
        assert_eq!(l.on_lost(LossReason::CallTimeout, now), Some(LinkAction::Lost(LossReason::CallTimeout)));
        assert_eq!(l.on_lost(LossReason::CallTimeout, now), None, "already down");
        assert_ne!(l.generation(), g, "old answers become stale");
        assert_eq!(l.state(), LinkState::Disconnected);
        let mut t = now;
        let mut delays = vec![];
        for _ in 0..8 {
            let at = l.poll_timeout().expect("a retry is planned");
            delays.push(at - t);
            t = at;
            assert_eq!(l.poll(t), Some(LinkAction::CallInit));
            l.on_init_answered(Err(None), t);
        }
        assert_eq!(delays[..5], [500 * MS, 500 * MS, 1000 * MS, 2000 * MS, 4000 * MS]);
        assert!(delays.iter().all(|d| *d <= 8000 * MS), "bounded: {delays:?}");
        let t = l.poll_timeout().expect("retry");
        l.poll(t);
        let up = l.on_init_answered(Ok(()), t);
        assert_eq!(up, Some(LinkAction::Up { reconnected_after: Some(t - now) }));
        assert_eq!((l.disconnects, l.reconnects), (1, 1));
    }

    #[test]
    fn t9_an_init_parked_while_disconnected_is_sent_again_after_the_first_step() {
        let now = Instant::now();
        let mut l = life();
        l.start();
        l.on_init_answered(Ok(()), now);
        l.on_lost(LossReason::CallTimeout, now);
        let mut t = now;
        for _ in 0..6 {
            t = l.poll_timeout().expect("retry");
            assert_eq!(l.poll(t), Some(LinkAction::CallInit));
            assert_eq!(l.on_init_timed_out(t + 15_000 * MS), None);
            assert_eq!(l.poll_timeout(), Some(t + 15_000 * MS + 500 * MS), "no growing gap");
        }
        assert!(t > now);
    }

    #[test]
    fn t2_2_release_stops_reconnecting() {
        let now = Instant::now();
        let mut l = life();
        l.start();
        l.on_init_answered(Ok(()), now);
        l.on_released();
        assert_eq!(l.state(), LinkState::Uninitialised);
        assert_eq!(l.poll_timeout(), None);
        assert_eq!(l.on_lost(LossReason::NoCallback, now), None);
        assert_eq!(l.start(), Some(LinkAction::CallInit), "an explicit init starts again");
    }
}
