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
pub mod events;
mod migrations;
mod postgres;
pub mod products;
pub mod sql;
pub mod subscriptions;
pub mod writes;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::clock::Clock;
use crate::error::{RegistryError, Result};
use sql::{Sql, SqliteSql};

/// The catalog database, shared by every request handler.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<Backend>,
    clock: Clock,
    /// Counts the write transactions committed (here, or on another
    /// replica once it announces an event), for readers of the event log.
    written: Arc<tokio::sync::watch::Sender<u64>>,
    /// SQLite's one connection: calls running a statement and waiting.
    sqlite_use: Arc<ConnectionUse>,
}

/// Calls holding SQLite's connection, and calls waiting for it.
#[derive(Debug, Default)]
struct ConnectionUse {
    in_use: std::sync::atomic::AtomicI64,
    waiting: std::sync::atomic::AtomicI64,
}

impl ConnectionUse {
    /// Waits for `conn`, counted as waiting, then as in use until the
    /// second value is dropped.
    fn acquire<'a>(
        &'a self,
        conn: &'a Mutex<Connection>,
    ) -> (std::sync::MutexGuard<'a, Connection>, InUse<'a>) {
        use std::sync::atomic::Ordering::Relaxed;
        self.waiting.fetch_add(1, Relaxed);
        let conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.waiting.fetch_sub(1, Relaxed);
        self.in_use.fetch_add(1, Relaxed);
        (conn, InUse(self))
    }
}

/// Counts a connection in use until dropped.
struct InUse<'a>(&'a ConnectionUse);

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        self.0.in_use.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[derive(Debug)]
enum Backend {
    Sqlite(Mutex<Connection>),
    Postgres(postgres::PostgresCatalog),
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and applies
    /// the migrations it has not had; `clock` tells the time.
    pub fn open(path: &Path, clock: Clock) -> Result<Self> {
        mesh_grpc::private_files::create_private_file(path)
            .map_err(|e| RegistryError::Internal(format!("cannot create {}: {e}", path.display())))?;
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations::apply_sqlite(&mut conn)?;
        Ok(Self::over(Backend::Sqlite(Mutex::new(conn)), clock))
    }

    fn over(backend: Backend, clock: Clock) -> Self {
        Self {
            backend: Arc::new(backend),
            clock,
            written: Arc::new(tokio::sync::watch::Sender::new(0)),
            sqlite_use: Arc::default(),
        }
    }

    /// Connects to the PostgreSQL database `args` names (schema `registry`),
    /// applying the catalog's migrations (blocking).
    pub fn connect(args: &mesh_postgres::DatabaseArgs, clock: Clock) -> Result<Self> {
        let catalog = postgres::PostgresCatalog::connect(args)?;
        let mut appended = catalog.events_appended();
        let store = Self::over(Backend::Postgres(catalog), clock);
        let written = Arc::clone(&store.written);
        tokio::spawn(async move {
            // Another replica's events (or a lost notification connection).
            while !matches!(appended.recv().await, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                written.send_modify(|n| *n += 1);
            }
        });
        Ok(store)
    }

    /// Changes each time a write commits here, or another replica
    /// announces an event: the event log may have grown.
    pub fn writes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.written.subscribe()
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
        let written = Arc::clone(&self.written);
        let usage = Arc::clone(&self.sqlite_use);
        let outcome = tokio::task::spawn_blocking(move || match &*backend {
            Backend::Sqlite(conn) => {
                let (mut conn, _in_use) = usage.acquire(conn);
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
        .map_err(|e| {
            // Cancelled: the runtime is shutting down under the call.
            if e.is_cancelled() {
                RegistryError::ShuttingDown
            } else {
                RegistryError::Internal(format!("storage task failed: {e}"))
            }
        })?;
        if writing && outcome.is_ok() {
            written.send_modify(|n| *n += 1);
        }
        outcome
    }

    /// Connections running a statement now, and calls waiting for one.
    pub fn connections(&self) -> (i64, i64) {
        use std::sync::atomic::Ordering::Relaxed;
        match &*self.backend {
            Backend::Sqlite(_) => {
                (self.sqlite_use.in_use.load(Relaxed), self.sqlite_use.waiting.load(Relaxed))
            }
            Backend::Postgres(catalog) => catalog.connections(),
        }
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
