//! Preview binding rules (SPEC T6). Pure. The surface must be real (T6.1: no null, no zero
//! size), one preview view serves the whole app (T6.2: a second view is refused), it is
//! bound only once its size stopped changing for a settle period (T6.3: binding during
//! resizes renders white), it is bound again after it was destroyed and recreated (T6.1)
//! or after the service reconnected, and a frame that is not 3:4 is reported (T6.4). A bind
//! the service refuses is retried with exponential back-off (the settle period doubling up
//! to [`BIND_RETRY_MAX`]), not every settle period for ever; a bind that answers, a new
//! surface or a reconnected service starts the back-off over.

use std::time::{Duration, Instant};

use crate::clock::backoff;
use crate::error::{Error, Result};
use crate::terminal::face_service::Surface;

/// T6.4: the service's default frame.
pub const DEFAULT_FRAME: (u32, u32) = (480, 640);

/// The longest pause between two binds the service refused.
pub const BIND_RETRY_MAX: Duration = Duration::from_secs(30);

/// What the runtime must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewAction {
    Bind(Surface),
    Unbind,
    /// T6.4: the view is not 3:4 (width:height); users of some heights may not fit.
    AspectWarning {
        width: u32,
        height: u32,
    },
}

#[derive(Debug, Clone)]
pub struct PreviewBinder {
    settle: Duration,
    /// The app's one view (T6.2), by id, once seen.
    view_id: Option<u64>,
    /// The live surface and when its size last changed.
    surface: Option<(Surface, Instant)>,
    bound: Option<Surface>,
    /// Binds refused in a row since the last one that answered (back-off step).
    refusals: u32,
    /// A refused bind is not tried again before this.
    retry_at: Option<Instant>,
}

/// True if `w:h` is 3:4 within 2 %.
pub fn is_three_by_four(w: u32, h: u32) -> bool {
    h > 0 && ((f64::from(w) / f64::from(h)) - 0.75).abs() <= 0.015
}

impl PreviewBinder {
    pub fn new(settle: Duration) -> Self {
        PreviewBinder { settle, view_id: None, surface: None, bound: None, refusals: 0, retry_at: None }
    }

    pub fn bound(&self) -> Option<Surface> {
        self.bound
    }

    /// The surface was created or changed size.
    pub fn on_surface(&mut self, s: Surface, now: Instant) -> Result<Vec<PreviewAction>> {
        if s.id == 0 {
            return Err(Error::invalid_arg("surface", "null surface (T6.1)"));
        }
        if s.width == 0 || s.height == 0 {
            return Err(Error::invalid_arg("surface", "zero size: bind once the view is laid out (T6.3)"));
        }
        match self.view_id {
            Some(v) if v != s.id && self.surface.is_some() => {
                return Err(Error::invalid_arg("surface", "one preview view for the whole app (T6.2)"));
            }
            _ => self.view_id = Some(s.id),
        }
        let changed = self.surface.is_none_or(|(old, _)| old != s);
        let mut out = Vec::new();
        if changed {
            if !is_three_by_four(s.width, s.height) {
                out.push(PreviewAction::AspectWarning { width: s.width, height: s.height });
            }
            self.surface = Some((s, now));
            self.forget_refusals();
            if self.bound.is_some_and(|b| b != s) {
                // Resized while bound: unbind now, bind again once the size settles.
                self.bound = None;
                out.push(PreviewAction::Unbind);
            }
        }
        Ok(out)
    }

    /// The surface was destroyed (T6.1: it must be bound again when recreated).
    pub fn on_destroyed(&mut self) -> Vec<PreviewAction> {
        self.surface = None;
        match self.bound.take() {
            Some(_) => vec![PreviewAction::Unbind],
            None => vec![],
        }
    }

    /// The service lost its preview (reconnect): bind again when possible.
    pub fn on_service_reset(&mut self) {
        self.bound = None;
        self.forget_refusals();
    }

    /// The service accepted the bind (it may answer more than once: VENDOR-API §3).
    pub fn on_bind_answered(&mut self) {
        self.forget_refusals();
    }

    /// The service refused the bind: try again after a back-off that doubles with every
    /// refusal in a row (the settle period first), up to [`BIND_RETRY_MAX`].
    pub fn on_bind_failed(&mut self, now: Instant) {
        self.bound = None;
        let wait = backoff(self.settle, BIND_RETRY_MAX.max(self.settle), self.refusals);
        self.refusals = self.refusals.saturating_add(1);
        self.retry_at = Some(now + wait);
    }

    /// Binds refused in a row so far.
    pub fn refusals(&self) -> u32 {
        self.refusals
    }

    fn forget_refusals(&mut self) {
        self.refusals = 0;
        self.retry_at = None;
    }

    /// When a pending bind becomes due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.surface, self.bound) {
            (Some((_, since)), None) => {
                let settled = since + self.settle;
                Some(self.retry_at.map_or(settled, |r| r.max(settled)))
            }
            _ => None,
        }
    }

    /// Bind if the size has been stable for the settle period (T6.3) and no refused bind's
    /// back-off is running.
    pub fn poll(&mut self, now: Instant) -> Option<PreviewAction> {
        let (s, _) = self.surface?;
        if self.bound.is_none() && self.poll_timeout().is_some_and(|t| now >= t) {
            self.bound = Some(s);
            return Some(PreviewAction::Bind(s));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_millis(300);

    fn s(w: u32, h: u32) -> Surface {
        Surface { id: 7, width: w, height: h }
    }

    #[test]
    fn t6_1_null_surface_refused_and_rebound_after_destroy() {
        let now = Instant::now();
        let mut p = PreviewBinder::new(SETTLE);
        assert!(p.on_surface(Surface { id: 0, width: 480, height: 640 }, now).is_err());
        p.on_surface(s(480, 640), now).expect("ok");
        assert_eq!(p.poll(now + SETTLE), Some(PreviewAction::Bind(s(480, 640))));
        assert_eq!(p.on_destroyed(), vec![PreviewAction::Unbind]);
        assert_eq!(p.poll(now + 10 * SETTLE), None, "nothing to bind while destroyed");
        let t = now + 20 * SETTLE;
        p.on_surface(s(480, 640), t).expect("recreated");
        assert_eq!(p.poll(t + SETTLE), Some(PreviewAction::Bind(s(480, 640))));
    }

    #[test]
    fn t6_2_one_view_for_the_whole_app() {
        let now = Instant::now();
        let mut p = PreviewBinder::new(SETTLE);
        p.on_surface(s(480, 640), now).expect("first view");
        let e = p.on_surface(Surface { id: 8, width: 480, height: 640 }, now).expect_err("second view");
        assert!(e.to_string().contains("one preview view"));
    }

    #[test]
    fn t6_3_bind_only_once_the_size_is_final() {
        let now = Instant::now();
        let mut p = PreviewBinder::new(SETTLE);
        p.on_surface(s(300, 400), now).expect("ok");
        assert_eq!(p.poll(now + SETTLE / 2), None);
        let t = now + SETTLE / 2;
        p.on_surface(s(600, 800), t).expect("resized");
        assert_eq!(p.poll(now + SETTLE), None, "the resize restarted the settle period");
        assert_eq!(p.poll_timeout(), Some(t + SETTLE));
        assert_eq!(p.poll(t + SETTLE), Some(PreviewAction::Bind(s(600, 800))));
        // A resize after binding unbinds, then binds the final size.
        let t2 = t + 2 * SETTLE;
        assert_eq!(p.on_surface(s(450, 600), t2).expect("ok"), vec![PreviewAction::Unbind]);
        assert_eq!(p.poll(t2 + SETTLE), Some(PreviewAction::Bind(s(450, 600))));
    }

    #[test]
    fn t6_1_a_refused_bind_is_retried_after_a_settle_period() {
        let now = Instant::now();
        let mut p = PreviewBinder::new(SETTLE);
        p.on_surface(s(480, 640), now).expect("ok");
        assert!(p.poll(now + SETTLE).is_some());
        let t = now + 2 * SETTLE;
        p.on_bind_failed(t);
        assert_eq!(p.poll(t), None, "not at once");
        assert_eq!(p.poll_timeout(), Some(t + SETTLE));
        assert_eq!(p.poll(t + SETTLE), Some(PreviewAction::Bind(s(480, 640))));
    }

    #[test]
    fn t6_1_refused_binds_back_off_up_to_a_cap_and_start_over_after_an_answer() {
        let now = Instant::now();
        let mut p = PreviewBinder::new(SETTLE);
        p.on_surface(s(480, 640), now).expect("ok");
        let mut t = now + SETTLE;
        assert!(p.poll(t).is_some());
        let mut waits = vec![];
        for _ in 0..10 {
            p.on_bind_failed(t);
            let due = p.poll_timeout().expect("a retry is planned");
            assert_eq!(p.poll(due - Duration::from_millis(1)), None, "not before its back-off");
            assert!(p.poll(due).is_some());
            waits.push(due - t);
            t = due;
        }
        let ms: Vec<u128> = waits.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms[..7], [300, 600, 1200, 2400, 4800, 9600, 19200]);
        assert!(waits[7..].iter().all(|w| *w == BIND_RETRY_MAX), "capped: {ms:?}");
        assert_eq!(p.refusals(), 10);
        // An answered bind starts over: the next refusal waits one settle period again.
        p.on_bind_answered();
        p.on_bind_failed(t);
        assert_eq!(p.poll_timeout(), Some(t + SETTLE));
        // So does a reconnected service.
        for _ in 0..3 {
            p.on_bind_failed(t);
        }
        p.on_service_reset();
        assert_eq!(p.refusals(), 0);
        assert_eq!(p.poll(t + SETTLE), Some(PreviewAction::Bind(s(480, 640))));
    }

    #[test]
    fn t6_4_non_three_by_four_is_reported() {
        let now = Instant::now();
        let mut p = PreviewBinder::new(SETTLE);
        assert_eq!(p.on_surface(s(480, 640), now).expect("ok"), vec![]);
        assert!(is_three_by_four(DEFAULT_FRAME.0, DEFAULT_FRAME.1));
        let mut q = PreviewBinder::new(SETTLE);
        assert_eq!(
            q.on_surface(s(1080, 1920), now).expect("ok"),
            vec![PreviewAction::AspectWarning { width: 1080, height: 1920 }]
        );
    }
}
