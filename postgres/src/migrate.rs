//! Versioned SQL migrations: each service lists its SQL files in order;
//! those not yet applied to its schema are applied, each in a transaction
//! of its own, under an advisory lock so that replicas starting together
//! apply each once.

use crate::error::{DbError, Result};

/// One migration: its number (1, 2, ...), file name and SQL.
#[derive(Debug, Clone)]
pub struct Migration {
    /// Its place in the order; applied migrations are recorded by it.
    pub version: u32,
    /// The SQL file it comes from.
    pub name: &'static str,
    /// The statements (written for PostgreSQL from a file shared with
    /// another dialect, when owned).
    pub sql: std::borrow::Cow<'static, str>,
}

/// Takes, until the transaction ends, the lock of the schema named `$1`.
const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext($1))";

/// Applies `migrations` (in order of version) not yet applied to `schema`.
pub(crate) async fn apply(
    pool: &deadpool_postgres::Pool,
    schema: &str,
    migrations: &[Migration],
) -> Result<()> {
    let mut client = pool.get().await?;
    // Replicas starting together take turns under a lock named by the
    // schema: creating the schema or the table of applied migrations at the
    // same moment collides (a duplicate type or key), even with IF NOT EXISTS.
    let setup = client.transaction().await?;
    setup.execute(LOCK, &[&schema]).await?;
    // The schema is a checked identifier (see `check_schema_name`).
    setup.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await?;
    setup
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS mesh_schema_migrations (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .await?;
    setup.commit().await?;
    for migration in migrations {
        let transaction = client.transaction().await?;
        transaction.execute(LOCK, &[&schema]).await?;
        let applied = transaction
            .query_opt(
                "SELECT 1 FROM mesh_schema_migrations WHERE version = $1",
                &[&(migration.version as i32)],
            )
            .await?
            .is_some();
        if applied {
            continue;
        }
        let failed = |source| DbError::Migration { version: migration.version, name: migration.name, source };
        transaction.batch_execute(&migration.sql).await.map_err(failed)?;
        transaction
            .execute(
                "INSERT INTO mesh_schema_migrations (version, name) VALUES ($1, $2)",
                &[&(migration.version as i32), &migration.name],
            )
            .await?;
        transaction.commit().await?;
        tracing::info!(schema, version = migration.version, name = migration.name, "migration applied");
    }
    Ok(())
}
