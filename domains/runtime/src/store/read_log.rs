//! What the read log keeps, as the store sees it: each read's indexed
//! fields beside its encoded record, and, summed as they are written, the
//! reads of each principal per product and day and each product's usage
//! per day (reads, rows and bytes served; refusals by reason).

use crate::error::Result;

/// A day, in ms: the unit reads are summed by.
pub const DAY_MS: i64 = 86_400_000;

/// One read to append.
#[derive(Debug, Clone)]
pub struct LoggedRead {
    /// The product read.
    pub product: String,
    /// Who read it.
    pub principal: String,
    /// Who vouched for the reader.
    pub issuer: String,
    /// When the read started, ms since the epoch.
    pub start_ms: i64,
    /// How it ended (`ReadOutcome` as a number).
    pub outcome: i32,
    /// Rows delivered.
    pub rows: i64,
    /// It delivered rows: it counts in its principal's daily sum.
    pub delivered: bool,
    /// What it adds to its product's usage of its day, if anything.
    pub usage: Option<UsageSum>,
    /// The whole record, encoded.
    pub record: Vec<u8>,
}

/// A product's usage of one day for one reason, summed: served reads
/// (reason empty) or refusals (reason the code the callers got).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSum {
    /// The day, days since the epoch (UTC); ignored when appending (the
    /// read's start decides).
    pub day: i64,
    /// Empty for served reads, else the refusal's code (`PERMISSION_DENIED`).
    pub reason: String,
    /// Reads served, or refusals.
    pub reads: i64,
    /// Rows delivered.
    pub rows: i64,
    /// Bytes of row batches delivered.
    pub bytes: i64,
}

/// One principal's reads of a product that delivered rows, summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderSum {
    /// Who read.
    pub principal: String,
    /// Who vouched for them.
    pub issuer: String,
    /// Their last read, ms since the epoch.
    pub last_ms: i64,
    /// How many reads.
    pub reads: i64,
    /// Rows delivered in all.
    pub rows: i64,
}

/// Where a domain's reads are recorded (a trait both backends implement).
pub trait ReadLog: Send + Sync + std::fmt::Debug {
    /// A connection that appends; the log's one writer holds it.
    fn writer(&self) -> Result<Box<dyn ReadLogWriter>>;
    /// The principals served `product` since day `since_day` (days since
    /// the epoch), most rows first, at most `limit`.
    fn readers(&self, product: &str, since_day: i64, limit: i64) -> Result<Vec<ReaderSum>>;
    /// The usage of `product` per day and reason since day `since_day`.
    fn usage(&self, product: &str, since_day: i64) -> Result<Vec<UsageSum>>;
    /// The encoded records of reads of `product` since `since_ms`, of
    /// `principal` unless empty, newest first, at most `limit`.
    fn records(&self, product: &str, since_ms: i64, principal: &str, limit: i64) -> Result<Vec<Vec<u8>>>;
}

/// Appends to the read log.
pub trait ReadLogWriter: Send {
    /// Appends `batch` and, given a cutoff (ms since the epoch), deletes
    /// the reads and daily sums before it: one transaction.
    fn append(&mut self, batch: &[LoggedRead], prune_before_ms: Option<i64>) -> Result<()>;
}

/// Statements written once for both backends, `{reads}`, `{summary}` and
/// `{usage}` naming the tables.
pub(crate) mod sql {
    /// A backend's names of the log's tables.
    pub(crate) struct Tables {
        /// Every read's record.
        pub reads: &'static str,
        /// Each principal's reads per product and day.
        pub summary: &'static str,
        /// Each product's usage per day and reason.
        pub usage: &'static str,
    }

    /// Appends one read.
    pub(crate) const INSERT: &str =
        "INSERT INTO {reads} (product, principal, issuer, start_ms, outcome, rows, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7)";
    /// Adds one read that delivered rows to its principal's day.
    pub(crate) const SUMMARIZE: &str = "INSERT INTO {summary} (product, day, principal, issuer, reads, rows, last_ms)
         VALUES ($1, $2, $3, $4, 1, $5, $6)
         ON CONFLICT (product, day, principal, issuer) DO UPDATE SET
             reads = {summary}.reads + 1,
             rows = {summary}.rows + excluded.rows,
             last_ms = CASE WHEN excluded.last_ms > {summary}.last_ms THEN excluded.last_ms ELSE {summary}.last_ms END";
    /// Adds one read to its product's usage of its day.
    pub(crate) const ADD_USAGE: &str = "INSERT INTO {usage} (product, day, reason, reads, rows, bytes)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (product, day, reason) DO UPDATE SET
             reads = {usage}.reads + excluded.reads,
             rows = {usage}.rows + excluded.rows,
             bytes = {usage}.bytes + excluded.bytes";
    /// A product's usage since a day.
    pub(crate) const USAGE: &str = "SELECT day, reason, reads, rows, bytes FROM {usage} WHERE product = $1 AND day >= $2 ORDER BY day, reason";
    /// The principals of a product since a day.
    pub(crate) const READERS: &str = "SELECT principal, issuer, max(last_ms), CAST(sum(reads) AS BIGINT),
         CAST(sum(rows) AS BIGINT) FROM {summary} WHERE product = $1 AND day >= $2
         GROUP BY principal, issuer ORDER BY 5 DESC, principal LIMIT $3";
    /// The records of a product since a time.
    pub(crate) const RECORDS: &str = "SELECT record FROM {reads}
         WHERE product = $1 AND start_ms >= $2 AND ($3 = '' OR principal = $3) ORDER BY id DESC LIMIT $4";
    /// Deletes reads before a time.
    pub(crate) const PRUNE_READS: &str = "DELETE FROM {reads} WHERE start_ms < $1";
    /// Deletes sums before a day.
    pub(crate) const PRUNE_SUMMARY: &str = "DELETE FROM {summary} WHERE day < $1";
    /// Deletes usage before a day.
    pub(crate) const PRUNE_USAGE: &str = "DELETE FROM {usage} WHERE day < $1";

    /// `statement` over `tables`.
    pub(crate) fn on(statement: &str, tables: &Tables) -> String {
        statement
            .replace("{reads}", tables.reads)
            .replace("{summary}", tables.summary)
            .replace("{usage}", tables.usage)
    }
}
