//! A domain's storage, one interface over two backends: the embedded
//! SQLite file (the default: nothing to set up) and PostgreSQL (for data
//! that outgrows one machine, and for replicas of a domain sharing it).
//! Everything a product does with its data goes through here: creating its
//! table, replacing its rows in one transaction, the streamed scan of a
//! compiled query, row counts, load times, quality results and the secret
//! resume tokens are sealed with.

mod dialect;
mod postgres;
mod sorter;
mod sqlite;

use std::path::Path;
use std::sync::Arc;

use indicatif::ProgressBar;
use mesh_contracts::product::QualityResult;

pub use dialect::Dialect;
pub use mesh_contracts::time::now_ms;
pub use mesh_postgres::DatabaseArgs;
#[cfg(test)]
pub(crate) use sqlite::test_reader;

use crate::cell::CellRow;
use crate::error::Result;
use crate::ingest::{LoadPlan, LoadSummary, parse::Chunk};
use crate::plan::QueryPlan;
use crate::quality::RowCounts;
use crate::scan::Stop;
use crate::schema::RowSchema;

/// What the last load of a product recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadInfo {
    /// When the load committed, ms since the epoch.
    pub loaded_at_ms: i64,
    /// Rows in the product's table after the load.
    pub row_count: i64,
    /// Where the rows came from (a file path, or `generated …`).
    pub source: String,
}

/// A domain's database.
#[derive(Debug, Clone)]
pub struct DomainStore {
    backend: Backend,
    loads: Arc<tokio::sync::Notify>,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PostgresStore),
}

/// Where a scan's rows go, and whether it should stop.
pub(crate) trait RowSink {
    /// The identity of the load the scan reads, before its first row.
    fn begin(&mut self, load: u64) -> Result<(), Stop>;
    /// One result row; `Ok(false)` when no more are wanted.
    fn row(&mut self, row: &impl CellRow) -> Result<bool, Stop>;
    /// Why the scan should stop now, if it should.
    fn interrupted(&self) -> Option<Stop>;
}

/// Tells a running statement to stop; checked while the database works.
pub(crate) type StopCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// Rows parsed for a load, in chunks, from the reader thread.
pub(crate) type Chunks = std::sync::mpsc::Receiver<Result<Chunk>>;

impl DomainStore {
    /// Opens (creating if needed) the SQLite database at `path`; a
    /// directory it creates is 0700 and the file 0600.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self::with(Backend::Sqlite(sqlite::SqliteStore::open(path)?)))
    }

    /// Connects to the PostgreSQL database `args` names (blocking), keeping
    /// the domain's tables in the schema `schema` (the domain's name), and
    /// applies the runtime's migrations to it.
    pub fn connect(args: &DatabaseArgs, schema: &str) -> Result<Self> {
        Ok(Self::with(Backend::Postgres(postgres::PostgresStore::connect(args, schema)?)))
    }

    fn with(backend: Backend) -> Self {
        Self { backend, loads: Arc::new(tokio::sync::Notify::new()) }
    }

    /// The same database with `readers` connections for scans (one per
    /// concurrent scan; on PostgreSQL the pool size says).
    pub fn with_readers(self, readers: usize) -> Self {
        match self.backend {
            Backend::Sqlite(store) => Self { backend: Backend::Sqlite(store.with_readers(readers)), ..self },
            Backend::Postgres(_) => self,
        }
    }

    /// The SQL dialect of the backend.
    pub fn dialect(&self) -> Dialect {
        match &self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Where the data is: the SQLite file, or the PostgreSQL server and
    /// schema (without credentials).
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Sqlite(store) => store.path().display().to_string(),
            Backend::Postgres(store) => store.location(),
        }
    }

    /// The PostgreSQL database, when the store is on one.
    pub(crate) fn postgres(&self) -> Option<&mesh_postgres::Database> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(store) => Some(store.database()),
        }
    }

    /// Tells whoever waits in [`DomainStore::loaded`] that a load committed.
    pub fn announce_load(&self) {
        self.loads.notify_one();
    }

    /// Completes after the next (or a missed) [`DomainStore::announce_load`].
    pub async fn loaded(&self) {
        self.loads.notified().await;
    }

    /// Runs `work` (checking whether a load is needed, and loading) while no
    /// other process of the domain on this database does the same for
    /// `product`: replicas starting together load once (blocking).
    pub fn exclusive_load<T>(&self, product: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(store) => store.exclusive_load(work),
            Backend::Postgres(store) => store.exclusive_load(product, work),
        }
    }

    /// Creates `schema`'s table and its indexes if they do not exist (blocking).
    pub fn prepare_table(&self, product: &str, schema: &RowSchema, indexes: &[&str]) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(store) => store.prepare_table(schema, indexes),
            Backend::Postgres(store) => store.prepare_table(product, schema, indexes),
        }
    }

    /// The secret resume tokens are sealed with: made once per database,
    /// so every replica of a domain on one database shares it (blocking).
    pub fn token_secret(&self) -> Result<Vec<u8>> {
        match &self.backend {
            Backend::Sqlite(store) => store.token_secret(),
            Backend::Postgres(store) => store.token_secret(),
        }
    }

    /// What the last load of `product` recorded, if it was ever loaded (blocking).
    pub fn load_info(&self, product: &str) -> Result<Option<LoadInfo>> {
        match &self.backend {
            Backend::Sqlite(store) => store.load_info(product),
            Backend::Postgres(store) => store.load_info(product),
        }
    }

    /// The fingerprint of the source `product` was last loaded from (blocking).
    pub fn fingerprint(&self, product: &str) -> Result<Option<String>> {
        match &self.backend {
            Backend::Sqlite(store) => store.fingerprint(product),
            Backend::Postgres(store) => store.fingerprint(product),
        }
    }

    /// The quality results of `product`'s last load (blocking).
    pub fn quality(&self, product: &str) -> Result<Vec<QualityResult>> {
        match &self.backend {
            Backend::Sqlite(store) => store.quality(product),
            Backend::Postgres(store) => store.quality(product),
        }
    }

    /// Checks that `product`'s data can still be read now (blocking).
    pub fn probe(&self, product: &str, table: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(store) => store.probe(table),
            Backend::Postgres(store) => store.probe(product),
        }
    }

    /// How the database will run `plan` over `product` (blocking).
    pub(crate) fn explain(&self, product: &str, table: &str, plan: &QueryPlan) -> Result<String> {
        match &self.backend {
            Backend::Sqlite(store) => store.explain(table, plan),
            Backend::Postgres(store) => store.explain(product, plan),
        }
    }

    /// Runs `plan` over `product`'s data, giving `sink` the load it reads
    /// and then each row, in one consistent snapshot, until the rows end,
    /// the sink wants no more, or `check` says stop (blocking).
    pub(crate) fn scan(
        &self,
        product: &str,
        table: &str,
        plan: &QueryPlan,
        sink: &mut impl RowSink,
        check: StopCheck,
    ) -> Result<(), Stop> {
        match &self.backend {
            Backend::Sqlite(store) => store.scan(product, table, plan, sink, check),
            Backend::Postgres(store) => store.scan(product, plan, sink, check),
        }
    }

    /// Replaces the rows of the product `load` describes with the chunks
    /// from `chunks` in one transaction, with its quality results and load
    /// record: readers see the old rows or the new, never a mix (blocking).
    pub(crate) fn replace(
        &self,
        load: &LoadPlan<'_>,
        chunks: Chunks,
        row_counts: &std::sync::Mutex<RowCounts>,
        progress: &ProgressBar,
    ) -> Result<LoadSummary> {
        match &self.backend {
            Backend::Sqlite(store) => store.replace(load, chunks, row_counts, progress),
            Backend::Postgres(store) => store.replace(load, chunks, row_counts, progress),
        }
    }
}
