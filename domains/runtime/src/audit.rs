//! The record of every read a domain handled, served, refused or cut: kept
//! in a database of its own (`<data-dir>/audit.sqlite`, mode 0600), so
//! recording never waits behind a load. Records go through a bounded queue
//! to one writer thread that commits them in batches (durable within
//! [`FLUSH_EVERY`]); the table is append-only: nothing but the retention
//! deletes from it.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use mesh_contracts::catalog::Consumer;
use mesh_contracts::product::{ReadOutcome, ReadRecord};
use rusqlite::{Connection, params};

use crate::error::{DomainError, Result};

/// The longest a record waits before it is committed.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Records waiting at most; a full queue makes readers wait for the writer.
const QUEUE: usize = 10_000;
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

/// Where reads are recorded.
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: SyncSender<ReadRecord>,
    path: PathBuf,
}

fn open(path: &Path) -> Result<Connection> {
    mesh_grpc::private_files::create_private_file(path)?;
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn ms(timestamp: Option<&prost_types::Timestamp>) -> i64 {
    timestamp.map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

impl AuditLog {
    /// The log in `path`, keeping records for `retention`; its writer
    /// thread runs until every handle is dropped.
    pub fn open(path: &Path, retention: Duration) -> Result<Self> {
        let conn = open(path)?;
        let (queue, records) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_records(conn, records, retention))
            .map_err(|e| DomainError::Internal(format!("cannot start the audit writer: {e}")))?;
        Ok(Self { queue, path: path.to_owned() })
    }

    /// Records `read` (waits while the queue is full).
    pub fn record(&self, read: ReadRecord) {
        if self.queue.send(read).is_err() {
            tracing::error!("the audit writer has stopped; a read was not recorded");
        }
    }

    /// The principals served `product` since `since_ms`, busiest first (at
    /// most `limit`).
    pub fn consumers(&self, product: &str, since_ms: i64, limit: usize) -> Result<Vec<Consumer>> {
        let conn = Connection::open_with_flags(&self.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut statement = conn.prepare_cached(
            "SELECT principal, issuer, max(start_ms), count(*), sum(rows) FROM reads
             WHERE product = ?1 AND start_ms >= ?2 AND outcome = ?3
             GROUP BY principal, issuer ORDER BY sum(rows) DESC, principal LIMIT ?4",
        )?;
        let served = ReadOutcome::Served as i32;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![product, since_ms, served, limit], |row| {
            let last: i64 = row.get(2)?;
            let last_read_time =
                prost_types::Timestamp { seconds: last / 1000, nanos: ((last % 1000) * 1_000_000) as i32 };
            Ok(Consumer {
                principal: row.get(0)?,
                issuer: row.get(1)?,
                last_read_time: Some(last_read_time),
                reads: row.get(3)?,
                rows: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Reads of `product` since `since_ms`, of `principal` if given,
    /// newest first, at most `limit`.
    pub fn list(&self, product: &str, since_ms: i64, principal: &str, limit: i64) -> Result<Vec<ReadRecord>> {
        use prost::Message;
        let conn = Connection::open_with_flags(&self.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut statement = conn.prepare(
            "SELECT record FROM reads WHERE product = ?1 AND start_ms >= ?2 AND (?3 = '' OR principal = ?3)
             ORDER BY id DESC LIMIT ?4",
        )?;
        let limit = limit.clamp(1, MAX_LISTED);
        let rows = statement
            .query_map(params![product, since_ms, principal, limit], |row| row.get::<_, Vec<u8>>(0))?;
        let mut reads = Vec::new();
        for bytes in rows {
            reads.push(
                ReadRecord::decode(bytes?.as_slice()).map_err(|e| DomainError::Internal(e.to_string()))?,
            );
        }
        Ok(reads)
    }
}

/// The writer thread: commits what the queue holds every [`FLUSH_EVERY`]
/// (or sooner when a batch fills), and deletes records past `retention`.
fn write_records(mut conn: Connection, records: Receiver<ReadRecord>, retention: Duration) {
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
        let written = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO reads (product, principal, issuer, start_ms, outcome, rows, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for r in &batch {
                    let start = ms(r.start_time.as_ref());
                    let values = params![
                        r.product,
                        r.principal,
                        r.issuer,
                        start,
                        r.outcome,
                        r.rows,
                        r.encode_to_vec()
                    ];
                    insert.execute(values)?;
                }
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                let now =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                let cutoff = now.saturating_sub(retention).as_millis() as i64;
                tx.execute("DELETE FROM reads WHERE start_ms < ?1", [cutoff])?;
                last_prune = Instant::now();
            }
            tx.commit()
        })();
        if let Err(error) = written {
            tracing::error!(%error, records = batch.len(), "cannot record reads");
        }
    }
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

    #[test]
    fn reads_are_recorded_and_listed_newest_first_by_product_and_principal() {
        let dir = tempfile::tempdir().unwrap();
        let log =
            AuditLog::open(&dir.path().join("audit.sqlite"), Duration::from_secs(86_400 * 400)).unwrap();
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
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("audit.sqlite")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
