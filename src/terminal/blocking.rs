//! Calling the engine from a plain thread (JNI, a Rust app without an async runtime).
//! [`Terminal`](crate::terminal::engine::Terminal)'s futures are oneshot receivers that
//! need no particular runtime, so a thread-park waker is all a calling thread needs: no
//! runtime per call and no extra thread.
//!
//! Each answer crosses from the engine's thread to the caller's. Waking a sleeping thread
//! costs a futex call and the scheduler's wake-up latency (tens of microseconds on a
//! virtual CPU); the engine usually answers within a few microseconds, so the caller first
//! spins for a short, bounded while ([`SPIN`]) and sleeps only if the answer is slower.
//! The engine's own thread does the same before it sleeps ([`EngineSpin`]), since the
//! app calls a flow's steps back to back.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long a waiting thread spins before it sleeps. Bounded so that a long wait (a
/// recognition takes seconds) costs at most this much CPU per wake-up.
pub const SPIN: Duration = Duration::from_micros(50);

struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Spins until `done()` holds or `budget` has passed; returns whether `done()` held.
pub(crate) fn spin_until(budget: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if done() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= budget {
            return done();
        }
    }
}

/// The engine thread's spin before it sleeps: its runtime's park hook spins until the
/// engine's future is woken (an app call, a service answer from another thread) or a task
/// is scheduled from another thread, for at most [`SPIN`].
#[derive(Default)]
pub(crate) struct EngineSpin {
    woken: Arc<AtomicBool>,
}

impl EngineSpin {
    /// For `Builder::on_thread_park` of the engine's current-thread runtime.
    pub(crate) fn park_hook(&self) -> impl Fn() + Send + Sync + 'static {
        let woken = self.woken.clone();
        move || {
            // tokio calls the hook inside the runtime; outside one there is nothing to spin for.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let metrics = handle.metrics();
                spin_until(SPIN, || woken.load(Ordering::Acquire) || metrics.global_queue_depth() > 0);
            }
        }
    }

    /// Wraps the future the runtime blocks on, so that its wake-ups are seen by the hook.
    pub(crate) fn watch<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        let woken = self.woken.clone();
        let mut fut = Box::pin(fut);
        let mut noting: Option<(Waker, Waker)> = None;
        std::future::poll_fn(move |cx| {
            woken.store(false, Ordering::Release);
            let waker = match &noting {
                Some((inner, ours)) if inner.will_wake(cx.waker()) => ours,
                _ => {
                    let ours = Waker::from(Arc::new(NotingWaker { inner: cx.waker().clone(), woken: woken.clone() }));
                    &noting.insert((cx.waker().clone(), ours)).1
                }
            };
            fut.as_mut().poll(&mut Context::from_waker(waker))
        })
    }
}

struct NotingWaker {
    inner: Waker,
    woken: Arc<AtomicBool>,
}

impl Wake for NotingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.inner.wake_by_ref();
    }
}

/// Runs `fut` to completion on the current thread.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let state = Arc::new(ThreadWaker { thread: std::thread::current(), woken: AtomicBool::new(false) });
    let waker = Waker::from(state.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        if !spin_until(SPIN, || state.woken.load(Ordering::Acquire)) {
            // A wake between the spin and the park leaves the park token set, so the
            // park returns at once: no wake-up is lost.
            std::thread::park();
        }
        state.woken.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_arriving_before_and_after_the_spin_both_complete() {
        for delay in [Duration::ZERO, Duration::from_micros(10), SPIN * 20] {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let h = std::thread::spawn(move || {
                std::thread::sleep(delay);
                tx.send(delay).unwrap();
            });
            assert_eq!(block_on(rx).unwrap(), delay);
            h.join().unwrap();
        }
    }

    #[test]
    fn the_engine_runtime_with_its_park_hook_sees_every_remote_wake() {
        let spin = EngineSpin::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(spin.park_hook())
            .build()
            .unwrap();
        for delay in [Duration::ZERO, Duration::from_micros(10), SPIN * 20] {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let h = std::thread::spawn(move || {
                std::thread::sleep(delay);
                tx.send(delay).unwrap();
            });
            assert_eq!(rt.block_on(spin.watch(rx)).unwrap(), delay);
            h.join().unwrap();
        }
        // A task woken from another thread (the outbox's, say) runs too.
        let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
        let task = rt.spawn(async move { rx.await.unwrap() + 1 });
        std::thread::spawn(move || tx.send(41).unwrap());
        assert_eq!(rt.block_on(spin.watch(task)).unwrap(), 42);
    }

    #[test]
    fn spin_until_reports_whether_the_condition_held() {
        assert!(spin_until(Duration::from_micros(1), || true));
        assert!(!spin_until(Duration::from_micros(1), || false));
    }
}
