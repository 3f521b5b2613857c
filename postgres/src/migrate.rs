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

/// Applies `migrations` (in order of version) not yet applied to `schema`.
pub(crate) async fn apply(
    pool: &deadpool_postgres::Pool,
    schema: &str,
    migrations: &[Migration],
) -> Result<()> {
    let mut client = pool.get().await?;
    // The schema is a checked identifier (see `check_schema_name`).
    client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await.or_else(|error| {
        // Replicas creating the schema at the same moment may collide.
        if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            Ok(())
        } else {
            Err(error)
        }
    })?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS mesh_schema_migrations (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .await
        .or_else(|error| {
            if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                Ok(())
            } else {
                Err(error)
            }
        })?;
    for migration in migrations {
        let transaction = client.transaction().await?;
        transaction.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()))", &[]).await?;
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
