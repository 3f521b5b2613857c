//! The read log on SQLite: a database file of its own beside the data
//! (`audit.sqlite`, mode 0600), so that recording never waits behind a
//! load; one writer connection, read-only connections for listings.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};

use crate::error::Result;
use crate::store::read_log::{DAY_MS, LoggedRead, ReadLog, ReadLogWriter, ReaderSum, UsageSum, sql};

const TABLES: sql::Tables = sql::Tables { reads: "reads", summary: "reads_by_day", usage: "usage_by_day" };

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
const SUMMARY_TABLE: &str = "
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

/// Each product's usage per day: served reads (reason empty) and refusals
/// by the code callers got, kept as reads are recorded. Filled once from
/// the log's indexed columns when new: the bytes and refusal codes of
/// earlier records are in their encoded records only, so those days show
/// no bytes and their refusals as `UNRECORDED`.
const USAGE_TABLE: &str = "
CREATE TABLE usage_by_day (
    product TEXT NOT NULL,
    day     INTEGER NOT NULL,
    reason  TEXT NOT NULL,
    reads   INTEGER NOT NULL,
    rows    INTEGER NOT NULL,
    bytes   INTEGER NOT NULL,
    PRIMARY KEY (product, day, reason)
) STRICT;
INSERT INTO usage_by_day
    SELECT product, start_ms / 86400000, CASE WHEN outcome = 2 THEN 'UNRECORDED' ELSE '' END,
        sum(CASE WHEN outcome = 2 OR outcome = 1 OR rows > 0 THEN 1 ELSE 0 END),
        sum(CASE WHEN outcome = 2 THEN 0 ELSE rows END), 0
    FROM reads GROUP BY 1, 2, 3;
";

/// The read log in one SQLite file.
#[derive(Debug)]
pub(crate) struct SqliteReadLog {
    path: PathBuf,
}

impl SqliteReadLog {
    /// Opens (creating if needed) the log at `path`.
    pub(crate) fn open(path: &Path) -> Result<Arc<dyn ReadLog>> {
        drop(open_writer(path)?);
        Ok(Arc::new(Self { path: path.to_owned() }))
    }

    fn reader(&self) -> Result<Connection> {
        Ok(Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?)
    }
}

/// A writable connection to the log at `path`, its tables made (and the
/// daily sums filled from an older log without them).
fn open_writer(path: &Path) -> Result<Connection> {
    mesh_grpc::private_files::create_private_file(path)?;
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    for (table, made) in [(TABLES.summary, SUMMARY_TABLE), (TABLES.usage, USAGE_TABLE)] {
        let exists: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )?;
        if !exists {
            conn.execute_batch(&format!("BEGIN; {made} COMMIT;"))?;
        }
    }
    Ok(conn)
}

impl ReadLog for SqliteReadLog {
    fn writer(&self) -> Result<Box<dyn ReadLogWriter>> {
        Ok(Box::new(Writer(open_writer(&self.path)?)))
    }

    fn readers(&self, product: &str, since_day: i64, limit: i64) -> Result<Vec<ReaderSum>> {
        let conn = self.reader()?;
        let mut statement = conn.prepare_cached(&sql::on(sql::READERS, &TABLES))?;
        let rows = statement.query_map(params![product, since_day, limit], |row| {
            Ok(ReaderSum {
                principal: row.get(0)?,
                issuer: row.get(1)?,
                last_ms: row.get(2)?,
                reads: row.get(3)?,
                rows: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn usage(&self, product: &str, since_day: i64) -> Result<Vec<UsageSum>> {
        let conn = self.reader()?;
        let mut statement = conn.prepare_cached(&sql::on(sql::USAGE, &TABLES))?;
        let rows = statement.query_map(params![product, since_day], |row| {
            Ok(UsageSum {
                day: row.get(0)?,
                reason: row.get(1)?,
                reads: row.get(2)?,
                rows: row.get(3)?,
                bytes: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn records(&self, product: &str, since_ms: i64, principal: &str, limit: i64) -> Result<Vec<Vec<u8>>> {
        let conn = self.reader()?;
        let mut statement = conn.prepare(&sql::on(sql::RECORDS, &TABLES))?;
        let rows = statement.query_map(params![product, since_ms, principal, limit], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// The log's one writer connection.
struct Writer(Connection);

impl ReadLogWriter for Writer {
    fn append(&mut self, batch: &[LoggedRead], prune_before_ms: Option<i64>) -> Result<()> {
        let tx = self.0.transaction()?;
        {
            let mut insert = tx.prepare_cached(&sql::on(sql::INSERT, &TABLES))?;
            let mut summarize = tx.prepare_cached(&sql::on(sql::SUMMARIZE, &TABLES))?;
            let mut add_usage = tx.prepare_cached(&sql::on(sql::ADD_USAGE, &TABLES))?;
            for r in batch {
                insert.execute(params![
                    r.product,
                    r.principal,
                    r.issuer,
                    r.start_ms,
                    r.outcome,
                    r.rows,
                    r.record
                ])?;
                let day = r.start_ms.div_euclid(DAY_MS);
                if r.delivered {
                    summarize.execute(params![r.product, day, r.principal, r.issuer, r.rows, r.start_ms])?;
                }
                if let Some(u) = &r.usage {
                    add_usage.execute(params![r.product, day, u.reason, u.reads, u.rows, u.bytes])?;
                }
            }
        }
        if let Some(cutoff) = prune_before_ms {
            tx.execute(&sql::on(sql::PRUNE_READS, &TABLES), [cutoff])?;
            tx.execute(&sql::on(sql::PRUNE_SUMMARY, &TABLES), [cutoff.div_euclid(DAY_MS)])?;
            tx.execute(&sql::on(sql::PRUNE_USAGE, &TABLES), [cutoff.div_euclid(DAY_MS)])?;
        }
        Ok(tx.commit()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_from_before_the_daily_sums_is_summed_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.sqlite");
        let now = crate::store::now_ms();
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
        for _ in 0..2 {
            let log = SqliteReadLog::open(&path).unwrap();
            let readers = log.readers("p.a", 0, 10).unwrap();
            assert_eq!(readers.len(), 1);
            assert_eq!((readers[0].principal.as_str(), readers[0].reads, readers[0].rows), ("old", 1, 7));
            let since = (now - DAY_MS).div_euclid(DAY_MS);
            assert!(log.readers("p.a", since, 10).unwrap().is_empty(), "the old read is older than a day");
            let usage = log.usage("p.a", 0).unwrap();
            assert_eq!(
                usage.iter().map(|u| (u.reason.as_str(), u.reads, u.rows, u.bytes)).collect::<Vec<_>>(),
                [("", 1, 7, 0)],
                "its usage, without the bytes only its record holds"
            );
        }
    }
}
