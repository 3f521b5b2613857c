//! The embedded SQLite backend: one writer, a bounded pool of read-only
//! connections for scans, one more for status reads (so `Describe`, health
//! and lease renewal never queue behind data streams), and the runtime's
//! own bookkeeping tables. The directory is made 0700 and the files 0600.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use mesh_contracts::product::QualityResult;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use indicatif::ProgressBar;
use rusqlite::ErrorCode;

use super::sorter::Sorter;
use super::{Chunks, LoadInfo, RowSink, StopCheck, now_ms};
use crate::cell::{Cell, CellRow};
use crate::error::{DomainError, Result};
use crate::ingest::{LoadPlan, LoadSummary, Phases};
use crate::plan::QueryPlan;
use crate::quality::{self, RowCounts};
use crate::scan::Stop;
use crate::schema::RowSchema;

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
/// Page cache of the writer while it loads (KiB); the usual size returns after.
const LOAD_CACHE_KIB: i64 = 256 * 1024;
/// SQLite virtual-machine steps between checks for a reason to stop a
/// scan: a few milliseconds of work at most.
const STEPS_BETWEEN_CHECKS: i32 = 20_000;
/// Memory a scan sorting its own rows keeps them in; beyond it they go to
/// temporary files in sorted runs.
const SORT_MEMORY_BYTES: usize = 64 * 1024 * 1024;
/// Rows of a table from which a sorting scan reads it in two halves side
/// by side, when a second read connection is free.
const SPLIT_ROWS: i64 = 50_000;
/// How long a connection waits for a lock held by another.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A domain's SQLite file.
#[derive(Debug, Clone)]
pub(crate) struct SqliteStore {
    path: PathBuf,
    /// Device and inode of the file opened, to notice it removed or replaced.
    identity: (u64, u64),
    writer: Arc<Mutex<Connection>>,
    readers: Arc<ReaderPool>,
    status: Arc<Mutex<Option<Connection>>>,
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
    /// Scans waiting for a connection (which a helper must not take).
    waiting: usize,
}

/// A scan connection taken from the pool: given back when dropped, or
/// closed and its place freed when dropped by a panic.
struct Reader<'p> {
    pool: &'p ReaderPool,
    conn: Option<Connection>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("a reader holds its connection until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut state = self.pool.state.lock().unwrap_or_else(|p| p.into_inner());
        if std::thread::panicking() {
            drop(conn);
            state.open -= 1;
        } else {
            state.idle.push(conn);
        }
        self.pool.freed.notify_one();
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`; a directory it
    /// creates is 0700 and the file 0600.
    pub(crate) fn open(path: &Path) -> Result<Self> {
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
        })
    }

    /// The same database with a pool of `readers` scan connections (one
    /// per concurrent scan), the page cache divided among them.
    pub(crate) fn with_readers(mut self, readers: usize) -> Self {
        self.readers = Arc::new(ReaderPool::new(readers.max(1)));
        self
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
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

    /// Checks that the database can still be read: the file is the one
    /// opened and a fresh connection reads the product's bookkeeping and
    /// first row (blocking).
    pub(crate) fn probe(&self, table: &str) -> Result<()> {
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
    pub(crate) fn token_secret(&self) -> Result<Vec<u8>> {
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
    pub(crate) fn load_info(&self, product: &str) -> Result<Option<LoadInfo>> {
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
    pub(crate) fn fingerprint(&self, product: &str) -> Result<Option<String>> {
        self.inspect(|conn| {
            let value: Option<Vec<u8>> = conn
                .query_row("SELECT value FROM mesh_meta WHERE key = 'source:' || ?1", [product], |r| r.get(0))
                .optional()?;
            Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
        })
    }

    /// The quality results of `product`'s last load.
    pub(crate) fn quality(&self, product: &str) -> Result<Vec<QualityResult>> {
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

impl SqliteStore {
    /// Runs `work` holding an exclusive lock on `<database>.load-lock`, which
    /// other processes over the same file take to load too.
    pub(crate) fn exclusive_load<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
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
    pub(crate) fn prepare_table(&self, schema: &RowSchema, indexes: &[&str]) -> Result<()> {
        self.write(|conn| {
            Ok(conn.execute_batch(&format!("{}\n{}", schema.create_sql(), schema.index_sql(indexes)))?)
        })
    }

    /// SQLite's `EXPLAIN QUERY PLAN` details of `plan`, one line each.
    pub(crate) fn explain(&self, table: &str, plan: &QueryPlan) -> Result<String> {
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
    pub(crate) fn scan(
        &self,
        product: &str,
        table: &str,
        plan: &QueryPlan,
        sink: &mut impl RowSink,
        check: StopCheck,
    ) -> Result<(), Stop> {
        let spill_dir = self.path.parent().unwrap_or(Path::new("."));
        let read = self.read(|conn| {
            // A scan that sorts reads with a second connection too, if one is free.
            let helper = if plan.sorts_in_scan { self.readers.try_take(&self.path) } else { None };
            stoppable(conn, Some(&check))?;
            let outcome = scan_rows(conn, helper, &check, spill_dir, product, table, plan, sink);
            stoppable(conn, None)?;
            Ok(outcome)
        });
        // Sorted rows are delivered with both connections back in the pool.
        let outcome = match read {
            Ok(Ok(Some(sorted))) => sorted.deliver(|row| sink.row(row)),
            Ok(Ok(None)) => Ok(()),
            Ok(Err(stop)) => Err(stop),
            Err(error) => Err(error.into()),
        };
        outcome.map_err(|stop| match stop {
            Stop::Failed(DomainError::Storage(rusqlite::Error::SqliteFailure(e, _)))
                if e.code == ErrorCode::OperationInterrupted =>
            {
                sink.interrupted().unwrap_or(Stop::ClientGone)
            }
            other => other,
        })
    }

    /// Replaces the table's rows with the chunks, rebuilds the indexes,
    /// records quality and the load: one transaction.
    pub(crate) fn replace(
        &self,
        load: &LoadPlan<'_>,
        chunks: Chunks,
        row_counts: &std::sync::Mutex<RowCounts>,
        progress: &ProgressBar,
    ) -> Result<LoadSummary> {
        self.write(move |conn| {
            // A big page cache for the load only: a table larger than the
            // cache otherwise spills to the WAL and is read back from it.
            let previous: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
            conn.pragma_update(None, "cache_size", -LOAD_CACHE_KIB)?;
            let written = replace_rows(conn, load, chunks, row_counts, progress);
            conn.pragma_update(None, "cache_size", previous)?;
            // Give the log's space back now (to the journal size limit),
            // whether the load committed or not.
            if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::debug!(%error, "checkpoint after the load deferred");
            }
            written
        })
    }
}

/// Reads the rows of `plan` in one read transaction, giving `sink` the
/// load and then each row; the rows of a plan the store sorts are kept
/// and returned instead, to be delivered once the connections are free.
#[allow(clippy::too_many_arguments)]
fn scan_rows(
    conn: &Connection,
    helper: Option<Reader<'_>>,
    check: &StopCheck,
    spill_dir: &Path,
    product: &str,
    table: &str,
    plan: &QueryPlan,
    sink: &mut impl RowSink,
) -> Result<Option<Sorter>, Stop> {
    let tx = conn.unchecked_transaction()?;
    let load = load_id(&tx, product)?;
    sink.begin(load)?;
    if plan.row_limit() == Some(0) {
        return Ok(None);
    }
    if plan.sorts_in_scan {
        return sorted_rows(&tx, helper, check, spill_dir, product, table, plan, load).map(Some);
    }
    let mut statement = bound(&tx, &plan.sql(table), plan, &[])?;
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        if !sink.row(row)? {
            break;
        }
    }
    Ok(None)
}

/// Has SQLite ask `check` every few milliseconds of work on `conn` whether
/// to stop (or no longer, without one).
fn stoppable(conn: &Connection, check: Option<&StopCheck>) -> Result<()> {
    match check.cloned() {
        Some(check) => conn.progress_handler(STEPS_BETWEEN_CHECKS, Some(move || check()))?,
        None => conn.progress_handler(0, None::<fn() -> bool>)?,
    }
    Ok(())
}

/// The rows of a plan the store sorts, kept in a [`Sorter`]. With a
/// `helper` connection, no filter of the caller's and enough rows, the
/// table is read in two halves side by side, the helper's checked to be of
/// the same load as `conn`'s (and read again on `conn` if a load came
/// between them).
#[allow(clippy::too_many_arguments)]
fn sorted_rows(
    conn: &Connection,
    helper: Option<Reader<'_>>,
    check: &StopCheck,
    spill_dir: &Path,
    product: &str,
    table: &str,
    plan: &QueryPlan,
    load: u64,
) -> Result<Sorter, Stop> {
    let (low, high): (Option<i64>, Option<i64>) =
        conn.query_row(&format!("SELECT min(rowid), max(rowid) FROM {table}"), [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(low), Some(high)) = (low, high) else {
        return Ok(sorter_for(plan, spill_dir, SORT_MEMORY_BYTES));
    };
    let everything = (i64::MIN, i64::MAX);
    // A filtered read expects few rows: a second thread would only delay it.
    let Some(helper) = helper.filter(|_| !plan.filtered && high.saturating_sub(low) >= SPLIT_ROWS) else {
        return sorted_range(conn, spill_dir, table, plan, everything, SORT_MEMORY_BYTES);
    };
    let middle = low + (high - low) / 2;
    let (first, second) = ((i64::MIN, middle), (middle, i64::MAX));
    let budget = SORT_MEMORY_BYTES / 2;
    let (mine, theirs) = std::thread::scope(|scope| {
        let theirs = scope.spawn(move || -> Result<Option<Sorter>, Stop> {
            stoppable(&helper, Some(check))?;
            let read = (|| {
                let tx = helper.unchecked_transaction()?;
                if load_id(&tx, product)? != load {
                    return Ok(None);
                }
                sorted_range(&tx, spill_dir, table, plan, second, budget).map(Some)
            })();
            stoppable(&helper, None)?;
            read
        });
        let mine = sorted_range(conn, spill_dir, table, plan, first, budget);
        (mine, theirs.join())
    });
    let theirs = theirs.map_err(|_| DomainError::Internal("a scan's helper thread failed".into()))?;
    let mut mine = mine?;
    let theirs = match theirs? {
        Some(sorter) => sorter,
        None => sorted_range(conn, spill_dir, table, plan, second, budget)?,
    };
    mine.absorb(theirs);
    Ok(mine)
}

/// The rows of `plan` whose rowid is in `(after, up_to]`, sorted.
fn sorted_range(
    conn: &Connection,
    spill_dir: &Path,
    table: &str,
    plan: &QueryPlan,
    (after, up_to): (i64, i64),
    budget: usize,
) -> Result<Sorter, Stop> {
    let mut sorter = sorter_for(plan, spill_dir, budget);
    let mut statement = bound(conn, &plan.sql_in_rowid_range(table), plan, &[after, up_to])?;
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        sorter.push(row)?;
    }
    sorter.sort();
    Ok(sorter)
}

/// `sql` prepared (from the connection's cache) with `plan`'s values bound,
/// then `more`.
fn bound<'c>(
    conn: &'c Connection,
    sql: &str,
    plan: &QueryPlan,
    more: &[i64],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut statement = conn.prepare_cached(sql)?;
    for (i, value) in plan.params.iter().enumerate() {
        statement.raw_bind_parameter(i + 1, value)?;
    }
    for (i, value) in more.iter().enumerate() {
        statement.raw_bind_parameter(plan.params.len() + i + 1, value)?;
    }
    Ok(statement)
}

/// A sorter of `plan`'s rows spilling to `spill_dir` (the database's own,
/// private directory: the rows hold what the database holds).
fn sorter_for(plan: &QueryPlan, spill_dir: &Path, budget: usize) -> Sorter {
    let descending = plan.sort.iter().map(|s| s.descending).collect();
    let columns = plan.projection.len() + plan.sort.len();
    Sorter::new(columns, descending, plan.row_limit(), budget, spill_dir.to_owned())
}

fn replace_rows(
    conn: &mut Connection,
    load: &LoadPlan<'_>,
    chunks: Chunks,
    row_counts: &std::sync::Mutex<RowCounts>,
    progress: &ProgressBar,
) -> Result<LoadSummary> {
    let (schema, table) = (load.schema, &load.schema.table);
    let mut phases = Phases::start();
    conn.execute_batch(&schema.create_sql())?;
    let tx = conn.transaction()?;
    let before: i64 = tx
        .query_row("SELECT row_count FROM mesh_loads WHERE product = ?1", [load.product], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    // Indexes are built once after the rows are in (a sort), not kept
    // up to date row by row.
    for name in load.indexes.iter().chain(&["key"]) {
        tx.execute_batch(&format!("DROP INDEX IF EXISTS {table}_by_{name}"))?;
    }
    tx.execute(&format!("DELETE FROM {table}"), [])?;
    let placeholders = vec!["?"; schema.columns.len()].join(", ");
    let mut insert = tx.prepare(&format!("INSERT INTO {table} VALUES ({placeholders})"))?;
    let mut rows = 0i64;
    for chunk in chunks {
        rows += chunk?.insert(&mut insert, schema.columns.len())?;
        progress.set_position(rows as u64);
    }
    drop(insert);
    phases.end("insert");
    load.check_shrink(before, rows)?;
    tx.execute_batch(&schema.create_sql())?;
    tx.execute_batch(&schema.index_sql(load.indexes))?;
    phases.end("index");
    // The reader has finished (the channel is drained): its counts are final.
    let counted = row_counts.lock().unwrap_or_else(|p| p.into_inner());
    let quality =
        quality::run_counted(&mut quality::sqlite_counts(&tx), schema, table, load.rules, Some(&counted))?;
    phases.end("quality");
    record_load(&tx, load.product, rows, load.source, &quality)?;
    record_fingerprint(&tx, load.product, load.fingerprint)?;
    tx.commit()?;
    phases.end("commit");
    tracing::debug!(product = load.product, rows, phases = %phases, "load phases");
    Ok(LoadSummary { rows, quality })
}

impl ReaderPool {
    fn new(capacity: usize) -> Self {
        Self { capacity, state: Mutex::new(PoolState::default()), freed: Condvar::new() }
    }

    /// An idle connection, a new one while under capacity, or the next one
    /// given back.
    fn take(&self, path: &Path) -> Result<Reader<'_>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(self.reader(conn));
            }
            if state.open < self.capacity {
                state.open += 1;
                drop(state);
                return self.open(path);
            }
            state.waiting += 1;
            let (next, timeout) =
                self.freed.wait_timeout(state, READER_WAIT).unwrap_or_else(|p| p.into_inner());
            state = next;
            state.waiting -= 1;
            if timeout.timed_out() && state.idle.is_empty() {
                return Err(DomainError::Unavailable(format!(
                    "all {} read connections stayed busy for {} s; retry later",
                    self.capacity,
                    READER_WAIT.as_secs()
                )));
            }
        }
    }

    /// An idle connection or a new one while under capacity, without
    /// waiting: `None` when all are busy, a scan waits for one, or one
    /// cannot be opened.
    fn try_take(&self, path: &Path) -> Option<Reader<'_>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.waiting > 0 {
            return None;
        }
        if let Some(conn) = state.idle.pop() {
            return Some(self.reader(conn));
        }
        if state.open >= self.capacity {
            return None;
        }
        state.open += 1;
        drop(state);
        self.open(path).ok()
    }

    /// A new connection in a place already counted as open.
    fn open(&self, path: &Path) -> Result<Reader<'_>> {
        let cache = (SCAN_CACHE_BYTES / self.capacity).max(MIN_READER_CACHE_BYTES);
        match open_reader(path, cache) {
            Ok(conn) => Ok(self.reader(conn)),
            Err(error) => {
                self.state.lock().unwrap_or_else(|p| p.into_inner()).open -= 1;
                Err(error)
            }
        }
    }

    fn reader(&self, conn: Connection) -> Reader<'_> {
        Reader { pool: self, conn: Some(conn) }
    }
}

impl CellRow for rusqlite::Row<'_> {
    fn cell(&self, index: usize) -> Result<Cell<'_>> {
        use rusqlite::types::ValueRef;
        Ok(match self.get_ref(index)? {
            ValueRef::Integer(n) => Cell::Integer(n),
            ValueRef::Real(x) => Cell::Real(x),
            ValueRef::Text(text) => Cell::Text(text),
            ValueRef::Null | ValueRef::Blob(_) => Cell::Null,
        })
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
/// [`super::dialect::keyed_order`]); the value as its text.
fn register_keyed_order(conn: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::ValueRef;
    let flags =
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("mesh_order", 2, flags, |ctx| {
        let key = ctx.get_raw(0).as_blob().map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
        let order = match ctx.get_raw(1) {
            ValueRef::Text(text) => super::dialect::keyed_order(key, text),
            ValueRef::Integer(n) => {
                super::dialect::keyed_order(key, itoa::Buffer::new().format(n).as_bytes())
            }
            ValueRef::Real(x) => super::dialect::keyed_order(key, x.to_string().as_bytes()),
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

/// Records the fingerprint of the source a load read (inside its transaction).
fn record_fingerprint(conn: &Connection, product: &str, fingerprint: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO mesh_meta (key, value) VALUES ('source:' || ?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![product, fingerprint.as_bytes()],
    )?;
    Ok(())
}

/// Records a finished load and its quality results (inside the load's transaction).
fn record_load(
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
