//! The third floor: a domain's storage, one trait ([`Storage`]) over two
//! backends: the embedded SQLite file (the default: nothing to set up) and
//! PostgreSQL (for data that outgrows one machine, and for replicas of a
//! domain sharing it). Everything a product does with its data goes
//! through here: creating its table, replacing its rows in one transaction,
//! the streamed scan of a compiled query, row counts, load times, quality
//! results, the read log and the secret resume tokens are sealed with.
//! No type of a database crate is seen above this floor.

#[cfg(test)]
mod contract_tests;
pub mod load;
mod postgres;
pub mod read_log;
pub mod scan;
mod sqlite;

use std::path::Path;
use std::sync::Arc;

use indicatif::ProgressBar;
use mesh_contracts::product::QualityResult;

pub use load::{Chunks, LoadPlan, LoadSummary, QualityCheck, Shrink};
pub use mesh_contracts::time::now_ms;
pub use mesh_postgres::DatabaseArgs;
pub use read_log::{LoggedRead, ReadLog, ReadLogWriter, ReaderSum, UsageSum};
pub use scan::{RowSink, Stop, StopCheck, Table};
#[cfg(test)]
pub(crate) use sqlite::test_reader;

use crate::error::Result;
use crate::query::dialect::Dialect;
use crate::query::plan::QueryPlan;
use crate::values::schema::RowSchema;

/// What the last load of a product recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadInfo {
    /// When the load committed, ms since the epoch.
    pub loaded_at_ms: i64,
    /// Rows in the product's table after the load.
    pub row_count: i64,
    /// Where the rows came from (a file path, or `generated …`).
    pub source: String,
    /// The load's id, which a read checks to see that its data did not
    /// change under it.
    pub load: u64,
}

/// What a domain's database does for its products: both backends
/// implement it with these signatures, and the contract suite
/// (`contract_tests.rs`) runs against it on each. Every call blocks.
pub trait Storage {
    /// The SQL dialect statements are written in.
    fn dialect(&self) -> Dialect;
    /// Where the data is: the SQLite file, or the PostgreSQL server and
    /// schema (without credentials).
    fn location(&self) -> String;
    /// Runs `work` (checking whether a load is needed, and loading) while
    /// no other process of the domain on this database does the same for
    /// `product`: replicas starting together load once.
    fn exclusive_load<T>(&self, product: &str, work: impl FnOnce() -> Result<T>) -> Result<T>;
    /// Creates `schema`'s table for `product`, with `indexes`, if it does not exist.
    fn prepare_table(&self, product: &str, schema: &RowSchema, indexes: &[String]) -> Result<()>;
    /// The secret resume tokens are sealed with: made once per database,
    /// so every replica of a domain on one database shares it.
    fn token_secret(&self) -> Result<Vec<u8>>;
    /// What the last load of `product` recorded, if it was ever loaded.
    fn load_info(&self, product: &str) -> Result<Option<LoadInfo>>;
    /// The fingerprint of the source `product` was last loaded from.
    fn fingerprint(&self, product: &str) -> Result<Option<String>>;
    /// The quality results of `product`'s last load.
    fn quality(&self, product: &str) -> Result<Vec<QualityResult>>;
    /// Checks that `table`'s data can still be read now.
    fn probe(&self, table: Table<'_>) -> Result<()>;
    /// How the database will run `plan` over `table`.
    fn explain(&self, table: Table<'_>, plan: &QueryPlan) -> Result<String>;
    /// Runs `check`'s statements of counts over `table`'s current rows.
    fn check_quality(&self, table: Table<'_>, check: &dyn QualityCheck) -> Result<Vec<QualityResult>>;
    /// Runs `plan` over `table`, giving `sink` the load it reads and then
    /// each row, in one consistent snapshot, until the rows end, the sink
    /// wants no more, or `check` says stop.
    fn scan(
        &self,
        table: Table<'_>,
        plan: &QueryPlan,
        sink: &mut impl RowSink,
        check: StopCheck,
    ) -> Result<(), Stop>;
    /// Replaces the rows of the product `load` describes with `chunks` in
    /// one transaction, with its quality results and load record: readers
    /// see the old rows or the new, never a mix.
    fn replace(&self, load: &LoadPlan<'_>, chunks: Chunks, progress: &ProgressBar) -> Result<LoadSummary>;
    /// The read log kept with this storage (`data_dir` holds SQLite's,
    /// apart from the data so that recording never waits behind a load).
    fn read_log(&self, data_dir: &Path) -> Result<Arc<dyn ReadLog>>;
    /// The rows of `relation` (`schema.name`, a table or view another
    /// system keeps in the domain's database) as CSV with a header row, for
    /// a product loaded from it; read as they come, in one snapshot. Only
    /// PostgreSQL holds such relations.
    fn relation_csv(&self, relation: &str) -> Result<Box<dyn std::io::Read + Send>>;
}

/// A domain's database: whichever backend it was opened on.
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

/// Calls the same [`Storage`] method on whichever backend `store` is.
macro_rules! on_backend {
    ($store:expr, $backend:ident => $call:expr) => {
        match &$store.backend {
            Backend::Sqlite($backend) => $call,
            Backend::Postgres($backend) => $call,
        }
    };
}

impl DomainStore {
    /// Opens (creating if needed) the SQLite database at `path`; a
    /// directory it creates is 0700 and the file 0600.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self::with(Backend::Sqlite(sqlite::SqliteStore::open(path)?)))
    }

    /// Connects to the PostgreSQL database `args` names, keeping the
    /// domain's tables in the schema `schema` (the domain's name), and
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

    /// Tells whoever waits in [`DomainStore::loaded`] that a load committed.
    pub fn announce_load(&self) {
        self.loads.notify_one();
    }

    /// Completes after the next (or a missed) [`DomainStore::announce_load`].
    pub async fn loaded(&self) {
        self.loads.notified().await;
    }
}

impl Storage for DomainStore {
    fn dialect(&self) -> Dialect {
        on_backend!(self, store => store.dialect())
    }

    fn location(&self) -> String {
        on_backend!(self, store => store.location())
    }

    fn exclusive_load<T>(&self, product: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
        on_backend!(self, store => store.exclusive_load(product, work))
    }

    fn prepare_table(&self, product: &str, schema: &RowSchema, indexes: &[String]) -> Result<()> {
        on_backend!(self, store => store.prepare_table(product, schema, indexes))
    }

    fn token_secret(&self) -> Result<Vec<u8>> {
        on_backend!(self, store => store.token_secret())
    }

    fn load_info(&self, product: &str) -> Result<Option<LoadInfo>> {
        on_backend!(self, store => store.load_info(product))
    }

    fn fingerprint(&self, product: &str) -> Result<Option<String>> {
        on_backend!(self, store => store.fingerprint(product))
    }

    fn quality(&self, product: &str) -> Result<Vec<QualityResult>> {
        on_backend!(self, store => store.quality(product))
    }

    fn probe(&self, table: Table<'_>) -> Result<()> {
        on_backend!(self, store => store.probe(table))
    }

    fn explain(&self, table: Table<'_>, plan: &QueryPlan) -> Result<String> {
        on_backend!(self, store => store.explain(table, plan))
    }

    fn check_quality(&self, table: Table<'_>, check: &dyn QualityCheck) -> Result<Vec<QualityResult>> {
        on_backend!(self, store => store.check_quality(table, check))
    }

    fn scan(
        &self,
        table: Table<'_>,
        plan: &QueryPlan,
        sink: &mut impl RowSink,
        check: StopCheck,
    ) -> Result<(), Stop> {
        on_backend!(self, store => store.scan(table, plan, sink, check))
    }

    fn replace(&self, load: &LoadPlan<'_>, chunks: Chunks, progress: &ProgressBar) -> Result<LoadSummary> {
        on_backend!(self, store => store.replace(load, chunks, progress))
    }

    fn read_log(&self, data_dir: &Path) -> Result<Arc<dyn ReadLog>> {
        on_backend!(self, store => store.read_log(data_dir))
    }

    fn relation_csv(&self, relation: &str) -> Result<Box<dyn std::io::Read + Send>> {
        on_backend!(self, store => store.relation_csv(relation))
    }
}

/// The read log in the SQLite file at `path` (for a domain serving no
/// product of its own yet).
pub fn sqlite_read_log(path: &Path) -> Result<Arc<dyn ReadLog>> {
    sqlite::read_log::SqliteReadLog::open(path)
}
