//! The record of every read a domain handled, served, refused or cut: kept
//! in a database of its own (`<data-dir>/audit.sqlite`, mode 0600), so
//! recording never waits behind a load, or, for a domain on PostgreSQL, in
//! its schema there (`mesh_reads`), where every replica records. Records go
//! through a bounded queue to one writer thread that commits them in
//! batches (durable within [`FLUSH_EVERY`]); the table is append-only:
//! nothing but the retention deletes from it. Records are bounded in size
//! and refusals in number ([`bounded`]), the queue in bytes; who reads each
//! product is summed per day as reads are recorded, so the consumers a
//! lease renewal reports cost no scan of the log.

mod bounded;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

pub use bounded::{MAX_TEXT, REFUSAL_WINDOW, REFUSALS_PER_WINDOW};
use bounded::{RefusalLimiter, Verdict};

use mesh_contracts::catalog::Consumer;
use mesh_contracts::product::{ReadOutcome, ReadRecord};
use rusqlite::{Connection, params};

use crate::error::{DomainError, Result};

/// The longest a record waits before it is committed.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Records waiting at most; a full queue makes readers wait for the writer.
const QUEUE: usize = 4_096;
/// Bytes of records waiting at most: past it, refusals are counted, not
/// queued (served reads still wait their turn).
pub const MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;
/// A day, in ms: the unit reads are summed by.
const DAY_MS: i64 = 86_400_000;
/// The most records one listing returns.
const MAX_LISTED: i64 = 10_000;
/// How often old records are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reads (
    id         INTEGER PRIMARY KEY,
    product    TEXT NOT NULL,
    principal  TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    start_ms   INTEGER NOT NULL,
    outcome    INTEGER NOT NULL,
    rows       INTEGER NOT NULL,
    record     BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS reads_by_product ON reads (product, start_ms);
";

/// The reads that delivered rows, of each principal per product and day,
/// kept as reads are recorded; filled from the log once when it is new.
const SUMMARY: &str = "
CREATE TABLE reads_by_day (
    product   TEXT NOT NULL,
    day       INTEGER NOT NULL,
    principal TEXT NOT NULL,
    issuer    TEXT NOT NULL,
    reads     INTEGER NOT NULL,
    rows      INTEGER NOT NULL,
    last_ms   INTEGER NOT NULL,
    PRIMARY KEY (product, day, principal, issuer)
) STRICT;
INSERT INTO reads_by_day
    SELECT product, start_ms / 86400000, principal, issuer, count(*), sum(rows), max(start_ms)
    FROM reads WHERE outcome = 1 OR (outcome != 2 AND rows > 0) GROUP BY 1, 2, 3, 4;
";

/// Adds one read that delivered rows to its principal's day ({summary}
/// names the table).
const SUMMARIZE: &str = "INSERT INTO {summary} (product, day, principal, issuer, reads, rows, last_ms)
     VALUES ($1, $2, $3, $4, 1, $5, $6)
     ON CONFLICT (product, day, principal, issuer) DO UPDATE SET
         reads = {summary}.reads + 1,
         rows = {summary}.rows + excluded.rows,
         last_ms = CASE WHEN excluded.last_ms > {summary}.last_ms THEN excluded.last_ms ELSE {summary}.last_ms END";

/// Where reads are recorded.
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: SyncSender<ReadRecord>,
    kept: Kept,
    limits: Arc<Limits>,
}

/// What bounds the queue and the refusals recorded, shared with the writer.
#[derive(Debug, Default)]
struct Limits {
    refusals: RefusalLimiter,
    queued_bytes: AtomicUsize,
    overflowed: AtomicU64,
}

/// The database the log is kept in.
#[derive(Debug, Clone)]
enum Kept {
    Sqlite(PathBuf),
    Postgres(mesh_postgres::Database),
}

fn open(path: &Path) -> Result<Connection> {
    mesh_grpc::private_files::create_private_file(path)?;
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    let summarized: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'reads_by_day'",
        [],
        |r| r.get(0),
    )?;
    if !summarized {
        conn.execute_batch(&format!("BEGIN; {SUMMARY} COMMIT;"))?;
    }
    Ok(conn)
}

fn ms(timestamp: Option<&prost_types::Timestamp>) -> i64 {
    timestamp.map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

impl AuditLog {
    /// The log in `path`, keeping records for `retention`; its writer
    /// thread runs until every handle is dropped.
    pub fn open(path: &Path, retention: Duration) -> Result<Self> {
        let mut conn = open(path)?;
        let (queue, records) = sync_channel(QUEUE);
        let limits = Arc::new(Limits::default());
        let write = move |batch: &[ReadRecord], prune| write_sqlite(&mut conn, batch, prune);
        start_writer(records, retention, Arc::clone(&limits), write)?;
        Ok(Self { queue, kept: Kept::Sqlite(path.to_owned()), limits })
    }

    /// The log in the domain's schema on PostgreSQL, keeping records for
    /// `retention`.
    pub fn on_postgres(db: &mesh_postgres::Database, retention: Duration) -> Result<Self> {
        let (queue, records) = sync_channel(QUEUE);
        let writer = db.clone();
        let limits = Arc::new(Limits::default());
        let write = move |batch: &[ReadRecord], prune| write_postgres(&writer, batch, prune);
        start_writer(records, retention, Arc::clone(&limits), write)?;
        Ok(Self { queue, kept: Kept::Postgres(db.clone()), limits })
    }

    /// The log `store`'s reads go to: beside its data on PostgreSQL, else
    /// `<data_dir>/audit.sqlite`.
    pub fn for_store(store: &crate::DomainStore, data_dir: &Path, retention: Duration) -> Result<Self> {
        match store.postgres() {
            Some(db) => Self::on_postgres(db, retention),
            None => Self::open(&data_dir.join("audit.sqlite"), retention),
        }
    }

    /// Records `read`, cut to bounded size (waits while the queue is
    /// full). A refusal is only counted when its principal was refused
    /// [`REFUSALS_PER_WINDOW`] times on the product in the window, or when
    /// the queue holds [`MAX_QUEUED_BYTES`].
    pub fn record(&self, mut read: ReadRecord) {
        use prost::Message;
        bounded::bound(&mut read);
        if read.outcome == ReadOutcome::Refused as i32 {
            match self.limits.refusals.admit(&read, Instant::now()) {
                Verdict::Record(before) => read.refusals_not_recorded = before as i64,
                Verdict::Count => return,
            }
            if self.limits.queued_bytes.load(Ordering::Relaxed) >= MAX_QUEUED_BYTES {
                self.limits.overflowed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.limits.queued_bytes.fetch_add(read.encoded_len(), Ordering::Relaxed);
        if self.queue.send(read).is_err() {
            tracing::error!("the audit writer has stopped; a read was not recorded");
        }
    }

    /// The principals served `product` since the day of `since_ms`,
    /// busiest first (at most `limit`), from the daily sums.
    pub fn consumers(&self, product: &str, since_ms: i64, limit: usize) -> Result<Vec<Consumer>> {
        const CONSUMERS: &str = "SELECT principal, issuer, max(last_ms), CAST(sum(reads) AS BIGINT),
             CAST(sum(rows) AS BIGINT) FROM {summary} WHERE product = $1 AND day >= $2
             GROUP BY principal, issuer ORDER BY 5 DESC, principal LIMIT $3";
        let since_day = since_ms.div_euclid(DAY_MS);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let consumer = |principal: String, issuer: String, last: i64, reads: i64, rows: i64| Consumer {
            principal,
            issuer,
            last_read_time: Some(prost_types::Timestamp {
                seconds: last / 1000,
                nanos: ((last % 1000) * 1_000_000) as i32,
            }),
            reads,
            rows,
        };
        match &self.kept {
            Kept::Sqlite(path) => {
                let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                let mut statement = conn.prepare_cached(&CONSUMERS.replace("{summary}", "reads_by_day"))?;
                let rows = statement.query_map(params![product, since_day, limit], |row| {
                    Ok(consumer(row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            }
            Kept::Postgres(db) => {
                let product = product.to_owned();
                let rows = db.run(move |pool| async move {
                    let client = pool.get().await?;
                    let sql = CONSUMERS.replace("{summary}", "mesh_reads_by_day");
                    Ok::<_, mesh_postgres::DbError>(
                        client.query(&sql, &[&product, &since_day, &limit]).await?,
                    )
                })?;
                Ok(rows.iter().map(|r| consumer(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect())
            }
        }
    }

    /// Reads of `product` since `since_ms`, of `principal` if given,
    /// newest first, at most `limit`.
    pub fn list(&self, product: &str, since_ms: i64, principal: &str, limit: i64) -> Result<Vec<ReadRecord>> {
        use prost::Message;
        const LIST: &str = "SELECT record FROM {reads}
             WHERE product = $1 AND start_ms >= $2 AND ($3 = '' OR principal = $3) ORDER BY id DESC LIMIT $4";
        let limit = limit.clamp(1, MAX_LISTED);
        let records: Vec<Vec<u8>> = match &self.kept {
            Kept::Sqlite(path) => {
                let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                let mut statement = conn.prepare(&LIST.replace("{reads}", "reads"))?;
                let rows = statement.query_map(params![product, since_ms, principal, limit], |row| {
                    row.get::<_, Vec<u8>>(0)
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            }
            Kept::Postgres(db) => {
                let (product, principal) = (product.to_owned(), principal.to_owned());
                let rows = db.run(move |pool| async move {
                    let client = pool.get().await?;
                    let sql = LIST.replace("{reads}", "mesh_reads");
                    Ok::<_, mesh_postgres::DbError>(
                        client.query(&sql, &[&product, &since_ms, &principal, &limit]).await?,
                    )
                })?;
                rows.iter().map(|r| r.get(0)).collect()
            }
        };
        records
            .iter()
            .map(|bytes| {
                ReadRecord::decode(bytes.as_slice()).map_err(|e| DomainError::Internal(e.to_string()))
            })
            .collect()
    }
}

/// Starts the writer thread: `write` commits a batch, and deletes records
/// older than the cutoff it is given (ms since the epoch) when there is one.
fn start_writer(
    records: Receiver<ReadRecord>,
    retention: Duration,
    limits: Arc<Limits>,
    write: impl FnMut(&[ReadRecord], Option<i64>) -> Result<()> + Send + 'static,
) -> Result<()> {
    std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || write_records(records, retention, &limits, write))
        .map_err(|e| DomainError::Internal(format!("cannot start the audit writer: {e}")))?;
    Ok(())
}

/// The writer thread: commits what the queue holds every [`FLUSH_EVERY`]
/// (or sooner when a batch fills) with the counts of refusal windows
/// closed, and deletes records past `retention`.
fn write_records(
    records: Receiver<ReadRecord>,
    retention: Duration,
    limits: &Limits,
    mut write: impl FnMut(&[ReadRecord], Option<i64>) -> Result<()>,
) {
    use prost::Message;
    let mut last_prune = Instant::now() - PRUNE_EVERY;
    loop {
        let first = match records.recv_timeout(FLUSH_EVERY) {
            Ok(record) => Some(record),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch: Vec<ReadRecord> = first.into_iter().collect();
        let deadline = Instant::now() + FLUSH_EVERY;
        while batch.len() < 1000 && Instant::now() < deadline {
            match records.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        let taken: usize = batch.iter().map(|r| r.encoded_len()).sum();
        limits.queued_bytes.fetch_sub(taken, Ordering::Relaxed);
        batch.extend(limits.refusals.closed(Instant::now()));
        let overflowed = limits.overflowed.swap(0, Ordering::Relaxed);
        if overflowed > 0 {
            tracing::warn!(overflowed, "the read log's queue was full; refusals counted, not recorded");
        }
        let prune = (last_prune.elapsed() >= PRUNE_EVERY).then(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            now.saturating_sub(retention).as_millis() as i64
        });
        if batch.is_empty() && prune.is_none() {
            continue;
        }
        match write(&batch, prune) {
            Ok(()) if prune.is_some() => last_prune = Instant::now(),
            Ok(()) => {}
            Err(error) => tracing::error!(%error, records = batch.len(), "cannot record reads"),
        }
    }
}

/// Whether `read` delivered rows (served, or cut or cancelled after some):
/// its principal then counts among the product's readers.
fn delivered(read: &ReadRecord) -> bool {
    read.outcome == ReadOutcome::Served as i32
        || (read.outcome != ReadOutcome::Refused as i32 && read.rows > 0)
}

/// Commits `batch` (and the pruning) to the SQLite log.
fn write_sqlite(conn: &mut Connection, batch: &[ReadRecord], prune: Option<i64>) -> Result<()> {
    use prost::Message;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO reads (product, principal, issuer, start_ms, outcome, rows, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut summarize = tx.prepare_cached(&SUMMARIZE.replace("{summary}", "reads_by_day"))?;
        for r in batch {
            let start = ms(r.start_time.as_ref());
            insert.execute(params![
                r.product,
                r.principal,
                r.issuer,
                start,
                r.outcome,
                r.rows,
                r.encode_to_vec()
            ])?;
            if delivered(r) {
                summarize.execute(params![
                    r.product,
                    start.div_euclid(DAY_MS),
                    r.principal,
                    r.issuer,
                    r.rows,
                    start
                ])?;
            }
        }
    }
    if let Some(cutoff) = prune {
        tx.execute("DELETE FROM reads WHERE start_ms < ?1", [cutoff])?;
        tx.execute("DELETE FROM reads_by_day WHERE day < ?1", [cutoff.div_euclid(DAY_MS)])?;
    }
    Ok(tx.commit()?)
}

/// Commits `batch` (and the pruning) to the PostgreSQL log.
fn write_postgres(db: &mesh_postgres::Database, batch: &[ReadRecord], prune: Option<i64>) -> Result<()> {
    use prost::Message;
    let batch = batch.to_vec();
    Ok(db.run(move |pool| async move {
        let mut client = pool.get().await?;
        let transaction = client.transaction().await?;
        let insert = transaction
            .prepare_cached(
                "INSERT INTO mesh_reads (product, principal, issuer, start_ms, outcome, rows, record)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .await?;
        let summarize =
            transaction.prepare_cached(&SUMMARIZE.replace("{summary}", "mesh_reads_by_day")).await?;
        for r in &batch {
            let (start, record) = (ms(r.start_time.as_ref()), r.encode_to_vec());
            transaction
                .execute(
                    &insert,
                    &[&r.product, &r.principal, &r.issuer, &start, &r.outcome, &r.rows, &record],
                )
                .await?;
            if delivered(r) {
                let day = start.div_euclid(DAY_MS);
                transaction
                    .execute(&summarize, &[&r.product, &day, &r.principal, &r.issuer, &r.rows, &start])
                    .await?;
            }
        }
        if let Some(cutoff) = prune {
            transaction.execute("DELETE FROM mesh_reads WHERE start_ms < $1", &[&cutoff]).await?;
            let day = cutoff.div_euclid(DAY_MS);
            transaction.execute("DELETE FROM mesh_reads_by_day WHERE day < $1", &[&day]).await?;
        }
        transaction.commit().await?;
        Ok::<_, mesh_postgres::DbError>(())
    })?)
}

/// A read in progress: the log it goes to and what is known of it so far.
#[derive(Debug, Clone)]
pub struct Audit {
    /// Where it is recorded.
    pub log: AuditLog,
    /// The record, completed as the read ends.
    pub record: ReadRecord,
}

/// How a served read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Every row asked for went out.
    Served,
    /// The client went away.
    Cancelled,
    /// Cut, with the message the client got.
    Failed(String),
}

fn now() -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::now())
}

impl Audit {
    /// Records the read as refused with `status`.
    pub fn refused(mut self, status: &tonic::Status) {
        self.record.outcome = ReadOutcome::Refused.into();
        self.record.detail = status.message().to_owned();
        self.record.end_time = Some(now());
        self.log.record(self.record);
    }

    /// Records the read as ended after `rows` rows and `bytes` bytes.
    pub(crate) fn ended(mut self, ended: Ended, rows: u64, bytes: u64) {
        let (outcome, detail) = match ended {
            Ended::Served => (ReadOutcome::Served, String::new()),
            Ended::Cancelled => (ReadOutcome::Cancelled, String::new()),
            Ended::Failed(detail) => (ReadOutcome::Failed, detail),
        };
        self.record.outcome = outcome.into();
        self.record.detail = detail;
        self.record.rows = rows as i64;
        self.record.bytes = bytes as i64;
        self.record.end_time = Some(now());
        self.log.record(self.record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(product: &str, principal: &str, start_ms: i64) -> ReadRecord {
        ReadRecord {
            product: product.into(),
            principal: principal.into(),
            start_time: Some(prost_types::Timestamp {
                seconds: start_ms / 1000,
                nanos: (start_ms % 1000) as i32 * 1_000_000,
            }),
            outcome: ReadOutcome::Served.into(),
            ..Default::default()
        }
    }

    /// Records three reads into `log` and checks the listings and consumers.
    fn records_and_lists(log: &AuditLog) {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        log.record(read("p.a", "ana", now - 1000));
        log.record(read("p.a", "bob", now));
        log.record(read("p.b", "ana", now));
        std::thread::sleep(FLUSH_EVERY * 3);
        let all = log.list("p.a", 0, "", 100).unwrap();
        assert_eq!(all.iter().map(|r| r.principal.as_str()).collect::<Vec<_>>(), ["bob", "ana"]);
        assert_eq!(log.list("p.a", 0, "ana", 100).unwrap().len(), 1);
        assert_eq!(log.list("p.a", now - 500, "", 100).unwrap().len(), 1);
        let consumers = log.consumers("p.a", 0, 10).unwrap();
        assert_eq!(consumers.iter().map(|c| c.principal.as_str()).collect::<Vec<_>>(), ["ana", "bob"]);
        assert_eq!(consumers[0].reads, 1);
    }

    #[test]
    fn reads_are_recorded_and_listed_newest_first_by_product_and_principal() {
        let dir = tempfile::tempdir().unwrap();
        let log =
            AuditLog::open(&dir.path().join("audit.sqlite"), Duration::from_secs(86_400 * 400)).unwrap();
        records_and_lists(&log);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("audit.sqlite")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_flood_of_refusals_with_huge_filters_leaves_a_small_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.sqlite");
        let log = AuditLog::open(&path, Duration::from_secs(86_400)).unwrap();
        let filter = "x".repeat(1024 * 1024);
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        for i in 0..2_000 {
            let principal = if i % 100 == 0 { "ana" } else { "mallory" };
            log.record(ReadRecord {
                filter: filter.clone(),
                outcome: ReadOutcome::Refused.into(),
                ..read("p.a", principal, now)
            });
        }
        std::thread::sleep(FLUSH_EVERY * 3);
        let reads = log.list("p.a", 0, "", 10_000).unwrap();
        let of = |who: &str| reads.iter().filter(|r| r.principal == who).count() as u64;
        assert_eq!(of("mallory"), REFUSALS_PER_WINDOW, "the rest are counted");
        assert_eq!(of("ana"), REFUSALS_PER_WINDOW.min(20), "another principal is recorded still");
        let first = &reads[reads.len() - 1];
        assert_eq!((first.filter.len(), first.filter_length), (MAX_TEXT, 1024 * 1024));
        assert_eq!(first.filter_blake3, blake3::hash(filter.as_bytes()).to_hex().to_string());
        let size: u64 =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        assert!(size < 2 * 1024 * 1024, "the log takes {size} bytes");
    }

    #[test]
    fn consumers_are_summed_per_day_and_a_log_from_before_is_summed_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.sqlite");
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute(
                "INSERT INTO reads (product, principal, issuer, start_ms, outcome, rows, record)
                 VALUES ('p.a', 'old', 'i', ?1, 1, 7, x'')",
                [now - 3 * DAY_MS],
            )
            .unwrap();
        }
        let log = AuditLog::open(&path, Duration::from_secs(86_400 * 400)).unwrap();
        for rows in [5, 6] {
            log.record(ReadRecord { rows, ..read("p.a", "ana", now) });
        }
        log.record(ReadRecord { outcome: ReadOutcome::Refused.into(), ..read("p.a", "eve", now) });
        std::thread::sleep(FLUSH_EVERY * 3);
        let consumers = log.consumers("p.a", 0, 10).unwrap();
        let summary: Vec<(&str, i64, i64)> =
            consumers.iter().map(|c| (c.principal.as_str(), c.reads, c.rows)).collect();
        assert_eq!(summary, [("ana", 2, 11), ("old", 1, 7)], "refusals are no reads");
        assert_eq!(
            log.consumers("p.a", now - DAY_MS, 10).unwrap().len(),
            1,
            "the old read is older than a day"
        );
        drop(log);
        let reopened = AuditLog::open(&path, Duration::from_secs(86_400 * 400)).unwrap();
        assert_eq!(reopened.consumers("p.a", 0, 10).unwrap()[0].reads, 2, "summed once");
    }

    #[test]
    fn on_postgres_every_replica_records_into_one_log() {
        let database = mesh_postgres::testing::TestDatabase::create();
        let args = mesh_postgres::DatabaseArgs::for_url(database.url());
        let store = crate::DomainStore::connect(&args, "payment").unwrap();
        let log =
            AuditLog::on_postgres(store.postgres().unwrap(), Duration::from_secs(86_400 * 400)).unwrap();
        records_and_lists(&log);
        // Another replica on the same database reads the same log.
        let other = crate::DomainStore::connect(&args, "payment").unwrap();
        let replica = AuditLog::on_postgres(other.postgres().unwrap(), Duration::from_secs(86_400)).unwrap();
        assert_eq!(replica.list("p.a", 0, "", 100).unwrap().len(), 2);
    }
}
