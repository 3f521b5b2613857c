//! The embedded SQLite backend: one writer, a bounded pool of read-only
//! connections for scans, one more for status reads (so `Describe`, health
//! and lease renewal never queue behind data streams), and the runtime's
//! own bookkeeping tables. The directory is made 0700 and the files 0600.

#[cfg(test)]
mod filter_tests;
mod kept;
#[cfg(test)]
mod kept_tests;
mod load;
mod pool;
mod raw;
pub(super) mod read_log;
mod scan;
#[cfg(test)]
mod sorted_scan_tests;
mod sorter;
mod values;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::ProgressBar;
use mesh_contracts::product::QualityResult;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{
    Chunks, LoadInfo, LoadPlan, LoadSummary, QualityCheck, ReadLog, RowSink, Stop, StopCheck, Storage, Table,
};
use crate::error::{DomainError, Failure, Result, StorageError};
use crate::query::dialect::{Dialect, keyed_order};
use crate::query::plan::QueryPlan;
use crate::values::schema::RowSchema;
use kept::{KEPT_BYTES, KEPT_FOR, KeptReads};
use load::replace_rows;
use pool::ReaderPool;
use scan::{deliver_sorted, scan_rows, stoppable};

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

/// Page size of a new database file: a whole-table scan makes a quarter of
/// the page reads (each a system call and a copy) it would at SQLite's
/// default 4 KiB. A file made with another size keeps it.
pub(super) const PAGE_BYTES: i64 = 16 * 1024;
/// Page cache shared by the scan connections, divided among them.
pub(super) const SCAN_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Page cache of each scan connection, at least.
pub(super) const MIN_READER_CACHE_BYTES: usize = 2 * 1024 * 1024;
/// Page cache of the status connection.
pub(super) const STATUS_CACHE_BYTES: usize = 2 * 1024 * 1024;
/// How long a scan waits for a read connection when all are busy.
pub(super) const READER_WAIT: Duration = Duration::from_secs(30);
/// Scan connections when the domain does not say.
pub(super) const DEFAULT_READERS: usize = 8;
/// What the write-ahead log is truncated to after a checkpoint, so that a
/// big or failed load leaves no huge file behind.
pub(super) const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;
/// Page cache of the writer while it loads (KiB); the usual size returns after.
pub(super) const LOAD_CACHE_KIB: i64 = 256 * 1024;
/// SQLite virtual-machine steps between checks for a reason to stop a
/// scan: a few milliseconds of work at most.
pub(super) const STEPS_BETWEEN_CHECKS: i32 = 20_000;
/// Memory a scan sorting its own rows keeps them in; beyond it they go to
/// temporary files in sorted runs.
pub(super) const SORT_MEMORY_BYTES: usize = 64 * 1024 * 1024;
/// Rows of a table from which a sorting scan reads it in two halves side
/// by side, when a second read connection is free.
pub(super) const SPLIT_ROWS: i64 = 50_000;
/// How long a connection waits for a lock held by another.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// A domain's SQLite file.
#[derive(Debug, Clone)]
pub(crate) struct SqliteStore {
    path: PathBuf,
    /// Device and inode of the file opened, to notice it removed or replaced.
    identity: (u64, u64),
    writer: Arc<Mutex<Connection>>,
    readers: Arc<ReaderPool>,
    status: Arc<Mutex<Option<Connection>>>,
    /// Sorted whole reads kept for reading again.
    kept: Arc<KeptReads>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`; a directory it
    /// creates is 0700 and the file 0600.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        mesh_grpc::private_files::create_private_file(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "page_size", PAGE_BYTES)?;
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
            kept: Arc::new(KeptReads::new(KEPT_BYTES, KEPT_FOR)),
        })
    }

    /// The same database with a pool of `readers` scan connections (one
    /// per concurrent scan), the page cache divided among them.
    pub(crate) fn with_readers(mut self, readers: usize) -> Self {
        self.readers = Arc::new(ReaderPool::new(readers.max(1)));
        self
    }

    /// Runs `work` with the writer connection (blocking: call from a
    /// blocking thread).
    pub(crate) fn write<T>(&self, work: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        work(&mut conn)
    }

    /// Runs `work` with a read-only scan connection from the pool,
    /// waiting for one when all are busy (blocking).
    pub(crate) fn read<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.readers.take(&self.path)?;
        work(&conn)
    }

    /// Runs `work` with the status connection, which scans never hold:
    /// for descriptions, health and lease renewal (blocking).
    pub(crate) fn inspect<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
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
}

impl Storage for SqliteStore {
    /// Checks that the database can still be read: the file is the one
    /// opened and a fresh connection reads the product's bookkeeping and
    /// first row (blocking).
    fn probe(&self, table: Table<'_>) -> Result<()> {
        self.kept.sweep();
        let table = table.name;
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
    fn token_secret(&self) -> Result<Vec<u8>> {
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
    fn load_info(&self, product: &str) -> Result<Option<LoadInfo>> {
        self.inspect(|conn| {
            let tx = conn.unchecked_transaction()?;
            let info = tx
                .query_row(
                    "SELECT loaded_at, row_count, source FROM mesh_loads WHERE product = ?1",
                    [product],
                    |r| {
                        Ok(LoadInfo {
                            loaded_at_ms: r.get(0)?,
                            row_count: r.get(1)?,
                            source: r.get(2)?,
                            load: 0,
                        })
                    },
                )
                .optional()?;
            Ok(match info {
                Some(info) => Some(LoadInfo { load: load_id(&tx, product)?, ..info }),
                None => None,
            })
        })
    }

    /// The fingerprint of the source `product` was last loaded from.
    fn fingerprint(&self, product: &str) -> Result<Option<String>> {
        self.inspect(|conn| {
            let value: Option<Vec<u8>> = conn
                .query_row("SELECT value FROM mesh_meta WHERE key = 'source:' || ?1", [product], |r| r.get(0))
                .optional()?;
            Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
        })
    }

    /// The quality results of `product`'s last load.
    fn quality(&self, product: &str) -> Result<Vec<QualityResult>> {
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

    /// Runs `work` holding an exclusive lock on `<database>.load-lock`, which
    /// other processes over the same file take to load too.
    fn exclusive_load<T>(&self, _product: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".load-lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::path::PathBuf::from(name))?;
        lock.lock()?;
        let result = work();
        let _ = lock.unlock();
        result
    }

    /// Creates the product's table and indexes if they do not exist.
    fn prepare_table(&self, _product: &str, schema: &RowSchema, indexes: &[String]) -> Result<()> {
        self.write(|conn| {
            Ok(conn.execute_batch(&format!(
                "{}\n{}",
                Dialect::Sqlite.create_table(schema, &schema.table),
                schema.index_sql(indexes)
            ))?)
        })
    }

    /// SQLite's `EXPLAIN QUERY PLAN` details of `plan`, one line each.
    fn explain(&self, table: Table<'_>, plan: &QueryPlan) -> Result<String> {
        let table = table.name;
        self.read(|conn| {
            let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", plan.sql(table)))?;
            let details = statement
                .query_map(rusqlite::params_from_iter(plan.params.iter()), |r| r.get::<_, String>(3))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(details.join("\n"))
        })
    }

    /// Runs `plan` inside one read transaction, so the load checked for a
    /// resumed query is the data read, with SQLite interrupted when `check`
    /// finds a reason to stop (even in a sort that yields no rows yet).
    fn scan(
        &self,
        table: Table<'_>,
        plan: &QueryPlan,
        sink: &mut impl RowSink,
        check: StopCheck,
    ) -> Result<(), Stop> {
        let spill_dir = self.path.parent().unwrap_or(Path::new("."));
        let read = (|| -> Result<_> {
            let conn = self.readers.take(&self.path)?;
            // A scan that sorts reads with a second connection too, if one is free.
            let helper = if plan.sorts_in_scan { self.readers.try_take(&self.path) } else { None };
            stoppable(&conn, Some(&check))?;
            // SQLite asks `check` only every few thousand steps: a scan told
            // to stop before it starts reads nothing.
            let outcome = if check() {
                Err(sink.interrupted().unwrap_or(Stop::ClientGone))
            } else {
                scan_rows(&conn, helper, &check, spill_dir, &self.kept, table, plan, sink)
            };
            stoppable(&conn, None)?;
            Ok(outcome)
        })();
        // Sorted rows are delivered with both connections back in the pool.
        let outcome = match read {
            Ok(Ok(Some(sorted))) => deliver_sorted(&self.kept, spill_dir, table.name, sorted, sink),
            Ok(Ok(None)) => Ok(()),
            Ok(Err(stop)) => Err(stop),
            Err(error) => Err(error.into()),
        };
        outcome.map_err(|stop| match stop {
            Stop::Failed(DomainError::Storage(StorageError { failure: Failure::Interrupted, .. })) => {
                sink.interrupted().unwrap_or(Stop::ClientGone)
            }
            other => other,
        })
    }

    /// Replaces the table's rows with the chunks, rebuilds the indexes,
    /// records quality and the load: one transaction.
    fn replace(&self, load: &LoadPlan<'_>, chunks: Chunks, progress: &ProgressBar) -> Result<LoadSummary> {
        self.write(move |conn| {
            // A big page cache for the load only: a table larger than the
            // cache otherwise spills to the WAL and is read back from it.
            let previous: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
            conn.pragma_update(None, "cache_size", -LOAD_CACHE_KIB)?;
            let written = replace_rows(conn, load, chunks, progress);
            conn.pragma_update(None, "cache_size", previous)?;
            // And the pages the load cached go now, not when next evicted.
            conn.execute_batch("PRAGMA shrink_memory")?;
            // Give the log's space back now (to the journal size limit),
            // whether the load committed or not.
            if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::debug!(%error, "checkpoint after the load deferred");
            }
            // Reads kept of the rows replaced are of no use any more.
            self.kept.forget_table(&load.schema.table);
            written
        })
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    /// Runs the statements in one read transaction of a scan connection.
    fn check_quality(&self, table: Table<'_>, check: &dyn QualityCheck) -> Result<Vec<QualityResult>> {
        self.read(|conn| {
            let tx = conn.unchecked_transaction()?;
            let answers = load::counts(&tx, &check.statements(table.name))?;
            Ok(check.results(&answers))
        })
    }

    fn read_log(&self, data_dir: &Path) -> Result<Arc<dyn ReadLog>> {
        read_log::SqliteReadLog::open(&data_dir.join("audit.sqlite"))
    }

    fn relation_csv(&self, relation: &str) -> Result<Box<dyn std::io::Read + Send>> {
        Err(DomainError::Config(format!(
            "source.postgres: {relation} is read from the domain's PostgreSQL database; give --database-url \
             (MESH_DATABASE_URL)"
        )))
    }
}

/// A scan connection to the database at `path`, for tests that compare a
/// scan with SQL of their own (`mesh_order` included).
#[cfg(test)]
pub(crate) fn test_reader(path: &Path) -> Result<Connection> {
    open_reader(path, MIN_READER_CACHE_BYTES)
}
/// A read-only connection to `path` with a page cache of `cache_bytes`.
fn open_reader(path: &Path, cache_bytes: usize) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "cache_size", -((cache_bytes / 1024) as i64))?;
    register_keyed_order(&conn)?;
    Ok(conn)
}

/// `mesh_order(key, value)`: a row's place in a consumer's order (see
/// [`keyed_order`]); the value as its text.
fn register_keyed_order(conn: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::ValueRef;
    let flags =
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("mesh_order", 2, flags, |ctx| {
        let key = ctx.get_raw(0).as_blob().map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
        let order = match ctx.get_raw(1) {
            ValueRef::Text(text) => keyed_order(key, text),
            ValueRef::Integer(n) => keyed_order(key, itoa::Buffer::new().format(n).as_bytes()),
            ValueRef::Real(x) => keyed_order(key, x.to_string().as_bytes()),
            other => {
                let kind = other.data_type();
                return Err(rusqlite::Error::UserFunctionError(
                    format!("mesh_order of a {kind} value").into(),
                ));
            }
        };
        Ok(order)
    })?;
    Ok(())
}
/// The identity of the data of `product` as last loaded (0 before any
/// load): resume tokens carry it, so a stream cannot resume over other data.
fn load_id(conn: &Connection, product: &str) -> Result<u64> {
    let id: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM mesh_meta WHERE key = 'load:' || ?1", [product], |r| r.get(0))
        .optional()?;
    Ok(id.and_then(|bytes| bytes.try_into().ok()).map_or(0, u64::from_le_bytes))
}
