//! The vendor client library's connection model inside the simulator (SPEC T9,
//! VENDOR-API §3): while the service is not connected every call waits in ONE pending slot
//! (a later call overwrites it, and the overwritten call's callback never answers); the
//! library's 10 s timeout, armed at most once per library lifetime and cancelled for good
//! by the next `onServiceConnected` (VENDOR-API §3.2, §3.4), answers the call in the slot
//! FAIL `271378621` and keeps it, so its real answer follows after the reconnect (a
//! "late answer"); on reconnect the library initialises the new service itself, with its
//! own no-op callback (no app init callback fires again), re-preloads silently if an
//! authed call was ever made, and replays the slot — a call that already answered FAIL is
//! replayed right there, inside the connect, before any later call of the app can run (as
//! the library's `handleServiceConnected` does). An init while disconnected is kept as the
//! library's `mInitCallback` (a newer init drops the older one) and answered at connect.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{Inner, State};
use crate::terminal::face_service::{Op, ERR_INITIALISING};

/// The library's reconnect timeout (VENDOR-API §3.4).
pub const LIBRARY_TIMEOUT: Duration = Duration::from_secs(10);

/// What wakes a call waiting in the slot.
pub(super) enum Wake {
    /// The library's timeout answered FAIL with this code; the call stays in the slot.
    Fail(i64),
    /// The library reconnected and replays the call.
    Go,
}

/// The real answer of a call that already answered FAIL, run at the reconnect.
pub(super) type Late = Box<dyn FnOnce(&Arc<Inner>, &mut State) + Send>;

struct Slot {
    id: u64,
    op: Op,
    failed: bool,
    tx: mpsc::UnboundedSender<Wake>,
    late: Option<Late>,
}

/// The library's side of the connection.
pub(super) struct LinkState {
    connected: bool,
    slot: Option<Slot>,
    timeout_armed: bool,
    /// `onServiceConnected` count: the one that follows the arming removes the timeout's
    /// message, and nothing ever sends it again.
    connects: u64,
    init_waiter: Option<oneshot::Sender<()>>,
    /// Numbers the calls that wait in the slot.
    slot_seq: u64,
    /// A call with `authinfo` was made (`lastRequestInfo`): the library re-preloads by
    /// itself after a reconnect.
    pub(super) authed_seen: bool,
}

impl Default for LinkState {
    fn default() -> Self {
        LinkState {
            connected: true,
            slot: None,
            timeout_armed: false,
            connects: 0,
            init_waiter: None,
            slot_seq: 0,
            authed_seen: false,
        }
    }
}

impl LinkState {
    pub(super) fn connected(&self) -> bool {
        self.connected
    }
}

/// How a call got in.
pub(super) enum Entered {
    /// Connected: dispatched now.
    Go,
    /// Not connected: waiting in the pending slot (under this number).
    Slot(mpsc::UnboundedReceiver<Wake>, u64),
}

/// A call arrives at the library.
pub(super) fn enter(s: &mut State, op: Op) -> Entered {
    if s.link.connected {
        return Entered::Go;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    s.link.slot_seq += 1;
    let id = s.link.slot_seq;
    if let Some(old) = s.link.slot.replace(Slot { id, op, failed: false, tx, late: None }) {
        // The overwritten call's callback never answers (its sender is dropped here).
        tracing::debug!(old = ?old.op, new = ?op, "sim library: pending call overwritten");
        s.stats.pending_overwrites += 1;
    }
    Entered::Slot(rx, id)
}

/// The call `id` answered FAIL and stays in the slot: its real answer `late` runs at the
/// reconnect. If the reconnect came first (its `Go` is in `rx`), it runs now; if a later
/// call overwrote it, it never runs.
pub(super) fn keep_late(
    inner: &Arc<Inner>,
    s: &mut State,
    id: u64,
    late: Late,
    rx: &mut mpsc::UnboundedReceiver<Wake>,
) {
    if let Some(slot) = s.link.slot.as_mut().filter(|x| x.id == id) {
        slot.late = Some(late);
    } else if let Ok(Wake::Go) = rx.try_recv() {
        late(inner, s);
    }
}

/// An init arrives while not connected: kept as `mInitCallback`, answered at connect.
pub(super) fn park_init(s: &mut State) -> Option<oneshot::Receiver<()>> {
    if s.link.connected {
        return None;
    }
    let (tx, rx) = oneshot::channel();
    // An earlier init callback not yet answered is dropped (VENDOR-API §3.1).
    s.link.init_waiter = Some(tx);
    Some(rx)
}

/// The service died under the library (`onServiceDisconnected`): the library rebinds at
/// once (it comes back after `down_for`) and, the first time ever, arms its timeout.
pub(super) fn on_disconnected(inner: &Arc<Inner>, generation: u64, down_for: Duration) {
    let (arm, connects) = {
        let mut s = inner.state.lock();
        s.link.connected = false;
        (!std::mem::replace(&mut s.link.timeout_armed, true), s.link.connects)
    };
    let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
    if arm {
        let weak = Arc::downgrade(inner);
        rt.spawn(async move {
            tokio::time::sleep(LIBRARY_TIMEOUT).await;
            let Some(inner) = weak.upgrade() else { return };
            let mut s = inner.state.lock();
            // `onServiceConnected` removed the message: the timeout never fires, not even
            // in a later outage (the handler is never armed again).
            if s.link.connected || s.link.connects != connects {
                return;
            }
            let State { link, stats, .. } = &mut *s;
            if let Some(slot) = link.slot.as_mut().filter(|x| !x.failed) {
                // A bind is in flight (the library rebinds at once): "initialising".
                slot.failed = true;
                stats.timeout_fails += 1;
                let _ = slot.tx.send(Wake::Fail(ERR_INITIALISING));
            }
        });
    }
    let weak = Arc::downgrade(inner);
    rt.spawn(async move {
        tokio::time::sleep(down_for).await;
        let Some(inner) = weak.upgrade() else { return };
        let mut s = inner.state.lock();
        if s.generation == generation {
            reconnect(&inner, &mut s);
        }
    });
}

/// `onServiceConnected` + `handleServiceConnected`: the library's own remote init (no-op
/// callback), its silent re-preload, the parked init answered, the slot replayed.
fn reconnect(inner: &Arc<Inner>, s: &mut State) {
    s.link.connected = true;
    s.link.connects += 1;
    s.down_until = None;
    s.initialised = true;
    s.updated_since_init = false;
    s.needs_sequence = true;
    s.life += 1;
    s.stats.library_inits += 1;
    super::spawn_auto_refresh(inner, s.life);
    if s.link.authed_seen {
        // §3.5: re-preload with `lastRequestInfo`, result never shown to the app; it is
        // not the SDK's sequence (features are not updated by it).
        s.camera_warm = true;
        s.stats.library_repreloads += 1;
    }
    if let Some(w) = s.link.init_waiter.take() {
        let _ = w.send(());
    }
    if let Some(slot) = s.link.slot.take() {
        match slot.late {
            // Replayed inside the connect: before any call the app makes after it.
            Some(late) => late(inner, s),
            None => {
                let _ = slot.tx.send(Wake::Go);
            }
        }
    }
}
