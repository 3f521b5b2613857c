//! The PostgreSQL backend. Each load writes a new table
//! (`<table>_<load id>`) by `COPY ... FROM STDIN (FORMAT binary)`, builds
//! its indexes and checks its quality, and swaps it in by updating the one
//! row of `mesh_tables` that names the current table, all in one
//! transaction: readers see the old rows or the new, never a mix, and a
//! load killed half-way leaves nothing behind. A scan reads which table is
//! current and its rows in one repeatable-read snapshot, streamed through
//! the binary protocol with bounded memory; it is cancelled on the server
//! as soon as the client goes, stalls, runs out of budget or the domain
//! shuts down. The resume-token secret lives in the database, so replicas
//! of a domain on one database honour each other's tokens.

mod load;
pub(super) mod read_log;
mod relation;
mod scan;
mod values;

use std::time::Duration;

use futures_util::StreamExt;
use indicatif::ProgressBar;
use mesh_contracts::product::QualityResult;
use mesh_postgres::tokio_postgres::types::ToSql;
use mesh_postgres::{Database, DatabaseArgs, DbError, Migration};

use std::path::Path;
use std::sync::Arc;

use super::{
    Chunks, LoadInfo, LoadPlan, LoadSummary, QualityCheck, ReadLog, RowSink, Stop, StopCheck, Storage, Table,
};
use crate::error::{DomainError, Result};
use crate::query::dialect::Dialect;
use crate::query::plan::QueryPlan;
use crate::values::schema::RowSchema;
use load::{counts, drop_table, replace_rows};
use scan::Scan;

/// The runtime's migrations, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_bookkeeping.sql",
        sql: std::borrow::Cow::Borrowed(include_str!("../../../migrations/postgres/0001_bookkeeping.sql")),
    },
    Migration {
        version: 2,
        name: "0002_reads.sql",
        sql: std::borrow::Cow::Borrowed(include_str!("../../../migrations/postgres/0002_reads.sql")),
    },
    Migration {
        version: 3,
        name: "0003_reads_by_day.sql",
        sql: std::borrow::Cow::Borrowed(include_str!("../../../migrations/postgres/0003_reads_by_day.sql")),
    },
    Migration {
        version: 4,
        name: "0004_usage_by_day.sql",
        sql: std::borrow::Cow::Borrowed(include_str!("../../../migrations/postgres/0004_usage_by_day.sql")),
    },
];

/// Rows read from the server between looks for a reason to stop.
const ROWS_PER_BATCH: usize = 512;
/// How often a scan waiting on the database checks for a reason to stop.
const CHECK_EVERY: Duration = Duration::from_millis(10);
/// How long the health probe waits for the database.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long dropping a replaced table waits for scans still reading it.
const DROP_WAIT: &str = "2s";

/// A domain's schema on a PostgreSQL server.
#[derive(Debug, Clone)]
pub(crate) struct PostgresStore {
    db: Database,
    /// The current table as a scan last found it: the next scan asks for
    /// its rows in the same round trip as it opens its snapshot, and asks
    /// again if a load has swapped the table since.
    current: CurrentTable,
}

/// The name of the table a scan last found current, shared with the scan tasks.
type CurrentTable = std::sync::Arc<std::sync::Mutex<Option<String>>>;

impl PostgresStore {
    pub(crate) fn connect(args: &DatabaseArgs, schema: &str) -> Result<Self> {
        Ok(Self { db: Database::connect(args, schema, MIGRATIONS)?, current: Default::default() })
    }
}

impl Storage for PostgresStore {
    fn location(&self) -> String {
        format!("postgres {} (schema {})", self.db.location(), self.db.schema())
    }

    /// Runs `work` holding a session advisory lock for loading `product`
    /// (released by the server if this process dies).
    fn exclusive_load<T>(&self, product: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let key = format!("load:{product}");
        let locked = {
            let key = key.clone();
            self.db.run(move |pool| async move {
                let client = pool.get().await?;
                // Another replica's load may take minutes.
                client.batch_execute("SET statement_timeout = 0").await?;
                client.execute("SELECT pg_advisory_lock(hashtext($1))", &[&key]).await?;
                Ok::<_, DbError>(client)
            })?
        };
        let result = work();
        self.db.run(move |_| async move {
            let unlocked = locked.execute("SELECT pg_advisory_unlock(hashtext($1))", &[&key]).await;
            let reset = locked.batch_execute("RESET statement_timeout").await;
            if unlocked.is_err() || reset.is_err() {
                // Leave nothing behind on a connection in an unknown state.
                let _ = mesh_postgres::Connection::take(locked);
            }
        });
        result
    }

    /// Makes an empty current table for a product never loaded.
    fn prepare_table(&self, product: &str, schema: &RowSchema, indexes: &[String]) -> Result<()> {
        let (product, base) = (product.to_owned(), schema.table.clone());
        let empty = data_table(&base, 0);
        let ddl = format!(
            "{}\n{}",
            Dialect::Postgres.create_table(schema, &empty),
            schema.indexes_sql(&empty, indexes)
        );
        self.db.run(move |pool| async move {
            let mut client = pool.get().await?;
            let transaction = client.transaction().await?;
            transaction.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&product]).await?;
            let current =
                transaction.query_opt("SELECT 1 FROM mesh_tables WHERE product = $1", &[&product]).await?;
            if current.is_none() {
                transaction.batch_execute(&ddl).await?;
                transaction
                    .execute(
                        "INSERT INTO mesh_tables (product, data_table, load_id) VALUES ($1, $2, 0)",
                        &[&product, &empty],
                    )
                    .await?;
            }
            transaction.commit().await?;
            Ok::<_, DbError>(())
        })?;
        Ok(())
    }

    fn token_secret(&self) -> Result<Vec<u8>> {
        let candidate = mesh_grpc::SealedTokens::new_secret().to_vec();
        Ok(self.db.run(move |pool| async move {
            let client = pool.get().await?;
            // The first replica's secret wins; every other reads it.
            client
                .execute(
                    "INSERT INTO mesh_meta (key, value) VALUES ('resume_token_secret', $1) ON CONFLICT DO NOTHING",
                    &[&candidate],
                )
                .await?;
            let row = client.query_one("SELECT value FROM mesh_meta WHERE key = 'resume_token_secret'", &[]).await?;
            Ok::<Vec<u8>, DbError>(row.get(0))
        })?)
    }

    fn load_info(&self, product: &str) -> Result<Option<LoadInfo>> {
        let product = product.to_owned();
        Ok(self.db.run(move |pool| async move {
            let client = pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT l.loaded_at, l.row_count, l.source, coalesce(t.load_id, 0) FROM mesh_loads l
                     LEFT JOIN mesh_tables t ON t.product = l.product WHERE l.product = $1",
                    &[&product],
                )
                .await?;
            Ok::<_, DbError>(row.map(|r| LoadInfo {
                loaded_at_ms: r.get(0),
                row_count: r.get(1),
                source: r.get(2),
                load: r.get::<_, i64>(3) as u64,
            }))
        })?)
    }

    fn fingerprint(&self, product: &str) -> Result<Option<String>> {
        let key = format!("source:{product}");
        Ok(self.db.run(move |pool| async move {
            let client = pool.get().await?;
            let row = client.query_opt("SELECT value FROM mesh_meta WHERE key = $1", &[&key]).await?;
            Ok::<_, DbError>(row.map(|r| String::from_utf8_lossy(r.get::<_, &[u8]>(0)).into_owned()))
        })?)
    }

    fn quality(&self, product: &str) -> Result<Vec<QualityResult>> {
        let product = product.to_owned();
        Ok(self.db.run(move |pool| async move {
            let client = pool.get().await?;
            let rows = client
                .query(
                    "SELECT rule, description, failed_rows, checked_rows FROM mesh_quality
                     WHERE product = $1 ORDER BY position",
                    &[&product],
                )
                .await?;
            Ok::<_, DbError>(
                rows.iter()
                    .map(|r| {
                        let failed: i64 = r.get(2);
                        QualityResult {
                            rule: r.get(0),
                            description: r.get(1),
                            passed: failed == 0,
                            failed_rows: failed,
                            checked_rows: r.get(3),
                        }
                    })
                    .collect(),
            )
        })?)
    }

    /// The server answers for the product's current table within a few seconds.
    fn probe(&self, table: Table<'_>) -> Result<()> {
        let product = table.product.to_owned();
        let probed = self.db.run(move |pool| async move {
            tokio::time::timeout(PROBE_TIMEOUT, async {
                let client = pool.get().await?;
                let table: String = client
                    .query_one("SELECT data_table FROM mesh_tables WHERE product = $1", &[&product])
                    .await?
                    .get(0);
                client.query_opt(&format!("SELECT 1 FROM {} LIMIT 1", checked(&table)?), &[]).await?;
                Ok::<_, DbError>(())
            })
            .await
        });
        match probed {
            Ok(result) => Ok(result?),
            Err(_) => Err(DomainError::Unavailable(format!(
                "the database did not answer within {} s",
                PROBE_TIMEOUT.as_secs()
            ))),
        }
    }

    /// PostgreSQL's `EXPLAIN` of `plan` over the product's current table.
    fn explain(&self, table: Table<'_>, plan: &QueryPlan) -> Result<String> {
        let (product, plan) = (table.product.to_owned(), plan.clone());
        Ok(self.db.run(move |pool| async move {
            let client = pool.get().await?;
            let table: String = client
                .query_one("SELECT data_table FROM mesh_tables WHERE product = $1", &[&product])
                .await?
                .get(0);
            let params = plan.params.iter();
            let rows = client
                .query_raw(&format!("EXPLAIN {}", plan.sql(&table)), params.clone().map(|p| p as &dyn ToSql))
                .await?
                .map(|row| row.map(|r| r.get::<_, String>(0)))
                .collect::<Vec<_>>()
                .await;
            Ok::<_, DbError>(rows.into_iter().collect::<Result<Vec<_>, _>>()?.join("\n"))
        })?)
    }

    /// Streams `plan`'s rows to `sink`: a task on the database's runtime
    /// runs the statement and hands rows over in small batches through a
    /// bounded channel; this (blocking) thread encodes them.
    fn scan(
        &self,
        table: Table<'_>,
        plan: &QueryPlan,
        sink: &mut impl RowSink,
        check: StopCheck,
    ) -> Result<(), Stop> {
        Scan { db: &self.db, product: table.product, plan, current: &self.current }.run(sink, &check)
    }

    /// Writes the rows into a new table and swaps it in: one transaction.
    fn replace(&self, load: &LoadPlan<'_>, chunks: Chunks, progress: &ProgressBar) -> Result<LoadSummary> {
        // On a thread of its own, outside any runtime, so that a caller in
        // an async context may load too.
        let handle = self.db.handle();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let (summary, replaced) =
                        handle.block_on(replace_rows(&self.db, load, chunks, progress))?;
                    if let Some(old) = replaced {
                        handle.block_on(drop_table(&self.db, old));
                    }
                    Ok(summary)
                })
                .join()
                .map_err(|_| DomainError::Internal("the load's thread panicked".into()))?
        })
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    /// Runs the statements in one snapshot, over the product's current table.
    fn check_quality(&self, table: Table<'_>, check: &dyn QualityCheck) -> Result<Vec<QualityResult>> {
        let product = table.product.to_owned();
        let current = self.db.run(move |pool| async move {
            let client = pool.get().await?;
            let row = client
                .query_one("SELECT data_table FROM mesh_tables WHERE product = $1", &[&product])
                .await?;
            Ok::<String, DbError>(row.get(0))
        })?;
        let statements = check.statements(checked(&current)?);
        let answers = self.db.run(move |pool| async move {
            let mut client = pool.get().await?;
            let transaction = client.build_transaction().read_only(true).start().await?;
            Ok::<_, DbError>(counts(&transaction, &statements).await?)
        })?;
        Ok(check.results(&answers))
    }

    fn read_log(&self, _data_dir: &Path) -> Result<Arc<dyn ReadLog>> {
        Ok(Arc::new(read_log::PostgresReadLog::new(self.db.clone())))
    }

    fn relation_csv(&self, relation: &str) -> Result<Box<dyn std::io::Read + Send>> {
        relation::csv(&self.db, relation)
    }
}

/// The table holding the rows of load `load_id` of `base`.
fn data_table(base: &str, load_id: u64) -> String {
    format!("{base}_{load_id:016x}")
}

/// `name` if it is a plain identifier (it is written into SQL).
fn checked(name: &str) -> Result<&str, DbError> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        Ok(name)
    } else {
        Err(DbError::Config(format!("`{name}` is not a table name the runtime made")))
    }
}
