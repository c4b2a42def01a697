//! Runs the future of an asynchronous native (`Engine_*Async`, `Engine_cancelFlow`) on whichever
//! thread wakes it, with no runtime and no hand-off: the calling Java thread polls it first (that
//! only sends the first command to the engine and returns), then the engine's thread polls it
//! each time it answers — the engine's answers are oneshot sends, whose wake-up lands here — so a
//! pay flow's next step goes out and its completion (`NativeCompletion.done`) is delivered by the
//! thread that finished the operation. The app's thread is woken once, by its own dispatcher
//! (issue 13: the Kotlin async path within 50 µs of Rust; a hand-off to another thread costs a
//! wake-up of tens of microseconds per step on a virtual CPU). What runs here never blocks: a
//! step sends into the engine's unbounded queue, and the Kotlin side of `done` only enqueues
//! (`Completion.kt`), so the engine is never blocked by Kotlin (SPEC T1.1: every call answers
//! within its deadline). A panic while polling is caught here, never unwinds into the engine.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use parking_lot::Mutex;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Nobody polls the future now.
const IDLE: u8 = 0;
/// A thread is polling it.
const RUNNING: u8 = 1;
/// A thread is polling it and it was woken meanwhile: that thread polls once more.
const NOTIFIED: u8 = 2;
/// It completed (or panicked) and is gone.
const DONE: u8 = 3;

struct Task {
    state: AtomicU8,
    // Locked only by the thread that moved `state` to RUNNING: never contended.
    fut: Mutex<Option<BoxFuture>>,
}

/// Polls `fut` now, on the calling thread, and from then on on the thread of each wake-up.
pub fn spawn(fut: impl Future<Output = ()> + Send + 'static) {
    let task = Arc::new(Task { state: AtomicU8::new(IDLE), fut: Mutex::new(Some(Box::pin(fut))) });
    task.run();
}

impl Task {
    fn run(self: &Arc<Self>) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let next = match s {
                IDLE => RUNNING,
                RUNNING => NOTIFIED,
                _ => return, // NOTIFIED: the polling thread polls again; DONE: nothing to do
            };
            match self.state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) if next == NOTIFIED => return,
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        // The poll may call into Java (`flowStarted`, `done`) and drop global references.
        crate::attach::ensure();
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let mut slot = self.fut.lock();
        loop {
            let polled = match slot.as_mut() {
                Some(f) => catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(&mut cx))),
                None => Ok(Poll::Ready(())),
            };
            match polled {
                Ok(Poll::Pending) => {
                    match self.state.compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => return,
                        // NOTIFIED: woken while polling (the answer came in meanwhile): poll again.
                        Err(_) => self.state.store(RUNNING, Ordering::Release),
                    }
                }
                Ok(Poll::Ready(())) | Err(_) => {
                    if polled.is_err() {
                        tracing::error!("a panic while polling an asynchronous native (a bug in facepay)");
                    }
                    self.state.store(DONE, Ordering::Release);
                    let f = slot.take();
                    drop(slot);
                    // Dropping may complete a `Completion` with CLOSED (a call into Java): guarded too.
                    if catch_unwind(AssertUnwindSafe(move || drop(f))).is_err() {
                        tracing::error!("a panic while dropping an asynchronous native (a bug in facepay)");
                    }
                    return;
                }
            }
        }
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.run();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_ready_future_completes_on_the_calling_thread() {
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        spawn(async move {
            d.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }

    /// Sends `v` from a new thread named `name`, and waits for that thread to end.
    fn answer_from(name: &str, tx: tokio::sync::oneshot::Sender<u8>, v: u8) {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || tx.send(v).expect("the task waits"))
            .expect("thread")
            .join()
            .expect("joined");
    }

    #[test]
    fn each_step_runs_on_the_thread_that_answered_it() {
        let (tx1, rx1) = tokio::sync::oneshot::channel::<u8>();
        let (tx2, rx2) = tokio::sync::oneshot::channel::<u8>();
        let (out_tx, out_rx) = std::sync::mpsc::channel();
        spawn(async move {
            let a = rx1.await.expect("sent");
            let first = std::thread::current().name().map(str::to_string);
            let b = rx2.await.expect("sent");
            let second = std::thread::current().name().map(str::to_string);
            out_tx.send((a + b, first, second)).expect("the test waits");
        });
        // Nothing ran yet beyond the first await.
        assert!(out_rx.try_recv().is_err());
        answer_from("answers-1", tx1, 1);
        answer_from("answers-2", tx2, 2);
        let (sum, first, second) = out_rx.recv().expect("the task completed");
        assert_eq!(sum, 3);
        assert_eq!(first.as_deref(), Some("answers-1"));
        assert_eq!(second.as_deref(), Some("answers-2"));
    }

    #[test]
    fn a_wake_while_polling_is_not_lost() {
        // The future wakes itself during its poll (as an answer arriving mid-poll does): the
        // polling thread must poll it again rather than leave it pending forever.
        let polls = Arc::new(AtomicUsize::new(0));
        let p = polls.clone();
        spawn(std::future::poll_fn(move |cx| {
            if p.fetch_add(1, Ordering::SeqCst) < 3 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        }));
        assert_eq!(polls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_panicking_future_is_contained() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let dropped = Arc::new(AtomicUsize::new(0));
        struct Guard(Arc<AtomicUsize>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let g = Guard(dropped.clone());
        spawn(async move {
            let _g = g;
            rx.await.expect("sent");
            panic!("test: a bug in a step");
        });
        // The waking thread (here: this one) survives the panic and the future is dropped.
        tx.send(()).expect("the task waits");
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }
}
