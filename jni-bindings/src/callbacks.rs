//! The engine's way back into Kotlin: one permanently attached `facepay-callbacks` thread
//! per engine, running a single-threaded tokio runtime. It pumps the engine's event stream
//! (SPEC T1.4 disconnects/reconnects, T4.3 stale features, T3 authinfo, T8 restart advice,
//! T7 flow outcomes, T7.8 payments) and health snapshots (coalesced: at most one push per
//! 20 ms burst of changes) into the Kotlin `EventSink` as JSON. The engine only ever sends into a `broadcast` channel and flips a `Notify`, so a
//! slow Kotlin consumer never blocks it; a pump that falls more than the channel's capacity
//! behind gets one `EventsLost` event with the count (the overflow policy, documented on
//! `FacePay.events`). The completions of the asynchronous natives do not come through here:
//! the thread that answers a call completes it ([`crate::inline`]), so the app's thread is the
//! only one woken. Global references (completions, the sink) are counted in
//! [`crate::driver::LIVE_GLOBALS`] and dropped on attached threads.

use std::sync::atomic::Ordering;

use jni::ids::JMethodID;
use jni::objects::JObject;
use jni::refs::Global;
use jni::signature::{Primitive, ReturnType};
use jni::sys::jvalue;
use jni::Env;
use parking_lot::Mutex;
use tokio::sync::{broadcast, oneshot};

use facepay::terminal::engine::Terminal;
use facepay::terminal::health::Health;

use crate::driver::LIVE_GLOBALS;
use crate::ffi::FfiResult;
use crate::schema;

/// A JNI global reference counted in [`LIVE_GLOBALS`] (no growth over 100k flows).
pub struct Counted(Option<Global<JObject<'static>>>);

impl Counted {
    pub fn new(env: &mut Env<'_>, obj: &JObject<'_>) -> jni::errors::Result<Counted> {
        let g = env.new_global_ref(obj)?;
        LIVE_GLOBALS.fetch_add(1, Ordering::Relaxed);
        Ok(Counted(Some(g)))
    }

    fn obj(&self) -> &Global<JObject<'static>> {
        self.0.as_ref().expect("a Counted holds its reference until dropped")
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.0.take().is_some() {
            LIVE_GLOBALS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What an asynchronous native completes with: the JSON of its result, or a core error.
pub type Completed = Result<String, facepay::Error>;

pub struct Callbacks {
    stop: Mutex<Option<oneshot::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Callbacks {
    /// Starts the thread and the event pump of `term` into `sink` (an `io.facepay.EventSink`).
    /// `events` was subscribed before the engine ran (`Terminal::start_subscribed`): no
    /// event is missed.
    pub fn start(
        term: Terminal,
        events: broadcast::Receiver<facepay::terminal::health::EngineEvent>,
        sink: Counted,
    ) -> FfiResult<Callbacks> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| facepay::Error::Internal(format!("callback runtime: {e}")))?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let vm = crate::cache::get()?.vm.clone();
        let thread = std::thread::Builder::new()
            .name("facepay-callbacks".into())
            .spawn(move || {
                let r = vm.attach_current_thread(|_env| -> jni::errors::Result<()> {
                    // Until `stop`: then the pump pushes what the engine sent last and ends.
                    rt.block_on(pump(term, events, sink, stop_rx));
                    // Tasks still pending (none after the engine's shutdown answered them
                    // all) drop their global references here, on the attached thread.
                    drop(rt);
                    Ok(())
                });
                if let Err(e) = r {
                    tracing::error!(error = %e, "facepay callback thread could not attach");
                }
            })
            .map_err(|e| facepay::Error::Internal(format!("callback thread: {e}")))?;
        Ok(Callbacks { stop: Mutex::new(Some(stop_tx)), thread: Mutex::new(Some(thread)) })
    }

    /// Ends the thread once the pump has pushed every event still queued and the last health
    /// (the engine has shut down by then: nothing new comes).
    pub fn stop(&self) {
        if let Some(tx) = self.stop.lock().take() {
            let _ = tx.send(());
        }
        let thread = self.thread.lock().take();
        if let Some(t) = thread {
            if std::thread::current().id() != t.thread().id() && t.join().is_err() {
                tracing::error!("the facepay callback thread panicked (a bug in facepay)");
            }
        }
    }
}

fn with_env(f: impl FnOnce(&mut Env<'_>) -> jni::errors::Result<()>) {
    let vm = match crate::cache::get() {
        Ok(c) => c.vm.clone(),
        Err(_) => return,
    };
    // Cheap: every caller runs on an attached thread (this one for its whole life, the engine's
    // once `attach::ensure` made it a daemon, or a Java thread inside a native).
    let r = vm.attach_current_thread(|env| -> jni::errors::Result<()> {
        let r = env.with_local_frame(8, |env| f(env));
        if env.exception_check() {
            // A throwing Kotlin listener: cleared, never logged (it may echo app data).
            env.exception_clear();
        }
        r
    });
    if let Err(e) = r {
        tracing::warn!(error = %e, "a facepay callback into Kotlin failed");
    }
}

/// `obj.<method>(args)`, a `void` method, through its cached id.
///
/// # Safety
/// `obj` is an instance of the class `method` was looked up in, and `args` match the method's
/// parameters in number and type.
unsafe fn call_void(env: &mut Env<'_>, obj: &Counted, method: JMethodID, args: &[jvalue]) -> jni::errors::Result<()> {
    // SAFETY: the caller's contract; the id stays valid while the cache holds its class.
    unsafe { env.call_method_unchecked(obj.obj(), method, ReturnType::Primitive(Primitive::Void), args) }?;
    Ok(())
}

/// `completion.done(code, payload)`: code 0 and the result's JSON, or the error's stable
/// code and message (no personal data: the core's messages carry none). `completion` is an
/// `io.facepay.NativeCompletion` (the type the asynchronous natives declare).
pub fn deliver(completion: &Counted, r: Completed) {
    let (code, payload) = match r {
        Ok(json) => (0, json),
        Err(e) => (e.code().as_u32() as i32, e.to_string()),
    };
    with_env(|env| {
        let cache = crate::cache::get()?;
        let s = env.new_string(&payload)?;
        // SAFETY: a NativeCompletion, and `done(int, String)` takes these two.
        unsafe { call_void(env, completion, cache.completion_done, &[jvalue { i: code }, jvalue { l: s.as_raw() }]) }
    });
}

/// `completion.flowStarted(id)` on an `io.facepay.NativeCompletion`.
pub fn flow_started(completion: &Counted, id: i64) {
    with_env(|env| {
        let cache = crate::cache::get()?;
        // SAFETY: a NativeCompletion, and `flowStarted(long)` takes one long.
        unsafe { call_void(env, completion, cache.completion_flow_started, &[jvalue { j: id }]) }
    });
}

/// `sink.onEvent(json)` or `sink.onHealth(json)` on the `io.facepay.EventSink` (the type
/// `Engine_create` declares).
fn push(sink: &Counted, method: fn(&crate::cache::Cache) -> JMethodID, json: &str) {
    with_env(|env| {
        let cache = crate::cache::get()?;
        let s = env.new_string(json)?;
        // SAFETY: an EventSink, and both methods take one String.
        unsafe { call_void(env, sink, method(cache), &[jvalue { l: s.as_raw() }]) }
    });
}

/// The health as Kotlin compares it: without the authinfo's remaining time, which changes on
/// every read (Kotlin gets it with each push all the same).
fn health_key(h: &Health) -> Health {
    Health { authinfo_valid_for: None, ..h.clone() }
}

/// Health pushes are coalesced: one push at most this long after the first change of a burst
/// (a flow changes the snapshot several times within microseconds; a status panel needs none
/// of the intermediate ones, and each push costs a JSON and a JNI call on a shared CPU).
const HEALTH_COALESCE: std::time::Duration = std::time::Duration::from_millis(20);

/// After it pushes an event, the pump waits this long before it takes the next ones: the first
/// event after a quiet spell reaches Kotlin at once, the rest of a burst (a pay flow ends with
/// three, back to back with the next flow's) together, at most this much later. While it waits
/// the engine's sends wake nobody, so a burst of flows costs the callbacks thread one wake-up
/// per interval instead of one per event, and the engine no wake-up call at all. The channel
/// holds 1024 events: far more than arrive in one interval.
const EVENT_BATCH: std::time::Duration = std::time::Duration::from_millis(1);

/// Pushes every event queued now, without waiting for more.
fn drain(events: &mut broadcast::Receiver<facepay::terminal::health::EngineEvent>, sink: &Counted) {
    loop {
        match events.try_recv() {
            Ok(ev) => push(sink, |c| c.sink_on_event, &schema::event_json(&ev)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                push(sink, |c| c.sink_on_event, &schema::events_lost_json(n));
            }
            Err(_) => break,
        }
    }
}

async fn pump(
    term: Terminal,
    mut events: broadcast::Receiver<facepay::terminal::health::EngineEvent>,
    sink: Counted,
    mut stop: oneshot::Receiver<()>,
) {
    let notify = term.health_notify();
    let mut last: Option<Health> = None;
    let push_health = |last: &mut Option<Health>| {
        let h = term.health();
        let key = health_key(&h);
        if last.as_ref() != Some(&key) {
            push(&sink, |c| c.sink_on_health, &schema::health_json(&h));
            *last = Some(key);
        }
    };
    push_health(&mut last);
    let mut due: Option<tokio::time::Instant> = None;
    let mut quiet_until: Option<tokio::time::Instant> = None;
    loop {
        let wait_due = async {
            match due {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let wait_quiet = async {
            if let Some(q) = quiet_until {
                tokio::time::sleep_until(q).await;
            }
        };
        tokio::select! {
            biased;
            ev = events.recv(), if quiet_until.is_none() => {
                match ev {
                    Ok(ev) => {
                        push(&sink, |c| c.sink_on_event, &schema::event_json(&ev));
                        due.get_or_insert_with(|| tokio::time::Instant::now() + HEALTH_COALESCE);
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        push(&sink, |c| c.sink_on_event, &schema::events_lost_json(n));
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
                // Whatever else is queued now goes at once; what comes later, after EVENT_BATCH.
                drain(&mut events, &sink);
                quiet_until = Some(tokio::time::Instant::now() + EVENT_BATCH);
            }
            // `Engine_close` stops the pump after the engine's shutdown: the engine's last
            // events (sent within EVENT_BATCH of the previous push, maybe) still go out.
            _ = &mut stop => {
                drain(&mut events, &sink);
                break;
            }
            _ = wait_quiet, if quiet_until.is_some() => {
                quiet_until = None;
            }
            // A change while a push is due is in that push: no wake-up for it (`notify_one`
            // keeps a permit, so a change after the push is not missed either).
            _ = notify.notified(), if due.is_none() => {
                due.get_or_insert_with(|| tokio::time::Instant::now() + HEALTH_COALESCE);
            }
            _ = wait_due => {
                due = None;
                push_health(&mut last);
            }
        }
    }
    push_health(&mut last);
    // The sink's reference is dropped here, on the attached thread.
    drop(sink);
}
