//! What the source-aligned domains (customer, payment) share: each owns a
//! vertical slice of the customer-spending file, loads it from the real file
//! or generates it, and serves it.

use std::path::PathBuf;
use std::sync::Arc;

use mesh_domain_runtime::hosting::run_domain;
use mesh_domain_runtime::ingest::{self, CsvSource, RecordSource};
use mesh_domain_runtime::quality::QualityRule;
use mesh_domain_runtime::{
    DomainArgs, DomainError, DomainStore, Product, ProductService, ProductSpec, Result,
};
use tokio::net::TcpListener;

use crate::generator::{DEFAULT_CUSTOMERS, DEFAULT_QUARTERS, DEFAULT_SEED, Generator};

/// Flags of a source-aligned domain.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    #[command(flatten)]
    pub domain: DomainArgs,

    /// Load this customer-spending file (the real extract, or one written by
    /// `mesh generate`) instead of generating data.
    #[arg(long, env = "MESH_SOURCE_FILE")]
    pub source: Option<PathBuf>,

    /// Customers to generate when there is no source file.
    #[arg(long, env = "MESH_CUSTOMERS", default_value_t = DEFAULT_CUSTOMERS)]
    pub customers: u64,

    /// Quarters to generate (from 2024Q1) when there is no source file.
    #[arg(long, env = "MESH_QUARTERS", default_value_t = DEFAULT_QUARTERS)]
    pub quarters: u32,

    /// Seed of the generated data: the same seed gives the same rows.
    #[arg(long, env = "MESH_SEED", default_value_t = DEFAULT_SEED)]
    pub seed: u64,

    /// Load again even if the database already holds data from the same source.
    #[arg(long, env = "MESH_RELOAD")]
    pub reload: bool,
}

/// A source-aligned domain: its product and how to check its data.
#[derive(Debug, Clone, Copy)]
pub struct SourceDomain {
    /// The domain's name, e.g. `payment`.
    pub name: &'static str,
    /// Its default port.
    pub port: u16,
    /// Its product.
    pub spec: ProductSpec,
    /// Its data-quality rules beyond uniqueness and non-negative amounts.
    pub rules: fn() -> Vec<QualityRule>,
}

impl SourceDomain {
    /// Opens the domain's database and prepares its product.
    pub fn open(&self, args: &SourceArgs) -> Result<Arc<Product>> {
        let db = args.domain.data_dir_or(self.name).join(format!("{}.sqlite", self.name));
        Product::new(self.spec, DomainStore::open(&db)?)
    }

    /// The quality rules of the product.
    pub fn quality_rules(&self, product: &Product) -> Vec<QualityRule> {
        let mut rules = vec![QualityRule::unique_key(&product.schema)];
        rules.extend(QualityRule::no_negative_amounts(&product.schema));
        rules.extend((self.rules)());
        rules
    }

    /// Loads `product` from `source`, replacing its rows (blocking).
    pub fn load_from(
        &self,
        product: &Product,
        source: &mut (dyn RecordSource + Send),
    ) -> Result<ingest::LoadSummary> {
        let rules = self.quality_rules(product);
        ingest::load(&product.store, self.spec.id, &product.schema, self.spec.indexes, source, &rules)
    }

    /// Loads the source file or generated data unless the database already
    /// holds rows from that same source (blocking).
    pub fn ensure_loaded(&self, product: &Product, args: &SourceArgs) -> Result<()> {
        let mut source: Box<dyn RecordSource + Send> = match &args.source {
            Some(path) => Box::new(CsvSource::open(path)?),
            None => Box::new(
                Generator { seed: args.seed, customers: args.customers, quarters: args.quarters }.source(),
            ),
        };
        let loaded = product.store.load_info(self.spec.id)?;
        if !args.reload && loaded.as_ref().is_some_and(|l| l.source == source.describe()) {
            tracing::info!(product = self.spec.id, source = %source.describe(), "data already loaded");
            return Ok(());
        }
        tracing::info!(product = self.spec.id, source = %source.describe(), "loading");
        self.load_from(product, source.as_mut())?;
        Ok(())
    }

    /// What a domain binary does: listen on `--addr` (or the domain's port),
    /// load if needed, serve and register until SIGINT or SIGTERM.
    pub async fn run_until_signal(&self, args: SourceArgs) -> Result<()> {
        let addr = args.domain.addr_or(self.port);
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            DomainError::Io(std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
        })?;
        self.run(args, listener, mesh_domain_runtime::hosting::shutdown_signal()).await
    }

    /// Loads if needed, then serves and registers until `shutdown`.
    pub async fn run(
        &self,
        args: SourceArgs,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let product = self.open(&args)?;
        let domain = *self;
        let (loading, load_args) = (Arc::clone(&product), args.clone());
        tokio::task::spawn_blocking(move || domain.ensure_loaded(&loading, &load_args))
            .await
            .map_err(|e| DomainError::Internal(e.to_string()))??;
        let advertise = args.domain.advertise(listener.local_addr()?);
        let service = ProductService::new(product, Default::default());
        run_domain(listener, vec![service], args.domain.registry.clone(), advertise, shutdown).await
    }
}
