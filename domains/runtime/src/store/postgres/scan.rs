//! A scan on PostgreSQL, driven from the scan thread itself: the statement
//! runs in its snapshot on a pooled connection and its rows are read a batch
//! at a time by blocking on the database's runtime (no task or channel in
//! between), looking for a reason to stop while the server works.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use mesh_postgres::tokio_postgres::types::ToSql;
use mesh_postgres::tokio_postgres::{Row, SimpleQueryMessage};
use mesh_postgres::{Connection, Database, DbError};

use super::{CHECK_EVERY, CurrentTable, ROWS_PER_BATCH, checked};
use crate::error::DomainError;
use crate::query::plan::QueryPlan;
use crate::store::Stop;
use crate::store::{RowSink, StopCheck};

/// One scan.
pub(super) struct Scan<'a> {
    pub(super) db: &'a Database,
    pub(super) product: &'a str,
    pub(super) plan: &'a QueryPlan,
    pub(super) current: &'a CurrentTable,
}

/// Why an attempt at a scan ended early.
enum Early {
    /// The table asked for ahead was no longer current: try again.
    Stale,
    /// The scan stopped.
    Stop(Stop),
}

impl From<Stop> for Early {
    fn from(stop: Stop) -> Self {
        Self::Stop(stop)
    }
}

type Rows<'c> = Pin<Box<dyn Stream<Item = Result<Row, mesh_postgres::tokio_postgres::Error>> + Send + 'c>>;

impl Scan<'_> {
    /// Gives `sink` the load read and then each row, until the rows end,
    /// the sink wants no more, or `check` says stop.
    pub(super) fn run(&self, sink: &mut impl RowSink, check: &StopCheck) -> Result<(), Stop> {
        let known = self.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match self.attempt(known, sink, check) {
            Ok(()) => Ok(()),
            Err(Early::Stop(stop)) => Err(stop),
            Err(Early::Stale) => match self.attempt(None, sink, check) {
                Ok(()) => Ok(()),
                Err(Early::Stop(stop)) => Err(stop),
                Err(Early::Stale) => {
                    Err(Stop::Failed(DomainError::Internal("the current table kept changing".into())))
                }
            },
        }
    }

    /// One attempt, asking for the rows of `known` ahead if given.
    fn attempt(
        &self,
        known: Option<String>,
        sink: &mut impl RowSink,
        check: &StopCheck,
    ) -> Result<(), Early> {
        let handle = self.db.handle();
        let failed = |error: DbError| Early::Stop(Stop::Failed(error.into()));
        let client = handle.block_on(self.db.pool().get()).map_err(|e| failed(e.into()))?;
        let cancel = client.cancel_token();
        let outcome = {
            // The server answers the first rows (or, for a sort or a filter
            // that matches little, the end) only when it has them: wait
            // looking for a reason to stop.
            let opened = self.wait(self.open(&client, known), sink, check);
            match opened {
                Ok(Ok(Some((table, load, rows)))) => {
                    *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(table);
                    Ok(self.read(rows, load, sink, check))
                }
                // The rows asked for ahead were of a replaced table.
                Ok(Ok(None)) => Err(Early::Stale),
                Ok(Err(error)) => Err(failed(error)),
                Err(stop) => Err(Early::Stop(stop)),
            }
        };
        let read = match outcome {
            Ok(read) => read,
            Err(early) => {
                let db = self.db.clone();
                handle.spawn(async move { db.cancel(cancel).await });
                let _ = Connection::take(client);
                return Err(early);
            }
        };
        match read {
            Ok(true) => {
                // Every row was read: end the snapshot off the reader's path.
                handle.spawn(async move {
                    if client.batch_execute("COMMIT").await.is_err() {
                        let _ = Connection::take(client);
                    }
                });
                Ok(())
            }
            Ok(false) | Err(_) => {
                // Stopped early: the statement may still run on the server;
                // the connection may be inside the transaction.
                let db = self.db.clone();
                handle.spawn(async move { db.cancel(cancel).await });
                let _ = Connection::take(client);
                read.map(|_| ()).map_err(Early::Stop)
            }
        }
    }

    /// Waits for `work` on the database's runtime, looking every
    /// [`CHECK_EVERY`] for a reason to stop.
    fn wait<F: std::future::Future>(
        &self,
        work: F,
        sink: &impl RowSink,
        check: &StopCheck,
    ) -> Result<F::Output, Stop> {
        let mut work = Box::pin(work);
        loop {
            match self.db.handle().block_on(tokio::time::timeout(CHECK_EVERY, &mut work)) {
                Ok(done) => return Ok(done),
                Err(_) if check() => return Err(sink.interrupted().unwrap_or(Stop::ClientGone)),
                Err(_) => continue,
            }
        }
    }

    /// Opens the snapshot and asks for the rows: in one round trip when the
    /// table last found current is `known` (`None` if it no longer is).
    async fn open<'c>(
        &self,
        client: &'c Connection,
        known: Option<String>,
    ) -> Result<Option<(String, u64, Rows<'c>)>, DbError> {
        let params = self.plan.params.iter();
        let open = open_snapshot(self.product);
        match known {
            Some(table) => {
                let sql = self.plan.sql(checked(&table)?);
                let (opened, rows) = tokio::join!(client.simple_query(&open), async {
                    let statement = client.prepare_cached(&sql).await?;
                    client.query_raw(&statement, params.clone().map(|p| p as &dyn ToSql)).await
                });
                let (current, load) = current_of(self.product, &opened?)?;
                match rows {
                    Ok(rows) if current == table => Ok(Some((current, load, Box::pin(rows)))),
                    _ => Ok(None),
                }
            }
            None => {
                let opened = client.simple_query(&open).await?;
                let (table, load) = current_of(self.product, &opened)?;
                let statement = client.prepare_cached(&self.plan.sql(checked(&table)?)).await?;
                let rows = client.query_raw(&statement, params.clone().map(|p| p as &dyn ToSql)).await?;
                Ok(Some((table, load, Box::pin(rows))))
            }
        }
    }

    /// Feeds the rows to `sink` a batch at a time; true when every row was
    /// read from the server, false when the sink wanted no more first.
    fn read(
        &self,
        mut rows: Rows<'_>,
        load: u64,
        sink: &mut impl RowSink,
        check: &StopCheck,
    ) -> Result<bool, Stop> {
        sink.begin(load)?;
        let handle = self.db.handle();
        let mut batch: Vec<Row> = Vec::with_capacity(ROWS_PER_BATCH);
        loop {
            let step = handle.block_on(tokio::time::timeout(CHECK_EVERY, async {
                while batch.len() < ROWS_PER_BATCH {
                    match rows.next().await {
                        Some(row) => batch.push(row?),
                        None => return Ok(true),
                    }
                }
                Ok::<bool, mesh_postgres::tokio_postgres::Error>(false)
            }));
            let ended = match step {
                Err(_) if check() => return Err(sink.interrupted().unwrap_or(Stop::ClientGone)),
                Err(_) => false,
                Ok(Err(error)) => {
                    let error = DbError::from(error);
                    return Err(if check() || error.is_cancelled() {
                        sink.interrupted().unwrap_or(Stop::Failed(error.into()))
                    } else {
                        Stop::Failed(error.into())
                    });
                }
                Ok(Ok(ended)) => ended,
            };
            // A reason to stop found between batches stops the scan, as
            // SQLite's progress handler does between steps.
            if check() {
                return Err(sink.interrupted().unwrap_or(Stop::ClientGone));
            }
            for row in batch.drain(..) {
                if !sink.row(&row)? {
                    return Ok(ended);
                }
            }
            if ended {
                return Ok(true);
            }
        }
    }
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
