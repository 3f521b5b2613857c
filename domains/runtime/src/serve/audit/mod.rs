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
mod meters;
pub mod usage;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

pub use bounded::{MAX_TEXT, REFUSAL_WINDOW, REFUSALS_PER_WINDOW};
use bounded::{RefusalLimiter, Verdict};
pub use meters::ReadMeters;

use mesh_contracts::catalog::Consumer;
use mesh_contracts::product::{GetUsageResponse, ReadOutcome, ReadRecord};

use crate::error::{DomainError, Result};
use crate::scan::stream::Ended;
use crate::store::read_log::DAY_MS;
use crate::store::{LoggedRead, ReadLog, Storage};

/// The longest a record waits before it is committed.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Records waiting at most; a full queue makes readers wait for the writer.
const QUEUE: usize = 4_096;
/// Bytes of records waiting at most: past it, refusals are counted, not
/// queued (served reads still wait their turn).
pub const MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;
/// The most records one listing returns.
const MAX_LISTED: i64 = 10_000;
/// How often old records are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Where reads are recorded.
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: SyncSender<ReadRecord>,
    kept: Arc<dyn ReadLog>,
    limits: Arc<Limits>,
}

/// What bounds the queue and the refusals recorded, shared with the writer.
#[derive(Debug, Default)]
struct Limits {
    refusals: RefusalLimiter,
    queued_bytes: AtomicUsize,
    overflowed: AtomicU64,
}

fn ms(timestamp: Option<&prost_types::Timestamp>) -> i64 {
    timestamp.map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

impl AuditLog {
    /// The log `store`'s reads go to: beside its data on PostgreSQL, else
    /// `<data_dir>/audit.sqlite`; records are kept for `retention`.
    pub fn for_store(store: &impl Storage, data_dir: &Path, retention: Duration) -> Result<Self> {
        Self::on(store.read_log(data_dir)?, retention)
    }

    /// The log kept in `kept`; its writer thread runs until every handle
    /// is dropped.
    pub fn on(kept: Arc<dyn ReadLog>, retention: Duration) -> Result<Self> {
        let (queue, records) = sync_channel(QUEUE);
        let limits = Arc::new(Limits::default());
        let mut writer = kept.writer()?;
        let write = move |batch: &[LoggedRead], prune| writer.append(batch, prune);
        start_writer(records, retention, Arc::clone(&limits), write)?;
        Ok(Self { queue, kept, limits })
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
        let since_day = since_ms.div_euclid(DAY_MS);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let readers = self.kept.readers(product, since_day, limit)?;
        Ok(readers
            .into_iter()
            .map(|sum| Consumer {
                principal: sum.principal,
                issuer: sum.issuer,
                last_read_time: Some(mesh_contracts::time::timestamp(sum.last_ms)),
                reads: sum.reads,
                rows: sum.rows,
            })
            .collect())
    }

    /// `product`'s usage from the day of `since_ms` on, from the daily
    /// sums, with its `slowest` reads among at most
    /// [`usage::MAX_USAGE_RECORDS`] records, newest first.
    pub fn usage(&self, product: &str, since_ms: i64, slowest: usize) -> Result<GetUsageResponse> {
        use prost::Message;
        let first_day = since_ms.div_euclid(DAY_MS);
        let sums = self.kept.usage(product, first_day)?;
        let records =
            self.kept.records(product, first_day.saturating_mul(DAY_MS), "", usage::MAX_USAGE_RECORDS + 1)?;
        let truncated = records.len() as i64 > usage::MAX_USAGE_RECORDS;
        let mut damaged = None;
        let reads = records
            .into_iter()
            .take(usage::MAX_USAGE_RECORDS as usize)
            .map_while(|bytes| ReadRecord::decode(bytes.as_slice()).map_err(|e| damaged = Some(e)).ok());
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let summed = usage::summarize(product, &sums, reads, (since_ms, now_ms), slowest, truncated);
        match damaged {
            Some(error) => Err(DomainError::Internal(format!("a read record does not decode: {error}"))),
            None => Ok(summed),
        }
    }

    /// Reads of `product` since `since_ms`, of `principal` if given,
    /// newest first, at most `limit`.
    pub fn list(&self, product: &str, since_ms: i64, principal: &str, limit: i64) -> Result<Vec<ReadRecord>> {
        use prost::Message;
        let records = self.kept.records(product, since_ms, principal, limit.clamp(1, MAX_LISTED))?;
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
    write: impl FnMut(&[LoggedRead], Option<i64>) -> Result<()> + Send + 'static,
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
    mut write: impl FnMut(&[LoggedRead], Option<i64>) -> Result<()>,
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
        let logged: Vec<LoggedRead> = batch.iter().map(logged).collect();
        match write(&logged, prune) {
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

/// `read` as the log keeps it.
fn logged(read: &ReadRecord) -> LoggedRead {
    use prost::Message;
    LoggedRead {
        product: read.product.clone(),
        principal: read.principal.clone(),
        issuer: read.issuer.clone(),
        start_ms: ms(read.start_time.as_ref()),
        outcome: read.outcome,
        rows: read.rows,
        delivered: delivered(read),
        usage: usage::of(read),
        record: read.encode_to_vec(),
    }
}

/// A read in progress: the log it goes to (none when the product keeps no
/// read log) and what is known of it so far. Each layer of a read fills in
/// what it learns; the read is recorded once, as refused or as ended.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    /// Where it is recorded, if anywhere.
    pub log: Option<AuditLog>,
    /// The record, completed as the read ends.
    pub record: ReadRecord,
    /// Where the read is counted, if anywhere.
    pub meters: Option<ReadMeters>,
    /// The format it is served in, as a metric label (`grpc`, `csv`, `arrow`, ...).
    pub format: &'static str,
}

fn now() -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::now())
}

impl Audit {
    /// Records the read as refused with `status`, and gives the status back
    /// for the caller.
    pub fn refuse(mut self, status: tonic::Status) -> tonic::Status {
        self.record.outcome = ReadOutcome::Refused.into();
        self.record.detail = status.message().to_owned();
        self.record.refusal_code = mesh_grpc::rest::status_name(status.code()).to_owned();
        if let Some(meters) = &self.meters {
            meters.refused(self.format, status.code());
        }
        self.finish();
        status
    }

    /// Records the read as ended after `rows` rows and `bytes` bytes.
    pub(crate) fn ended(mut self, ended: Ended, rows: u64, bytes: u64) {
        let (outcome, detail) = match ended {
            Ended::Served => (ReadOutcome::Served, String::new()),
            Ended::Cancelled => (ReadOutcome::Cancelled, String::new()),
            Ended::Failed(detail) => (ReadOutcome::Failed, detail),
        };
        if let Some(meters) = &self.meters {
            let label = match outcome {
                ReadOutcome::Served => "served",
                ReadOutcome::Cancelled => "cancelled",
                _ => "failed",
            };
            meters.ended(self.format, label, rows, bytes);
        }
        self.record.outcome = outcome.into();
        self.record.detail = detail;
        self.record.rows = rows as i64;
        self.record.bytes = bytes as i64;
        self.finish();
    }

    fn finish(mut self) {
        self.record.end_time = Some(now());
        if let Some(log) = self.log {
            log.record(self.record);
        }
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
        let log = AuditLog::on(
            crate::store::sqlite_read_log(&dir.path().join("audit.sqlite")).unwrap(),
            Duration::from_secs(86_400 * 400),
        )
        .unwrap();
        records_and_lists(&log);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("audit.sqlite")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_flood_of_refusals_with_huge_filters_leaves_a_small_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.sqlite");
        let log =
            AuditLog::on(crate::store::sqlite_read_log(&path).unwrap(), Duration::from_secs(86_400)).unwrap();
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
    fn consumers_are_summed_per_day_and_refusals_are_no_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.sqlite");
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let log =
            AuditLog::on(crate::store::sqlite_read_log(&path).unwrap(), Duration::from_secs(86_400 * 400))
                .unwrap();
        for rows in [5, 6] {
            log.record(ReadRecord { rows, ..read("p.a", "ana", now) });
        }
        log.record(ReadRecord { outcome: ReadOutcome::Refused.into(), ..read("p.a", "eve", now) });
        std::thread::sleep(FLUSH_EVERY * 3);
        let consumers = log.consumers("p.a", 0, 10).unwrap();
        let summary: Vec<(&str, i64, i64)> =
            consumers.iter().map(|c| (c.principal.as_str(), c.reads, c.rows)).collect();
        assert_eq!(summary, [("ana", 2, 11)], "refusals are no reads");
        assert!(log.consumers("p.a", now + DAY_MS, 10).unwrap().is_empty(), "nothing read tomorrow");
        drop(log);
        let reopened =
            AuditLog::on(crate::store::sqlite_read_log(&path).unwrap(), Duration::from_secs(86_400 * 400))
                .unwrap();
        assert_eq!(reopened.consumers("p.a", 0, 10).unwrap()[0].reads, 2, "summed once");
    }

    #[test]
    fn on_postgres_every_replica_records_into_one_log() {
        let database = mesh_postgres::testing::TestDatabase::create();
        let args = mesh_postgres::DatabaseArgs::for_url(database.url());
        let store = crate::DomainStore::connect(&args, "payment").unwrap();
        let log =
            AuditLog::for_store(&store, Path::new("unused"), Duration::from_secs(86_400 * 400)).unwrap();
        records_and_lists(&log);
        // Another replica on the same database reads the same log.
        let other = crate::DomainStore::connect(&args, "payment").unwrap();
        let replica = AuditLog::for_store(&other, Path::new("unused"), Duration::from_secs(86_400)).unwrap();
        assert_eq!(replica.list("p.a", 0, "", 100).unwrap().len(), 2);
    }
}
