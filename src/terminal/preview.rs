//! Preview binding rules (SPEC T6). Pure. The surface must be real (T6.1: no null, no zero
//! size), one preview view serves the whole app (T6.2: a second view is refused), it is
//! bound only once its size stopped changing for a settle period (T6.3: binding during
//! resizes renders white), it is bound again after it was destroyed and recreated (T6.1)
//! or after the service reconnected, and a frame that is not 3:4 is reported (T6.4).

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::terminal::face_service::Surface;

/// T6.4: the service's default frame.
pub const DEFAULT_FRAME: (u32, u32) = (480, 640);

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
}

/// True if `w:h` is 3:4 within 2 %.
pub fn is_three_by_four(w: u32, h: u32) -> bool {
    h > 0 && ((f64::from(w) / f64::from(h)) - 0.75).abs() <= 0.015
}

impl PreviewBinder {
    pub fn new(settle: Duration) -> Self {
        PreviewBinder { settle, view_id: None, surface: None, bound: None }
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
    }

    /// The service refused the bind: try again after a settle period, not at once.
    pub fn on_bind_failed(&mut self, now: Instant) {
        self.bound = None;
        if let Some((s, _)) = self.surface {
            self.surface = Some((s, now));
        }
    }

    /// When a pending bind becomes due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.surface, self.bound) {
            (Some((_, since)), None) => Some(since + self.settle),
            _ => None,
        }
    }

    /// Bind if the size has been stable for the settle period (T6.3).
    pub fn poll(&mut self, now: Instant) -> Option<PreviewAction> {
        let (s, since) = self.surface?;
        if self.bound.is_none() && now >= since + self.settle {
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
