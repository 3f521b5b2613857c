//! The catalog on PostgreSQL, shared by registry replicas: each handler's
//! statements run in one transaction on a pooled connection (blocking, on
//! tokio's blocking pool), the time is the database's, registrations of one
//! product are serialized by an advisory lock, and every write counts itself
//! in `catalog_changes` and notifies the other replicas (`NOTIFY
//! mesh_catalog`), so they drop cached answers as it commits, and check the
//! counts before answering from their cache.

use std::error::Error as StdError;

use bytes::BytesMut;
use mesh_postgres::tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use mesh_postgres::{Database, DatabaseArgs, DbError};

use super::sql::{Backend, Row, Sql, Value};
use crate::clock::Clock;
use crate::error::{RegistryError, Result};

/// The channel writes are announced on.
const CHANNEL: &str = "mesh_catalog";

/// The catalog's schema on a PostgreSQL server.
#[derive(Debug)]
pub(super) struct PostgresCatalog {
    db: Database,
    changes: tokio::sync::broadcast::Sender<String>,
    appended: tokio::sync::broadcast::Sender<String>,
}

impl PostgresCatalog {
    pub(super) fn connect(args: &DatabaseArgs) -> Result<Self> {
        let db = Database::connect(args, "registry", &super::migrations::for_postgres())?;
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        db.listen(CHANNEL, changes.clone(), "*");
        let (appended, _) = tokio::sync::broadcast::channel(16);
        db.listen(super::events::CHANNEL, appended.clone(), "");
        Ok(Self { db, changes, appended })
    }

    /// Pooled connections in use now, and calls waiting for one.
    pub(super) fn connections(&self) -> (i64, i64) {
        let status = self.db.pool().status();
        ((status.size - status.available) as i64, status.waiting as i64)
    }

    /// Announcements of events appended by any replica.
    pub(super) fn events_appended(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.appended.subscribe()
    }

    pub(super) fn location(&self) -> String {
        format!("postgres {} (schema {})", self.db.location(), self.db.schema())
    }

    pub(super) fn changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// How many writes changed any product (`*`) and `product`, now.
    pub(super) async fn versions(&self, product: &str) -> Result<(i64, i64)> {
        let client = self.db.pool().get().await.map_err(DbError::from)?;
        let statement = client
            .prepare_cached(
                "SELECT coalesce(max(version) FILTER (WHERE product = '*'), 0),
                        coalesce(max(version) FILTER (WHERE product = $1), 0)
                 FROM catalog_changes WHERE product IN ('*', $1)",
            )
            .await
            .map_err(DbError::from)?;
        let row = client.query_one(&statement, &[&product]).await.map_err(DbError::from)?;
        Ok((row.get(0), row.get(1)))
    }

    /// Runs `work` in one transaction (read-only unless `writing`),
    /// committed if it succeeds (blocking).
    pub(super) fn transaction<T>(
        &self,
        writing: bool,
        clock: &Clock,
        work: impl FnOnce(&mut dyn Sql) -> Result<T>,
    ) -> Result<T> {
        let handle = self.db.handle().clone();
        let mut client = handle.block_on(self.db.pool().get()).map_err(DbError::from)?;
        let transaction =
            handle.block_on(client.build_transaction().read_only(!writing).start()).map_err(DbError::from)?;
        let value = work(&mut PostgresSql { transaction: &transaction, handle: &handle, clock })?;
        handle.block_on(transaction.commit()).map_err(DbError::from)?;
        Ok(value)
    }
}

/// Statements of one transaction, run from a blocking thread.
struct PostgresSql<'a> {
    transaction: &'a mesh_postgres::deadpool_postgres::Transaction<'a>,
    handle: &'a tokio::runtime::Handle,
    clock: &'a Clock,
}

impl Sql for PostgresSql<'_> {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let transaction = self.transaction;
        self.handle
            .block_on(async {
                let statement = transaction.prepare_cached(sql).await?;
                transaction.execute_raw(&statement, params.iter().map(|p| p as &dyn ToSql)).await
            })
            .map_err(|e| DbError::from(e).into())
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let transaction = self.transaction;
        let rows = self
            .handle
            .block_on(async {
                let statement = transaction.prepare_cached(sql).await?;
                transaction
                    .query(&statement, &params.iter().map(|p| p as &(dyn ToSql + Sync)).collect::<Vec<_>>())
                    .await
            })
            .map_err(DbError::from)?;
        rows.iter().map(row).collect()
    }

    fn now_ms(&mut self) -> Result<i64> {
        if self.clock.is_manual() {
            return Ok(self.clock.now_ms());
        }
        self.query_one("SELECT CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS BIGINT)", &[])?
            .int(0)
    }

    fn lock(&mut self, key: &str) -> Result<()> {
        self.query("SELECT pg_advisory_xact_lock(hashtext($1))", crate::params![key])?;
        Ok(())
    }

    fn changed(&mut self, product: &str) -> Result<()> {
        self.execute(
            "INSERT INTO catalog_changes (product, version) VALUES ($1, 1)
             ON CONFLICT (product) DO UPDATE SET version = catalog_changes.version + 1",
            crate::params![product],
        )?;
        self.query("SELECT pg_notify($1, $2)", crate::params![CHANNEL, product])?;
        Ok(())
    }
}

/// A result row as owned values.
fn row(row: &mesh_postgres::tokio_postgres::Row) -> Result<Row> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let value = match *ty {
            Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map_or(Value::Null, Value::Int)),
            Type::INT4 => {
                row.try_get::<_, Option<i32>>(i).map(|v| v.map_or(Value::Null, |n| Value::Int(n.into())))
            }
            Type::INT2 => {
                row.try_get::<_, Option<i16>>(i).map(|v| v.map_or(Value::Null, |n| Value::Int(n.into())))
            }
            Type::BOOL => {
                row.try_get::<_, Option<bool>>(i).map(|v| v.map_or(Value::Null, |b| Value::Int(b.into())))
            }
            Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i).map(|v| v.map_or(Value::Null, Value::Blob)),
            Type::VOID => Ok(Value::Null),
            _ => row.try_get::<_, Option<String>>(i).map(|v| v.map_or(Value::Null, Value::Text)),
        };
        values.push(value.map_err(|e| RegistryError::from(DbError::from(e)))?);
    }
    Ok(Row(values))
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(n) => match *ty {
                Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
                Type::BOOL => (*n != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => n.to_string().to_sql(ty, out),
                _ => n.to_sql(ty, out),
            },
            Value::Text(text) => text.to_sql(ty, out),
            Value::Blob(bytes) => bytes.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::BOOL
                | Type::TEXT
                | Type::VARCHAR
                | Type::BYTEA
                | Type::UNKNOWN
        )
    }

    to_sql_checked!();
}
