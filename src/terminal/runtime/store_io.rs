//! The engine actor's store I/O (DESIGN "Nothing is lost"; SPEC T3.3), none of it on the
//! actor's thread or the app's (`Application#onCreate` runs on the main thread, and an
//! fsync on a terminal's eMMC can take from milliseconds up to a second): opening the
//! store, reading the persisted authinfo and opening the outbox's store run on the
//! engine's own thread before its actor starts (`Terminal::start`), or on tokio's
//! blocking pool while the actor waits (an engine on a shared runtime); the authinfo is
//! written (or erased, T3.5) there too, the newest write winning.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::store::{Store, StorePath};
use crate::terminal::auth_info;
use crate::terminal::outbox::Outbox;

/// What opening the store found.
pub(crate) struct Opened {
    pub(super) io: StoreIo,
    /// The persisted authinfo (T3.3), as stored.
    pub(super) authinfo_json: Option<String>,
    /// The outbox's own connection, its table created.
    pub(super) outbox_db: Store,
}

/// Opens everything, blocking the calling thread: only for a thread of the engine's own
/// before its actor runs (`Terminal::start`), which has nothing to do until it is open.
pub(crate) fn open_blocking(path: &StorePath) -> Result<Opened> {
    let store = Store::open(path)?;
    let authinfo_json = store.kv_get(auth_info::STORE_KEY)?;
    let outbox_db = Outbox::open_store(path)?;
    let io = StoreIo { db: Arc::new(Mutex::new(store)), writes: Arc::new(AtomicU64::new(0)), pending: Vec::new() };
    Ok(Opened { io, authinfo_json, outbox_db })
}

/// Opens everything on the blocking pool (an engine on a shared runtime).
pub(super) async fn open(path: StorePath) -> Result<Opened> {
    let task = tokio::task::spawn_blocking(move || open_blocking(&path));
    task.await.map_err(|e| Error::Internal(format!("store open task: {e}")))?
}

/// The engine's own connection (the authinfo), written on the blocking pool.
pub(super) struct StoreIo {
    db: Arc<Mutex<Store>>,
    /// Writes started so far: a write that a newer one overtook is skipped, so the store
    /// ends with the newest value whatever order the pool runs them in.
    writes: Arc<AtomicU64>,
    /// Writes not known to be finished, awaited at shutdown.
    pending: Vec<tokio::task::JoinHandle<()>>,
}

impl StoreIo {
    /// Persists the authinfo (`Some`) or erases it (`None`, T3.5). Failures are logged:
    /// the cache in memory stays valid, only a restart would need the network again.
    pub(super) fn put_authinfo(&mut self, json: Option<String>) {
        self.pending.retain(|h| !h.is_finished());
        let n = self.writes.fetch_add(1, Ordering::AcqRel) + 1;
        let (db, writes) = (self.db.clone(), self.writes.clone());
        self.pending.push(tokio::task::spawn_blocking(move || {
            let db = db.lock();
            if writes.load(Ordering::Acquire) != n {
                return; // a newer write follows
            }
            let r = match json {
                Some(j) => db.kv_put(auth_info::STORE_KEY, &j),
                None => db.kv_delete(auth_info::STORE_KEY),
            };
            if let Err(e) = r {
                tracing::error!(code = ?e.code(), "cannot persist authinfo: {e}");
            }
        }));
    }

    /// Waits for every write started so far (shutdown: nothing is lost).
    pub(super) async fn flush(&mut self) {
        for h in self.pending.drain(..) {
            let _ = h.await;
        }
    }
}
