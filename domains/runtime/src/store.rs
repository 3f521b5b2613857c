//! A domain's SQLite database: one writer, a bounded pool of read-only
//! connections for scans, one more for status reads (so `Describe`, health
//! and lease renewal never queue behind data streams), and the runtime's
//! own bookkeeping tables. The directory is made 0700 and the files 0600.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use mesh_contracts::product::QualityResult;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{DomainError, Result};

const BOOKKEEPING: &str = "
CREATE TABLE IF NOT EXISTS mesh_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS mesh_loads (
    product    TEXT PRIMARY KEY,
    loaded_at  INTEGER NOT NULL,
    row_count  INTEGER NOT NULL,
    source     TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS mesh_quality (
    product      TEXT NOT NULL,
    rule         TEXT NOT NULL,
    description  TEXT NOT NULL,
    failed_rows  INTEGER NOT NULL,
    checked_rows INTEGER NOT NULL,
    position     INTEGER NOT NULL,
    PRIMARY KEY (product, rule)
) STRICT;
";

/// Page cache shared by the scan connections, divided among them.
const SCAN_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Page cache of each scan connection, at least.
const MIN_READER_CACHE_BYTES: usize = 2 * 1024 * 1024;
/// Page cache of the status connection.
const STATUS_CACHE_BYTES: usize = 2 * 1024 * 1024;
/// How long a scan waits for a read connection when all are busy.
const READER_WAIT: Duration = Duration::from_secs(30);
/// Scan connections when the domain does not say.
const DEFAULT_READERS: usize = 8;
/// What the write-ahead log is truncated to after a checkpoint, so that a
/// big or failed load leaves no huge file behind.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;
/// How long a connection waits for a lock held by another.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the last load of a product recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadInfo {
    /// When the load committed, ms since the epoch.
    pub loaded_at_ms: i64,
    /// Rows in the product's table after the load.
    pub row_count: i64,
    /// Where the rows came from (a file path, or `generated …`).
    pub source: String,
}

/// A domain's database.
#[derive(Debug, Clone)]
pub struct DomainStore {
    path: PathBuf,
    /// Device and inode of the file opened, to notice it removed or replaced.
    identity: (u64, u64),
    writer: Arc<Mutex<Connection>>,
    readers: Arc<ReaderPool>,
    status: Arc<Mutex<Option<Connection>>>,
    loads: Arc<tokio::sync::Notify>,
}

/// The scan connections: at most `capacity`, opened when first needed.
#[derive(Debug)]
struct ReaderPool {
    capacity: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct PoolState {
    idle: Vec<Connection>,
    open: usize,
}

impl DomainStore {
    /// Opens (creating if needed) the database at `path`; a directory it
    /// creates is 0700 and the file 0600.
    pub fn open(path: &Path) -> Result<Self> {
        mesh_grpc::private_files::create_private_file(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(BOOKKEEPING)?;
        let metadata = std::fs::metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            identity: (metadata.dev(), metadata.ino()),
            writer: Arc::new(Mutex::new(conn)),
            readers: Arc::new(ReaderPool::new(DEFAULT_READERS)),
            status: Arc::new(Mutex::new(None)),
            loads: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// The same database with a pool of `readers` scan connections (one
    /// per concurrent scan), the page cache divided among them.
    pub fn with_readers(mut self, readers: usize) -> Self {
        self.readers = Arc::new(ReaderPool::new(readers.max(1)));
        self
    }

    /// Tells whoever waits in [`DomainStore::loaded`] that a load committed.
    pub fn announce_load(&self) {
        self.loads.notify_one();
    }

    /// Completes after the next (or a missed) [`DomainStore::announce_load`].
    pub async fn loaded(&self) {
        self.loads.notified().await;
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` with the writer connection (blocking: call from a
    /// blocking thread).
    pub fn write<T>(&self, work: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        work(&mut conn)
    }

    /// Runs `work` with a read-only scan connection from the pool,
    /// waiting for one when all are busy (blocking).
    pub fn read<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.readers.take(&self.path)?;
        let result = work(&conn);
        self.readers.give_back(conn);
        result
    }

    /// Runs `work` with the status connection, which scans never hold:
    /// for descriptions, health and lease renewal (blocking).
    pub fn inspect<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if status.is_none() {
            *status = Some(open_reader(&self.path, STATUS_CACHE_BYTES)?);
        }
        let result = work(status.as_ref().expect("opened above"));
        if result.is_err() {
            // Open afresh next time, in case the file changed under it.
            *status = None;
        }
        result
    }

    /// Checks that the database can still be read: the file is the one
    /// opened and a fresh connection reads the product's bookkeeping and
    /// first row (blocking).
    pub fn probe(&self, table: &str) -> Result<()> {
        let metadata = std::fs::metadata(&self.path).map_err(|e| {
            DomainError::Unavailable(format!("the database file {} cannot be read: {e}", self.path.display()))
        })?;
        if (metadata.dev(), metadata.ino()) != self.identity {
            return Err(DomainError::Unavailable(format!(
                "the database file {} was replaced while serving; restart the domain",
                self.path.display()
            )));
        }
        let conn = open_reader(&self.path, STATUS_CACHE_BYTES)?;
        conn.query_row("SELECT count(*) FROM mesh_loads", [], |_| Ok(()))?;
        conn.query_row(&format!("SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)"), [], |_| Ok(()))?;
        Ok(())
    }

    /// The secret resume tokens are signed with; made once per database.
    pub fn token_secret(&self) -> Result<Vec<u8>> {
        self.write(|conn| {
            let existing: Option<Vec<u8>> = conn
                .query_row("SELECT value FROM mesh_meta WHERE key = 'resume_token_secret'", [], |r| r.get(0))
                .optional()?;
            if let Some(secret) = existing {
                return Ok(secret);
            }
            let secret = mesh_grpc::SealedTokens::new_secret();
            conn.execute(
                "INSERT INTO mesh_meta (key, value) VALUES ('resume_token_secret', ?1)",
                [&secret[..]],
            )?;
            Ok(secret.to_vec())
        })
    }

    /// What the last load of `product` recorded, if it was ever loaded.
    pub fn load_info(&self, product: &str) -> Result<Option<LoadInfo>> {
        self.inspect(|conn| {
            Ok(conn
                .query_row(
                    "SELECT loaded_at, row_count, source FROM mesh_loads WHERE product = ?1",
                    [product],
                    |r| Ok(LoadInfo { loaded_at_ms: r.get(0)?, row_count: r.get(1)?, source: r.get(2)? }),
                )
                .optional()?)
        })
    }

    /// The fingerprint of the source `product` was last loaded from.
    pub fn fingerprint(&self, product: &str) -> Result<Option<String>> {
        self.inspect(|conn| {
            let value: Option<Vec<u8>> = conn
                .query_row("SELECT value FROM mesh_meta WHERE key = 'source:' || ?1", [product], |r| r.get(0))
                .optional()?;
            Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
        })
    }

    /// The quality results of `product`'s last load.
    pub fn quality(&self, product: &str) -> Result<Vec<QualityResult>> {
        self.inspect(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT rule, description, failed_rows, checked_rows FROM mesh_quality
                 WHERE product = ?1 ORDER BY position",
            )?;
            let rows = statement.query_map([product], |r| {
                let failed: i64 = r.get(2)?;
                Ok(QualityResult {
                    rule: r.get(0)?,
                    description: r.get(1)?,
                    passed: failed == 0,
                    failed_rows: failed,
                    checked_rows: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

impl ReaderPool {
    fn new(capacity: usize) -> Self {
        Self { capacity, state: Mutex::new(PoolState::default()), freed: Condvar::new() }
    }

    /// An idle connection, a new one while under capacity, or the next one
    /// given back.
    fn take(&self, path: &Path) -> Result<Connection> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(conn);
            }
            if state.open < self.capacity {
                state.open += 1;
                drop(state);
                let cache = (SCAN_CACHE_BYTES / self.capacity).max(MIN_READER_CACHE_BYTES);
                return open_reader(path, cache).inspect_err(|_| {
                    self.state.lock().unwrap_or_else(|p| p.into_inner()).open -= 1;
                });
            }
            let (next, timeout) =
                self.freed.wait_timeout(state, READER_WAIT).unwrap_or_else(|p| p.into_inner());
            state = next;
            if timeout.timed_out() && state.idle.is_empty() {
                return Err(DomainError::Unavailable(format!(
                    "all {} read connections stayed busy for {} s; retry later",
                    self.capacity,
                    READER_WAIT.as_secs()
                )));
            }
        }
    }

    fn give_back(&self, conn: Connection) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).idle.push(conn);
        self.freed.notify_one();
    }
}

/// A read-only connection to `path` with a page cache of `cache_bytes`.
fn open_reader(path: &Path, cache_bytes: usize) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "cache_size", -((cache_bytes / 1024) as i64))?;
    Ok(conn)
}

/// The identity of the data of `product` as last loaded (0 before any
/// load): resume tokens carry it, so a stream cannot resume over other data.
pub(crate) fn load_id(conn: &Connection, product: &str) -> Result<u64> {
    let id: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM mesh_meta WHERE key = 'load:' || ?1", [product], |r| r.get(0))
        .optional()?;
    Ok(id.and_then(|bytes| bytes.try_into().ok()).map_or(0, u64::from_le_bytes))
}

/// Records the fingerprint of the source a load read (inside its transaction).
pub(crate) fn record_fingerprint(conn: &Connection, product: &str, fingerprint: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO mesh_meta (key, value) VALUES ('source:' || ?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![product, fingerprint.as_bytes()],
    )?;
    Ok(())
}

/// Records a finished load and its quality results (inside the load's transaction).
pub fn record_load(
    conn: &Connection,
    product: &str,
    row_count: i64,
    source: &str,
    quality: &[QualityResult],
) -> Result<()> {
    conn.execute(
        "INSERT INTO mesh_loads (product, loaded_at, row_count, source) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (product) DO UPDATE SET loaded_at = ?2, row_count = ?3, source = ?4",
        params![product, now_ms(), row_count, source],
    )?;
    conn.execute(
        "INSERT INTO mesh_meta (key, value) VALUES ('load:' || ?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![product, &rand::random::<u64>().to_le_bytes()[..]],
    )?;
    conn.execute("DELETE FROM mesh_quality WHERE product = ?1", [product])?;
    for (position, result) in quality.iter().enumerate() {
        conn.execute(
            "INSERT INTO mesh_quality (product, rule, description, failed_rows, checked_rows, position)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                product,
                result.rule,
                result.description,
                result.failed_rows,
                result.checked_rows,
                position as i64
            ],
        )?;
    }
    Ok(())
}

pub use mesh_contracts::time::now_ms;
