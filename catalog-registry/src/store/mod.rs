//! The registry's SQLite database: opening, schema, and the blocking bridge.
//!
//! One connection, opened in WAL mode with `synchronous = FULL`, so a write
//! the registry has acknowledged survives a crash of the process (and of the
//! machine). Queries run on tokio's blocking pool.

pub mod agreements;
pub mod endpoints;
pub mod products;
pub mod writes;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension};

use crate::error::{RegistryError, Result};

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
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies the schema.
    pub fn open(path: &Path) -> Result<Self> {
        mesh_grpc::private_files::create_private_file(path)
            .map_err(|e| RegistryError::Internal(format!("cannot create {}: {e}", path.display())))?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `work` on the connection on a blocking thread.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut conn)
        })
        .await
        .map_err(|e| RegistryError::Internal(format!("storage task failed: {e}")))?
    }

    /// The secret page tokens are signed with; made once per database.
    pub async fn page_token_secret(&self) -> Result<Vec<u8>> {
        self.run(|conn| {
            let existing: Option<Vec<u8>> = conn
                .query_row("SELECT value FROM meta WHERE key = 'page_token_secret'", [], |row| row.get(0))
                .optional()?;
            if let Some(secret) = existing {
                return Ok(secret);
            }
            let secret = mesh_grpc::SealedTokens::new_secret();
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('page_token_secret', ?1)",
                [secret.as_slice()],
            )?;
            Ok(secret.to_vec())
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
        Store::open(&path).unwrap();
        Store::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        let columns: i64 = conn
            .query_row("SELECT count(*) FROM pragma_table_info('products') WHERE name = 'data'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(columns, 1);
    }
}
