//! The catalog's database, one interface over two backends: the SQLite
//! file (the default) and PostgreSQL, where several registry replicas share
//! one catalog. Handlers run their statements through [`sql::Sql`] on
//! tokio's blocking pool, reading ([`Store::read`]) or writing in one
//! transaction ([`Store::write`]).
//!
//! SQLite: one connection in WAL mode with `synchronous = FULL`, so a write
//! the registry has acknowledged survives a crash of the process (and of
//! the machine).

pub mod agreements;
pub mod endpoints;
mod postgres;
pub mod products;
pub mod sql;
pub mod writes;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::clock::Clock;
use crate::error::{RegistryError, Result};
use sql::{Sql, SqliteSql};

/// The schema, applied at open; every statement is idempotent.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS products (
    product_id          TEXT PRIMARY KEY,
    domain              TEXT NOT NULL,
    service             TEXT NOT NULL,
    owner_team          TEXT NOT NULL,
    major_version       INTEGER NOT NULL,
    latest_version      INTEGER NOT NULL,
    entry               BLOB NOT NULL,
    search_text         TEXT NOT NULL,
    data                BLOB,
    deprecation_message TEXT,
    deprecate_time      INTEGER,
    create_time         INTEGER NOT NULL,
    update_time         INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS products_by_domain ON products (domain, product_id);
CREATE TABLE IF NOT EXISTS product_tags (
    product_id TEXT NOT NULL REFERENCES products (product_id) ON DELETE CASCADE,
    tag        TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (product_id, tag)
) STRICT;
CREATE TABLE IF NOT EXISTS schema_versions (
    product_id     TEXT NOT NULL REFERENCES products (product_id) ON DELETE CASCADE,
    version        INTEGER NOT NULL,
    major_version  INTEGER NOT NULL,
    fingerprint    TEXT NOT NULL,
    descriptor_set BLOB NOT NULL,
    changes        TEXT NOT NULL,
    create_time    INTEGER NOT NULL,
    registered_by  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (product_id, version)
) STRICT;
CREATE TABLE IF NOT EXISTS agreements (
    id            INTEGER PRIMARY KEY,
    product_id    TEXT NOT NULL,
    principal     TEXT NOT NULL,
    issuer        TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    columns       TEXT NOT NULL,
    raw_columns   TEXT NOT NULL,
    row_scope     TEXT NOT NULL,
    end_time      INTEGER NOT NULL,
    state         INTEGER NOT NULL,
    create_time   INTEGER NOT NULL,
    update_time   INTEGER NOT NULL,
    decided_by    TEXT NOT NULL,
    decision_note TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS agreements_of_product ON agreements (product_id, state);
CREATE INDEX IF NOT EXISTS agreements_of_principal ON agreements (principal, issuer, product_id);
CREATE TABLE IF NOT EXISTS catalog_writes (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    subject    TEXT NOT NULL,
    action     TEXT NOT NULL,
    product_id TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS endpoints (
    product_id        TEXT NOT NULL REFERENCES products (product_id) ON DELETE CASCADE,
    uri               TEXT NOT NULL,
    register_time     INTEGER NOT NULL,
    renew_time        INTEGER NOT NULL,
    lease_expire_time INTEGER NOT NULL,
    written_by        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (product_id, uri)
) STRICT;
";

/// The catalog database, shared by every request handler.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<Backend>,
    clock: Clock,
}

#[derive(Debug)]
enum Backend {
    Sqlite(Mutex<Connection>),
    Postgres(postgres::PostgresCatalog),
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and applies
    /// the schema; `clock` tells the time.
    pub fn open(path: &Path, clock: Clock) -> Result<Self> {
        mesh_grpc::private_files::create_private_file(path)
            .map_err(|e| RegistryError::Internal(format!("cannot create {}: {e}", path.display())))?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        Ok(Self { backend: Arc::new(Backend::Sqlite(Mutex::new(conn))), clock })
    }

    /// Connects to the PostgreSQL database `args` names (schema `registry`),
    /// applying the catalog's migrations (blocking).
    pub fn connect(args: &mesh_postgres::DatabaseArgs, clock: Clock) -> Result<Self> {
        Ok(Self { backend: Arc::new(Backend::Postgres(postgres::PostgresCatalog::connect(args)?)), clock })
    }

    /// Where the catalog is kept, for the log.
    pub fn location(&self) -> String {
        match &*self.backend {
            Backend::Sqlite(conn) => {
                let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                conn.path().unwrap_or("").to_owned()
            }
            Backend::Postgres(catalog) => catalog.location(),
        }
    }

    /// Runs `work` reading the catalog, on a blocking thread.
    pub async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Sql) -> Result<T> + Send + 'static,
    {
        self.blocking(false, work).await
    }

    /// Runs `work` in one transaction, committed if it succeeds, on a
    /// blocking thread.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Sql) -> Result<T> + Send + 'static,
    {
        self.blocking(true, work).await
    }

    async fn blocking<T, F>(&self, writing: bool, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Sql) -> Result<T> + Send + 'static,
    {
        let (backend, clock) = (Arc::clone(&self.backend), self.clock.clone());
        tokio::task::spawn_blocking(move || match &*backend {
            Backend::Sqlite(conn) => {
                let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if !writing {
                    return work(&mut SqliteSql { conn: &conn, clock: &clock });
                }
                let tx = conn.transaction()?;
                let value = work(&mut SqliteSql { conn: &tx, clock: &clock })?;
                tx.commit()?;
                Ok(value)
            }
            Backend::Postgres(catalog) => catalog.transaction(writing, &clock, work),
        })
        .await
        .map_err(|e| RegistryError::Internal(format!("storage task failed: {e}")))?
    }

    /// Products other replicas changed (`*`: any), as their writes commit;
    /// `None` for a catalog no other process writes.
    pub fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        match &*self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(catalog) => Some(catalog.changes()),
        }
    }

    /// How many writes other replicas made to any product and to `product`
    /// (`None` for a catalog no other process writes): a cached answer read
    /// under other counts is stale.
    pub async fn versions(&self, product: &str) -> Result<Option<(i64, i64)>> {
        match &*self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(catalog) => Ok(Some(catalog.versions(product).await?)),
        }
    }

    /// The secret page tokens are signed with; made once per database.
    pub async fn page_token_secret(&self) -> Result<Vec<u8>> {
        let candidate = mesh_grpc::SealedTokens::new_secret().to_vec();
        self.write(move |db| {
            // The first replica's secret wins; every other reads it.
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('page_token_secret', $1) ON CONFLICT DO NOTHING",
                crate::params![candidate],
            )?;
            db.query_one("SELECT value FROM meta WHERE key = 'page_token_secret'", &[])?.blob(0)
        })
        .await
    }
}

/// Columns added since the first registry: table, column, its definition.
const ADDED_COLUMNS: [(&str, &str, &str); 3] = [
    ("products", "data", "BLOB"),
    ("schema_versions", "registered_by", "TEXT NOT NULL DEFAULT ''"),
    ("endpoints", "written_by", "TEXT NOT NULL DEFAULT ''"),
];

/// Brings a database made by an older registry up to the current schema.
fn migrate(conn: &Connection) -> Result<()> {
    for (table, column, definition) in ADDED_COLUMNS {
        let present: bool = conn.query_row(
            "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |row| row.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {definition}"))?;
        }
    }
    Ok(())
}

pub use mesh_contracts::time::{now_ms, timestamp};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_before_data_status_gains_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE products (product_id TEXT PRIMARY KEY, domain TEXT NOT NULL, service TEXT NOT NULL,
                 owner_team TEXT NOT NULL, major_version INTEGER NOT NULL, latest_version INTEGER NOT NULL,
                 entry BLOB NOT NULL, search_text TEXT NOT NULL, deprecation_message TEXT, deprecate_time INTEGER,
                 create_time INTEGER NOT NULL, update_time INTEGER NOT NULL) STRICT;",
            )
            .unwrap();
        Store::open(&path, Clock::system()).unwrap();
        Store::open(&path, Clock::system()).unwrap();
        let conn = Connection::open(&path).unwrap();
        let columns: i64 = conn
            .query_row("SELECT count(*) FROM pragma_table_info('products') WHERE name = 'data'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(columns, 1);
    }
}
