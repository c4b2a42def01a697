//! SQLite persistence (rusqlite, bundled). Everything that must survive a crash or the
//! nightly restart is written here before it is acted on (DESIGN "Nothing is lost"):
//! the cached authinfo (T3.3), the terminal's payment outbox, and in other features the
//! deduction orders and the reconciliation ledger. WAL mode, so a reader and a writer on
//! separate connections never block each other; every module creates its own tables
//! with `CREATE TABLE IF NOT EXISTS` through [`Store::ensure_schema`]. Several processes
//! share one store (the backend's `serve`, `deduct` and operator commands): a busy
//! timeout on every connection, and the setup retried when SQLite reports busy without
//! waiting.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::Result;

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorePath {
    /// A file; opened again after a restart.
    File(PathBuf),
    /// Memory only (tests and benchmarks): nothing survives the process.
    Memory,
}

pub struct Store {
    conn: Connection,
    memory: bool,
}

/// How long a statement waits for another connection's lock (every process on a store:
/// `backend serve`, `backend deduct`, the operator commands).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Retries `f` while SQLite reports the database busy or locked, up to [`BUSY_TIMEOUT`].
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                    && start.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            r => return r,
        }
    }
}

impl Store {
    pub fn open(path: &StorePath) -> Result<Store> {
        let conn = match path {
            StorePath::File(p) => Self::open_file(p)?,
            StorePath::Memory => Connection::open_in_memory()?,
        };
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Switching a new file to WAL takes an exclusive lock, and SQLite may answer
        // SQLITE_BUSY at once, without its busy handler, when that would deadlock (several
        // processes creating one store together): retry for as long as the busy timeout.
        let setup = "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             CREATE TABLE IF NOT EXISTS kv (
                 key TEXT PRIMARY KEY NOT NULL,
                 value TEXT NOT NULL
             );";
        retry_busy(|| conn.execute_batch(setup))?;
        Ok(Store { conn, memory: *path == StorePath::Memory })
    }

    fn open_file(p: &Path) -> Result<Connection> {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|e| {
                crate::Error::invalid_config("store_path", format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        // Stores hold credentials and personal data: owner-only (0600) from the first
        // byte; SQLite gives its -wal and -shm files the database's permissions.
        create_private_file(p)
            .map_err(|e| crate::Error::invalid_config("store_path", format!("cannot create {}: {e}", p.display())))?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Ok(Connection::open_with_flags(p, flags)?)
    }

    /// Runs a module's `CREATE TABLE IF NOT EXISTS …` batch (idempotent, so retried like
    /// the setup when SQLite reports busy without waiting).
    pub fn ensure_schema(&self, sql: &str) -> Result<()> {
        retry_busy(|| self.conn.execute_batch(sql))?;
        Ok(())
    }

    /// A memory store: no I/O, nothing survives the process.
    pub fn is_memory(&self) -> bool {
        self.memory
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub fn kv_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Writes one key atomically (a single statement: never half-written).
    pub fn kv_put(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    pub fn kv_delete(&self, key: &str) -> Result<()> {
        self.conn.execute("DELETE FROM kv WHERE key = ?1", [key])?;
        Ok(())
    }
}

/// Creates `dir` (and its parents) owner-only (0700) where it does not exist yet.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Creates `p` owner-only (0600) if it does not exist; an existing file is left as is.
pub fn create_private_file(p: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(p).map(drop)
}

/// Writes a new file owner-only (0600): keys, credentials, configurations with secrets.
pub fn write_private(p: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(p)?;
    #[cfg(unix)]
    std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = StorePath::File(dir.path().join("sub/t.db"));
        {
            let s = Store::open(&path).expect("open");
            s.kv_put("a", "1").expect("put");
            s.kv_put("a", "2").expect("put");
        }
        let s = Store::open(&path).expect("reopen");
        assert_eq!(s.kv_get("a").expect("get").as_deref(), Some("2"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join("sub/t.db")), 0o600, "S3: store owner-only");
            assert_eq!(mode(&dir.path().join("sub")), 0o700);
        }
        s.kv_delete("a").expect("delete");
        assert_eq!(s.kv_get("a").expect("get"), None);
    }
}

#[cfg(test)]
mod concurrency_tests {
    use super::*;

    /// Many connections creating one new store and its tables at once (the sixteen
    /// `backend deduct` processes of a canteen's morning): none may see "database is locked".
    #[test]
    fn concurrent_first_opens_of_one_store_never_fail_locked() {
        for round in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = StorePath::File(dir.path().join("s.db"));
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
            let threads: Vec<_> = (0..16)
                .map(|i| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || -> Result<()> {
                        barrier.wait();
                        let s = Store::open(&path)?;
                        s.ensure_schema(&format!(
                            "CREATE TABLE IF NOT EXISTS t{} (a INTEGER); CREATE TABLE IF NOT EXISTS shared (a INTEGER);",
                            i % 4
                        ))?;
                        s.conn().execute("INSERT INTO shared (a) VALUES (?1)", [i])?;
                        Ok(())
                    })
                })
                .collect();
            for t in threads {
                t.join().expect("thread").unwrap_or_else(|e| panic!("round {round}: {e}"));
            }
        }
    }
}
