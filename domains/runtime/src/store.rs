//! A domain's SQLite database: one writer, a small pool of read-only
//! connections for queries, and the runtime's own bookkeeping tables.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mesh_contracts::product::QualityResult;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::Result;

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

/// Read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 8;

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
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    loads: Arc<tokio::sync::Notify>,
}

impl DomainStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(BOOKKEEPING)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Arc::new(Mutex::new(conn)),
            readers: Arc::new(Mutex::new(Vec::new())),
            loads: Arc::new(tokio::sync::Notify::new()),
        })
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

    /// Runs `work` with a read-only connection from the pool (blocking).
    pub fn read<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(30))?;
                conn.pragma_update(None, "cache_size", -8192)?;
                conn
            }
        };
        let result = work(&conn);
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
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
            let secret = mesh_grpc::SignedTokens::new_secret();
            conn.execute(
                "INSERT INTO mesh_meta (key, value) VALUES ('resume_token_secret', ?1)",
                [&secret[..]],
            )?;
            Ok(secret.to_vec())
        })
    }

    /// What the last load of `product` recorded, if it was ever loaded.
    pub fn load_info(&self, product: &str) -> Result<Option<LoadInfo>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT loaded_at, row_count, source FROM mesh_loads WHERE product = ?1",
                    [product],
                    |r| Ok(LoadInfo { loaded_at_ms: r.get(0)?, row_count: r.get(1)?, source: r.get(2)? }),
                )
                .optional()?)
        })
    }

    /// The quality results of `product`'s last load.
    pub fn quality(&self, product: &str) -> Result<Vec<QualityResult>> {
        self.read(|conn| {
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
