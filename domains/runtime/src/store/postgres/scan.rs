//! A scan on PostgreSQL: a task on the database's runtime runs the
//! statement in its snapshot and hands rows to the scan thread.

use futures_util::{StreamExt, pin_mut};
use mesh_postgres::tokio_postgres::types::ToSql;
use mesh_postgres::tokio_postgres::{Row, SimpleQueryMessage};
use mesh_postgres::{Database, DbError};
use tokio::sync::mpsc;

use super::values::PgValue;
use super::{CurrentTable, ROWS_PER_HANDOFF, checked};
use crate::plan::QueryPlan;

/// What the database task sends the scan thread.
pub(super) enum Handoff {
    /// The next rows of the snapshot of load `load`; `last` when no more follow.
    Rows { load: u64, rows: Vec<Row>, last: bool },
    /// The statement failed.
    Failed(DbError),
}

/// One scan's work on the database's runtime.
pub(super) struct ScanTask {
    pub(super) db: Database,
    pub(super) product: String,
    pub(super) plan: QueryPlan,
    pub(super) current: CurrentTable,
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
    pub(super) async fn run(self, sender: mpsc::Sender<Handoff>) {
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
