//! Where the outbox's statements run (SPEC T7.8, DESIGN "Nothing is lost"; store I/O
//! never on the actor's thread or the app's): on a file store every statement — the
//! credential's insert with its `synchronous=FULL` commit, the delivery's state changes,
//! the scans after a restart — runs on tokio's blocking pool, one at a time in the order
//! submitted, so an fsync on a terminal's eMMC (milliseconds, up to a second) stalls
//! neither the engine's recognition nor the app. A job answers through a [`Pending`],
//! which an async caller awaits and a blocking caller waits on. A memory store (tests,
//! benchmarks) does no I/O: its statements run inline, where a hand-off to another
//! thread would cost more (a wake-up through the scheduler, tens of microseconds on a
//! busy two-core terminal) than the in-memory insert it hands off.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

/// A job: run it (`true`), or answer that it never ran (`false`, its runtime is gone).
type Job = Box<dyn FnOnce(bool) + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// A drainer is running on the blocking pool.
    draining: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    rt: tokio::runtime::Handle,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for job in self.queue.get_mut().jobs.drain(..) {
            job(false);
        }
    }
}

/// Where the outbox's statements run: one job at a time, in the order submitted, on
/// tokio's blocking pool (which also keeps paused test time from jumping ahead while a
/// commit runs), or inline for a memory store.
pub(crate) struct StoreJobs {
    shared: Option<Arc<Shared>>,
}

impl StoreJobs {
    /// Inline: for a memory store only.
    pub(crate) fn inline() -> StoreJobs {
        StoreJobs { shared: None }
    }

    /// Off the caller's thread. Must be called inside a tokio runtime.
    pub(crate) fn start() -> Result<StoreJobs> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Internal("the outbox needs a tokio runtime".into()))?;
        Ok(StoreJobs { shared: Some(Arc::new(Shared { queue: Mutex::new(Queue::default()), rt })) })
    }

    /// Runs `f` after every job submitted before it. A panic in `f` answers an internal
    /// error (and is a bug in facepay); it never stops the jobs after it.
    pub(crate) fn run<T, F>(&self, f: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let slot = Arc::new(Slot {
            value: Mutex::new(None),
            ready: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            cv: Condvar::new(),
        });
        let done = slot.clone();
        let job = move |run: bool| {
            let r = if run {
                std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
                    tracing::error!("outbox: a store job panicked (a bug in facepay)");
                    Err(Error::Internal("outbox store job panicked".into()))
                })
            } else {
                Err(Error::Closed)
            };
            done.complete(r);
        };
        match &self.shared {
            None => job(true),
            Some(shared) => {
                let start = {
                    let mut q = shared.queue.lock();
                    q.jobs.push_back(Box::new(job));
                    !std::mem::replace(&mut q.draining, true)
                };
                if start {
                    let s = shared.clone();
                    // Dropped unrun only with its runtime: `Shared::drop` answers the jobs.
                    drop(shared.rt.spawn_blocking(move || drain(&s)));
                }
            }
        }
        Pending(slot)
    }
}

/// Runs jobs until the queue is empty, then ends (the next `run` starts another).
fn drain(s: &Shared) {
    loop {
        let job = {
            let mut q = s.queue.lock();
            match q.jobs.pop_front() {
                Some(job) => job,
                None => {
                    q.draining = false;
                    return;
                }
            }
        };
        job(true);
    }
}

struct Slot<T> {
    value: Mutex<Option<Result<T>>>,
    ready: AtomicBool,
    waker: AtomicWaker,
    cv: Condvar,
}

impl<T> Slot<T> {
    fn complete(&self, r: Result<T>) {
        {
            // Under the lock: a `wait` that saw no answer is already waiting on `cv`.
            let mut v = self.value.lock();
            *v = Some(r);
            self.ready.store(true, Ordering::Release);
            self.cv.notify_all();
        }
        self.waker.wake();
    }

    fn take(&self) -> Result<T> {
        self.value.lock().take().unwrap_or_else(|| Err(Error::Internal("outbox store answer taken twice".into())))
    }
}

/// The answer of one job: awaited (`Future`) or waited for ([`Pending::wait`]).
#[must_use = "the job's answer says whether it was committed"]
pub(crate) struct Pending<T>(Arc<Slot<T>>);

impl<T> Pending<T> {
    /// The answer is there (always, for a memory store's inline job): `wait` returns at once.
    pub(crate) fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    /// Blocks the calling thread until the answer is there. Not for a runtime's thread.
    pub(crate) fn wait(self) -> Result<T> {
        let mut v = self.0.value.lock();
        while !self.0.ready.load(Ordering::Acquire) {
            self.0.cv.wait(&mut v);
        }
        drop(v);
        self.0.take()
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        if !self.0.ready.load(Ordering::Acquire) {
            self.0.waker.register(cx.waker());
            if !self.0.ready.load(Ordering::Acquire) {
                return Poll::Pending;
            }
        }
        Poll::Ready(self.0.take())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().expect("rt")
    }

    #[test]
    fn jobs_run_in_order_and_answer_each_way() {
        let rt = rt();
        let t = rt.block_on(async { StoreJobs::start() }).expect("thread");
        let log = Arc::new(Mutex::new(Vec::new()));
        let pendings: Vec<_> = (0..100)
            .map(|i| {
                let log = log.clone();
                t.run(move || {
                    log.lock().push(i);
                    Ok(i * 2)
                })
            })
            .collect();
        for (i, p) in pendings.into_iter().enumerate() {
            assert_eq!(p.wait().expect("answer"), i * 2);
        }
        assert_eq!(*log.lock(), (0..100).collect::<Vec<_>>(), "submission order");
        assert_eq!(rt.block_on(t.run(|| Ok("awaited"))).expect("awaited"), "awaited");
        let inline = StoreJobs::inline().run(|| Ok(7));
        assert!(inline.is_ready(), "a memory store's job has run when `run` returns");
        assert_eq!(inline.wait().expect("inline"), 7);
    }

    #[test]
    fn a_panicking_job_answers_an_error_and_the_jobs_go_on() {
        let rt = rt();
        let t = rt.block_on(async { StoreJobs::start() }).expect("thread");
        let p = t.run(|| -> Result<()> { panic!("job bug") });
        assert_eq!(p.wait().unwrap_err().code(), crate::error::ErrorCode::Internal);
        assert_eq!(t.run(|| Ok(1)).wait().expect("still running"), 1);
    }

    #[test]
    fn dropping_the_handle_still_runs_what_was_submitted() {
        let rt = rt();
        let t = rt.block_on(async { StoreJobs::start() }).expect("thread");
        let p = t.run(|| {
            std::thread::sleep(Duration::from_millis(20));
            Ok(3)
        });
        let q = t.run(|| Ok(4));
        drop(t);
        assert_eq!(p.wait().expect("first"), 3);
        assert_eq!(q.wait().expect("second"), 4);
    }
}
