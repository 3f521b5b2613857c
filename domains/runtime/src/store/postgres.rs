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

use std::error::Error as StdError;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt, pin_mut};
use indicatif::ProgressBar;
use mesh_contracts::product::QualityResult;
use mesh_postgres::tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use mesh_postgres::tokio_postgres::{Row, SimpleQueryMessage};
use mesh_postgres::{Database, DatabaseArgs, DbError, Migration};
use rusqlite::types::Value;
use tokio::sync::mpsc;

use super::{Chunks, Dialect, LoadInfo, RowSink, StopCheck, now_ms};
use crate::encode::{Cell, CellRow};
use crate::error::{DomainError, Result};
use crate::ingest::parse::Field;
use crate::ingest::{LoadPlan, LoadSummary, Phases};
use crate::plan::QueryPlan;
use crate::quality::{self, RowCounts};
use crate::scan::Stop;
use crate::schema::{ColumnKind, RowSchema};

/// The runtime's migrations, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_bookkeeping.sql",
        sql: include_str!("../../migrations/postgres/0001_bookkeeping.sql"),
    },
    Migration {
        version: 2,
        name: "0002_reads.sql",
        sql: include_str!("../../migrations/postgres/0002_reads.sql"),
    },
];

/// Rows handed from the database task to the scan thread at a time.
const ROWS_PER_HANDOFF: usize = 512;
/// Handoffs buffered ahead of the scan thread.
const HANDOFFS_AHEAD: usize = 4;
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

/// The table a scan last found current (name, load id), shared with the tasks.
type CurrentTable = std::sync::Arc<std::sync::Mutex<Option<String>>>;

/// What the database task sends the scan thread.
enum Handoff {
    /// The next rows of the snapshot of load `load`; `last` when no more follow.
    Rows { load: u64, rows: Vec<Row>, last: bool },
    /// The statement failed.
    Failed(DbError),
}

impl PostgresStore {
    pub(crate) fn connect(args: &DatabaseArgs, schema: &str) -> Result<Self> {
        Ok(Self { db: Database::connect(args, schema, MIGRATIONS)?, current: Default::default() })
    }

    /// The database, for the read log kept beside the products.
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    pub(crate) fn location(&self) -> String {
        format!("postgres {} (schema {})", self.db.location(), self.db.schema())
    }

    /// Runs `work` holding a session advisory lock for loading `product`
    /// (released by the server if this process dies).
    pub(crate) fn exclusive_load<T>(&self, product: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
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
    pub(crate) fn prepare_table(&self, product: &str, schema: &RowSchema, indexes: &[&str]) -> Result<()> {
        let (product, base) = (product.to_owned(), schema.table.clone());
        let empty = data_table(&base, 0);
        let ddl = format!(
            "{}\n{}",
            schema.table_sql(Dialect::Postgres, &empty),
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

    pub(crate) fn token_secret(&self) -> Result<Vec<u8>> {
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

    pub(crate) fn load_info(&self, product: &str) -> Result<Option<LoadInfo>> {
        let product = product.to_owned();
        Ok(self.db.run(move |pool| async move {
            let client = pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT loaded_at, row_count, source FROM mesh_loads WHERE product = $1",
                    &[&product],
                )
                .await?;
            Ok::<_, DbError>(row.map(|r| LoadInfo {
                loaded_at_ms: r.get(0),
                row_count: r.get(1),
                source: r.get(2),
            }))
        })?)
    }

    pub(crate) fn fingerprint(&self, product: &str) -> Result<Option<String>> {
        let key = format!("source:{product}");
        Ok(self.db.run(move |pool| async move {
            let client = pool.get().await?;
            let row = client.query_opt("SELECT value FROM mesh_meta WHERE key = $1", &[&key]).await?;
            Ok::<_, DbError>(row.map(|r| String::from_utf8_lossy(r.get::<_, &[u8]>(0)).into_owned()))
        })?)
    }

    pub(crate) fn quality(&self, product: &str) -> Result<Vec<QualityResult>> {
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
    pub(crate) fn probe(&self, product: &str) -> Result<()> {
        let product = product.to_owned();
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
    pub(crate) fn explain(&self, product: &str, plan: &QueryPlan) -> Result<String> {
        let (product, plan) = (product.to_owned(), plan.clone());
        Ok(self.db.run(move |pool| async move {
            let client = pool.get().await?;
            let table: String = client
                .query_one("SELECT data_table FROM mesh_tables WHERE product = $1", &[&product])
                .await?
                .get(0);
            let params: Vec<PgValue<'_>> = plan.params.iter().map(PgValue).collect();
            let rows = client
                .query_raw(&format!("EXPLAIN {}", plan.sql(&table)), params.iter().map(|p| p as &dyn ToSql))
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
    pub(crate) fn scan(
        &self,
        product: &str,
        plan: &QueryPlan,
        sink: &mut impl RowSink,
        check: StopCheck,
    ) -> Result<(), Stop> {
        let (sender, mut receiver) = mpsc::channel(HANDOFFS_AHEAD);
        let scan = ScanTask {
            db: self.db.clone(),
            product: product.to_owned(),
            plan: plan.clone(),
            current: std::sync::Arc::clone(&self.current),
        };
        let task = self.db.handle().spawn(scan.run(sender));
        let mut begun = false;
        let outcome = (|| loop {
            let next = self.db.handle().block_on(tokio::time::timeout(CHECK_EVERY, receiver.recv()));
            let handoff = match next {
                Err(_) if check() => return Err(sink.interrupted().unwrap_or(Stop::ClientGone)),
                Err(_) => continue,
                Ok(handoff) => handoff,
            };
            match handoff {
                Some(Handoff::Rows { load, rows, last }) => {
                    if !begun {
                        sink.begin(load)?;
                        begun = true;
                    }
                    for row in &rows {
                        if !sink.row(row)? {
                            return Ok(());
                        }
                    }
                    if last {
                        return Ok(());
                    }
                }
                Some(Handoff::Failed(error)) if check() || error.is_cancelled() => {
                    return Err(sink.interrupted().unwrap_or(Stop::Failed(error.into())));
                }
                Some(Handoff::Failed(error)) => return Err(Stop::Failed(error.into())),
                None => {
                    return Err(Stop::Failed(DomainError::Internal(
                        "the database scan ended unexpectedly".into(),
                    )));
                }
            }
        })();
        // Closing the channel tells the task to cancel the statement if it still runs.
        drop(receiver);
        drop(task);
        outcome
    }

    /// Writes the rows into a new table and swaps it in: one transaction.
    pub(crate) fn replace(
        &self,
        load: &LoadPlan<'_>,
        chunks: Chunks,
        row_counts: &std::sync::Mutex<RowCounts>,
        progress: &ProgressBar,
    ) -> Result<LoadSummary> {
        // On a thread of its own, outside any runtime, so that a caller in
        // an async context may load too.
        let handle = self.db.handle();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let (summary, replaced) =
                        handle.block_on(replace_rows(&self.db, load, chunks, row_counts, progress))?;
                    if let Some(old) = replaced {
                        handle.block_on(drop_table(&self.db, old));
                    }
                    Ok(summary)
                })
                .join()
                .map_err(|_| DomainError::Internal("the load's thread panicked".into()))?
        })
    }
}

/// One scan's work on the database's runtime.
struct ScanTask {
    db: Database,
    product: String,
    plan: QueryPlan,
    current: CurrentTable,
}

/// Opens a scan's snapshot: read-only repeatable read, no statement timeout
/// (the scan's own watch bounds it: budget, client, shutdown), and which
/// table is current. The product id is the domain's own, not a caller's.
fn open_snapshot(product: &str) -> String {
    format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = 0; \
         SELECT data_table, load_id FROM mesh_tables WHERE product = '{}'",
        product.replace('\'', "''")
    )
}

/// The current table and load from the answer to [`open_snapshot`].
fn current_of(product: &str, opened: &[SimpleQueryMessage]) -> Result<(String, u64), DbError> {
    opened
        .iter()
        .find_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some((row.get(0)?.to_owned(), row.get(1)?.parse::<u64>().ok()?)),
            _ => None,
        })
        .ok_or_else(|| DbError::Config(format!("{product} has no current table; restart the domain")))
}

impl ScanTask {
    /// Runs the scan's statement in its snapshot and hands its rows over;
    /// cancels it on the server when the scan thread stops listening.
    async fn run(self, sender: mpsc::Sender<Handoff>) {
        let client = match self.db.pool().get().await {
            Ok(client) => client,
            Err(error) => {
                let _ = sender.send(Handoff::Failed(error.into())).await;
                return;
            }
        };
        let cancel = client.cancel_token();
        let finished = tokio::select! {
            finished = self.stream(&client, &sender) => finished,
            _ = sender.closed() => Ok(Streamed::Abandoned),
        };
        match finished {
            Ok(Streamed::Complete) => {
                // After the rows are out: the reader does not wait for it.
                if client.batch_execute("COMMIT").await.is_err() {
                    let _ = mesh_postgres::Connection::take(client);
                }
            }
            Ok(Streamed::Abandoned) => {
                // Stopped early: the statement may still run on the server.
                self.db.cancel(cancel).await;
                let _ = mesh_postgres::Connection::take(client);
            }
            Ok(Streamed::Stale) => {
                // The rows asked for ahead were of a replaced table: this
                // connection is still busy with them; start afresh.
                let _ = mesh_postgres::Connection::take(client);
                Box::pin(self.retry(sender)).await;
            }
            Err(error) => {
                let _ = sender.send(Handoff::Failed(error)).await;
                // The connection may be inside the transaction: never reuse it.
                let _ = mesh_postgres::Connection::take(client);
            }
        }
    }

    /// Runs again after the table changed, without asking ahead.
    async fn retry(self, sender: mpsc::Sender<Handoff>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Box::pin(self.run(sender)).await;
    }

    /// Opens the snapshot and streams the rows: in one round trip when the
    /// current table is known, asking for its rows ahead of knowing it is
    /// still current.
    async fn stream(
        &self,
        client: &mesh_postgres::Connection,
        sender: &mpsc::Sender<Handoff>,
    ) -> Result<Streamed, DbError> {
        let params: Vec<PgValue<'_>> = self.plan.params.iter().map(PgValue).collect();
        let known = self.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (table, load, rows) = match known {
            Some(table) => {
                let (sql, open) = (self.plan.sql(checked(&table)?), open_snapshot(&self.product));
                let (opened, rows) = tokio::join!(client.simple_query(&open), async {
                    let statement = client.prepare_cached(&sql).await?;
                    client.query_raw(&statement, params.iter().map(|p| p as &dyn ToSql)).await
                });
                let (current, load) = current_of(&self.product, &opened?)?;
                if current != table || rows.is_err() {
                    return Ok(Streamed::Stale);
                }
                (current, load, rows?)
            }
            None => {
                let opened = client.simple_query(&open_snapshot(&self.product)).await?;
                let (table, load) = current_of(&self.product, &opened)?;
                let statement = client.prepare_cached(&self.plan.sql(checked(&table)?)).await?;
                let rows = client.query_raw(&statement, params.iter().map(|p| p as &dyn ToSql)).await?;
                (table, load, rows)
            }
        };
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(table);
        pin_mut!(rows);
        let mut batch = Vec::with_capacity(ROWS_PER_HANDOFF);
        while let Some(row) = rows.next().await {
            batch.push(row?);
            if batch.len() == ROWS_PER_HANDOFF {
                let rows = std::mem::replace(&mut batch, Vec::with_capacity(ROWS_PER_HANDOFF));
                if sender.send(Handoff::Rows { load, rows, last: false }).await.is_err() {
                    return Ok(Streamed::Abandoned);
                }
            }
        }
        // Every row is read: the statement is done, whether or not the
        // reader still wants the last ones (a page reads one more).
        let _ = sender.send(Handoff::Rows { load, rows: batch, last: true }).await;
        Ok(Streamed::Complete)
    }
}

/// How a scan's statement ended.
enum Streamed {
    /// Every row was read from the server.
    Complete,
    /// The reader stopped listening before; the statement may still run.
    Abandoned,
    /// The table asked ahead is no longer current.
    Stale,
}

/// The load's transaction: a new table by binary COPY, its indexes and
/// statistics, quality, and the bookkeeping that makes it current. Returns
/// the table it replaced.
async fn replace_rows(
    db: &Database,
    load: &LoadPlan<'_>,
    chunks: Chunks,
    row_counts: &std::sync::Mutex<RowCounts>,
    progress: &ProgressBar,
) -> Result<(LoadSummary, Option<String>)> {
    let schema = load.schema;
    let mut phases = Phases::start();
    let mut client = db.pool().get().await.map_err(DbError::from)?;
    let transaction = client.transaction().await.map_err(DbError::from)?;
    // No statement timeout for a load; memory enough to sort its indexes.
    transaction
        .batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL maintenance_work_mem = '256MB'")
        .await
        .map_err(DbError::from)?;
    // One load of a product at a time, whichever replica runs it.
    transaction
        .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&load.product])
        .await
        .map_err(DbError::from)?;
    let before: i64 = transaction
        .query_opt("SELECT row_count FROM mesh_loads WHERE product = $1", &[&load.product])
        .await
        .map_err(DbError::from)?
        .map_or(0, |r| r.get(0));
    let previous: Option<String> = transaction
        .query_opt("SELECT data_table FROM mesh_tables WHERE product = $1", &[&load.product])
        .await
        .map_err(DbError::from)?
        .map(|r| r.get(0));
    let load_id = rand::random::<u64>() >> 1;
    let table = data_table(&schema.table, load_id);
    let create = schema.table_sql(Dialect::Postgres, &table);
    let (create_table, key_index) = create.split_once('\n').unwrap_or((&create, ""));
    transaction.batch_execute(create_table).await.map_err(DbError::from)?;

    let mut columns: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    columns.push("rowid");
    let sink = transaction
        .copy_in(&format!("COPY {table} ({}) FROM STDIN (FORMAT binary)", columns.join(", ")))
        .await
        .map_err(DbError::from)?;
    pin_mut!(sink);
    let kinds: Vec<ColumnKind> = schema.columns.iter().map(|c| c.kind).collect();
    let mut copy = BytesMut::with_capacity(1 << 20);
    copy.extend_from_slice(COPY_HEADER);
    let mut rows = 0i64;
    for chunk in chunks {
        let chunk = chunk?;
        for row in chunk.rows(kinds.len()) {
            rows += 1;
            copy_row(&mut copy, &kinds, row, rows);
        }
        // One CopyData message per chunk of parsed rows.
        sink.send(copy.split().freeze()).await.map_err(DbError::from)?;
        progress.set_position(rows as u64);
    }
    copy.extend_from_slice(&(-1i16).to_be_bytes());
    sink.send(copy.split().freeze()).await.map_err(DbError::from)?;
    sink.finish().await.map_err(DbError::from)?;
    phases.end("copy");
    load.check_shrink(before, rows)?;
    transaction
        .batch_execute(&format!(
            "{key_index}\n{}\nANALYZE {table};",
            schema.indexes_sql(&table, load.indexes)
        ))
        .await
        .map_err(DbError::from)?;
    phases.end("index");
    let statements = {
        let counted = row_counts.lock().unwrap_or_else(|p| p.into_inner());
        quality::count_statements(schema, &table, load.rules, Some(&counted))
    };
    let mut answers = Vec::with_capacity(statements.len());
    for sql in &statements {
        let row = transaction.query_one(sql, &[]).await.map_err(DbError::from)?;
        answers.push((0..row.len()).map(|i| row.get::<_, i64>(i)).collect::<Vec<i64>>());
    }
    let quality = {
        let counted = row_counts.lock().unwrap_or_else(|p| p.into_inner());
        quality::results(load.rules, Some(&counted), &answers)
    };
    phases.end("quality");
    record_load(&transaction, load, rows, &quality, &table, load_id).await.map_err(DbError::from)?;
    transaction.commit().await.map_err(DbError::from)?;
    phases.end("commit");
    tracing::debug!(product = load.product, rows, phases = %phases, "load phases");
    Ok((LoadSummary { rows, quality }, previous.filter(|old| *old != table)))
}

/// Records the load, its quality and its source, and makes `table` current.
async fn record_load(
    transaction: &mesh_postgres::tokio_postgres::Transaction<'_>,
    load: &LoadPlan<'_>,
    rows: i64,
    quality: &[QualityResult],
    table: &str,
    load_id: u64,
) -> Result<(), mesh_postgres::tokio_postgres::Error> {
    let product = load.product;
    transaction
        .execute(
            "INSERT INTO mesh_loads (product, loaded_at, row_count, source) VALUES ($1, $2, $3, $4)
             ON CONFLICT (product) DO UPDATE SET loaded_at = $2, row_count = $3, source = $4",
            &[&product, &now_ms(), &rows, &load.source],
        )
        .await?;
    transaction.execute("DELETE FROM mesh_quality WHERE product = $1", &[&product]).await?;
    for (position, result) in quality.iter().enumerate() {
        transaction
            .execute(
                "INSERT INTO mesh_quality (product, rule, description, failed_rows, checked_rows, position)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &product,
                    &result.rule,
                    &result.description,
                    &result.failed_rows,
                    &result.checked_rows,
                    &(position as i32),
                ],
            )
            .await?;
    }
    transaction
        .execute(
            "INSERT INTO mesh_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2",
            &[&format!("source:{product}"), &load.fingerprint.as_bytes()],
        )
        .await?;
    transaction
        .execute(
            "INSERT INTO mesh_tables (product, data_table, load_id) VALUES ($1, $2, $3)
             ON CONFLICT (product) DO UPDATE SET data_table = $2, load_id = $3",
            &[&product, &table, &(load_id as i64)],
        )
        .await?;
    Ok(())
}

/// Drops a table a load replaced, waiting a little for scans still reading
/// it; a table still in use stays, and the next load drops it.
async fn drop_table(db: &Database, table: String) {
    let dropped = async {
        let mut client = db.pool().get().await?;
        let transaction = client.transaction().await?;
        transaction.batch_execute(&format!("SET LOCAL lock_timeout = '{DROP_WAIT}'")).await?;
        // Every table of the product but the current one.
        let base = table.rsplit_once('_').map_or(table.as_str(), |(base, _)| base).to_owned();
        let leftovers = transaction
            .query(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
                 AND tablename LIKE $1 ESCAPE '\\' AND tablename NOT IN (SELECT data_table FROM mesh_tables)",
                &[&format!("{}\\_%", base.replace('_', "\\_"))],
            )
            .await?;
        for row in leftovers {
            let name: String = row.get(0);
            transaction.batch_execute(&format!("DROP TABLE IF EXISTS {}", checked(&name)?)).await?;
        }
        transaction.commit().await?;
        Ok::<_, DbError>(())
    };
    if let Err(error) = dropped.await {
        tracing::info!(%error, table, "a replaced table stays until the next load (scans still read it)");
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

/// The header of PostgreSQL's binary COPY format: signature, flags, no extension.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Appends one tuple in binary COPY format: the field count, then each
/// field as its length and big-endian bytes, then the load's row number.
fn copy_row<'a>(out: &mut BytesMut, kinds: &[ColumnKind], row: impl Iterator<Item = Field<'a>>, rowid: i64) {
    out.put_i16(kinds.len() as i16 + 1);
    for (kind, field) in kinds.iter().zip(row) {
        match (kind, field) {
            (ColumnKind::Real, Field::Integer(n)) => put_f64(out, n as f64),
            (_, Field::Real(x)) => put_f64(out, x),
            (_, Field::Integer(n)) => put_i64(out, n),
            (_, Field::Text(text)) => {
                out.put_i32(text.len() as i32);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    put_i64(out, rowid);
}

fn put_i64(out: &mut BytesMut, n: i64) {
    out.put_i32(8);
    out.put_i64(n);
}

fn put_f64(out: &mut BytesMut, x: f64) {
    out.put_i32(8);
    out.put_f64(x);
}

/// A value bound to a compiled query.
#[derive(Debug)]
struct PgValue<'a>(&'a Value);

impl ToSql for PgValue<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(n) => n.to_sql(ty, out),
            Value::Real(x) => x.to_sql(ty, out),
            Value::Text(text) => text.to_sql(ty, out),
            Value::Blob(bytes) => bytes.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT8 | Type::FLOAT8 | Type::TEXT | Type::BYTEA)
    }

    to_sql_checked!();
}

/// One cell of a result row, read from its binary form.
struct RawCell<'a>(Cell<'a>);

impl<'a> FromSql<'a> for RawCell<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Self(match *ty {
            Type::INT8 => Cell::Integer(i64::from_be_bytes(raw.try_into()?)),
            Type::INT4 => Cell::Integer(i64::from(i32::from_be_bytes(raw.try_into()?))),
            Type::FLOAT8 => Cell::Real(f64::from_be_bytes(raw.try_into()?)),
            _ => Cell::Text(raw),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Self(Cell::Null))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT8 | Type::INT4 | Type::FLOAT8 | Type::TEXT)
    }
}

impl CellRow for Row {
    fn cell(&self, index: usize) -> Result<Cell<'_>> {
        self.try_get::<_, RawCell<'_>>(index)
            .map(|cell| cell.0)
            .map_err(|e| DomainError::Database(DbError::Postgres(e)))
    }
}
