//! Source-aligned domains: a domain that owns one product loaded from a
//! source file (or, with none, from its own synthetic-data generator),
//! checked by quality rules, served and kept registered.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::error::{DomainError, Result};
use crate::ingest::quality::QualityRule;
use crate::ingest::{self, CsvSource, RecordSource, Shrink};
use crate::serve::config::DomainArgs;
use crate::serve::hosting::run_domain;
use crate::serve::product::{Product, ProductSpec};
use crate::serve::service::ProductService;
use crate::store::Storage;

/// Flags of a source-aligned domain; `G` holds the flags of its generator.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs<G: clap::Args> {
    /// Where the domain listens, keeps its data and registers.
    #[command(flatten)]
    pub domain: DomainArgs,

    /// Load this source file (CSV with a header row) instead of generating data.
    #[arg(long, env = "MESH_SOURCE_FILE")]
    pub source: Option<PathBuf>,

    /// How to generate data when there is no source file.
    #[command(flatten)]
    pub generate: G,

    /// Load again even if the database already holds data from the same source.
    #[arg(long, env = "MESH_RELOAD")]
    pub reload: bool,

    /// Accept a load that leaves fewer than half the rows it replaces
    /// (refused by default: a truncated or wrong source is the likelier cause).
    #[arg(long, env = "MESH_ALLOW_SHRINK")]
    pub allow_shrink: bool,
}

/// A source-aligned domain: its product, how to check its data and how to
/// generate data when there is no source file.
pub struct SourceDomain<G> {
    /// The domain's name, e.g. `payment`.
    pub name: &'static str,
    /// Its default port.
    pub port: u16,
    /// Its product.
    pub spec: ProductSpec,
    /// Its data-quality rules beyond uniqueness and non-negative amounts.
    pub rules: fn() -> Vec<QualityRule>,
    /// The records of generated data, for when there is no source file.
    pub generate: fn(&G) -> Box<dyn RecordSource + Send>,
}

impl<G> Clone for SourceDomain<G> {
    fn clone(&self) -> Self {
        Self { spec: self.spec.clone(), ..*self }
    }
}

impl<G> std::fmt::Debug for SourceDomain<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceDomain")
            .field("name", &self.name)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl<G: clap::Args + Clone + Send + Sync + 'static> SourceDomain<G> {
    /// Opens the domain's database and prepares its product.
    pub fn open(&self, args: &SourceArgs<G>) -> Result<Arc<Product>> {
        Product::new(self.spec.clone(), args.domain.open_store(self.name)?)
    }

    /// The quality rules of the product.
    pub fn quality_rules(&self, product: &Product) -> Vec<QualityRule> {
        let mut rules = vec![QualityRule::unique_key(&product.schema)];
        rules.extend(QualityRule::no_negative_amounts(&product.schema));
        rules.extend((self.rules)());
        rules
    }

    /// Loads `product` from `source`, replacing its rows, refused if it
    /// would shrink the product as `shrink` forbids (blocking).
    pub fn load_from(
        &self,
        product: &Product,
        source: &mut (dyn RecordSource + Send),
        shrink: Shrink,
    ) -> Result<ingest::LoadSummary> {
        ingest::load(&product.destination(), source, &self.quality_rules(product), shrink)
    }

    /// Loads the source file or generated data unless the database already
    /// holds rows from a source with the same fingerprint (blocking).
    pub fn ensure_loaded(&self, product: &Product, args: &SourceArgs<G>) -> Result<()> {
        product.store.exclusive_load(&self.spec.id, || self.load_if_needed(product, args))
    }

    fn load_if_needed(&self, product: &Product, args: &SourceArgs<G>) -> Result<()> {
        let mut source: Box<dyn RecordSource + Send> = match &args.source {
            Some(path) => Box::new(CsvSource::open(path)?),
            None => (self.generate)(&args.generate),
        };
        let shrink = if args.allow_shrink { Shrink::Any } else { Shrink::AtMostHalf };
        load_if_changed(product, source.as_mut(), &self.quality_rules(product), shrink, args.reload)?;
        Ok(())
    }

    /// Opens the product and loads it if needed (on a blocking thread).
    pub async fn prepare(&self, args: &SourceArgs<G>) -> Result<Arc<Product>> {
        let product = self.open(args)?;
        let (domain, loading, load_args) = (self.clone(), Arc::clone(&product), args.clone());
        tokio::task::spawn_blocking(move || domain.ensure_loaded(&loading, &load_args))
            .await
            .map_err(|e| DomainError::Internal(format!("the load task failed: {e}")))??;
        Ok(product)
    }

    /// The whole `main` of the domain's binary: reads its command line
    /// (help written for this domain, `version` shown by `--version`),
    /// logs, then runs until SIGINT or SIGTERM.
    pub fn main(&self, version: &'static str) -> Result<()> {
        let matches = self.command(version).get_matches();
        let args =
            <SourceArgs<G> as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        mesh_grpc::init_logging();
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        runtime.block_on(self.run_until_signal(args))
    }

    /// The domain binary's command line: [`SourceArgs`] with help naming
    /// this domain.
    pub fn command(&self, version: &'static str) -> clap::Command {
        let name = self.name;
        let about = format!("The {name} domain of the Woori Card data mesh.");
        let long_about = format!(
            "{about}

With no source file and an empty database it generates the default
synthetic data (deterministic: the same seed gives the same rows).

Callers need a token of a trusted issuer (see --auth-jwks); the domain
calls the registry with its own (--token-file or --issuer-dir).

Examples:
  {name} --auth-jwks .mesh/issuer/jwks.json --auth-issuer mesh-local --issuer-dir .mesh/issuer
  {name} --source EDU_DATA_F.csv --auth-jwks jwks.json --token-file /run/secrets/{name}-token
  {name} --customers 10000 --quarters 2 --data-dir /tmp/{name} --insecure-no-auth"
        );
        let command = <SourceArgs<G> as clap::Args>::augment_args(clap::Command::new(name).version(version));
        command.about(about).long_about(long_about)
    }

    /// What a domain binary does: listen on `--addr` (or the domain's port),
    /// load if needed, serve and register until SIGINT or SIGTERM.
    pub async fn run_until_signal(&self, args: SourceArgs<G>) -> Result<()> {
        let shutdown = mesh_grpc::shutdown_signal();
        mesh_grpc::set_client_tls(args.domain.client_tls.clone());
        let addr = args.domain.addr_or(self.port);
        let listener = mesh_grpc::server::bind(addr).await?;
        self.run(args, listener, shutdown).await
    }

    /// Loads if needed, then serves and registers until `shutdown`.
    pub async fn run(
        &self,
        args: SourceArgs<G>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let product = self.prepare(&args).await?;
        serve_product(product, &args.domain, listener, shutdown).await
    }
}

/// Loads `product` from `source` checked by `rules`, unless it already
/// holds the rows of a source with the same fingerprint and `reload` is
/// false (blocking; call it inside the store's exclusive load). Returns the
/// load's summary, or `None` when nothing changed.
pub fn load_if_changed(
    product: &Product,
    source: &mut (dyn RecordSource + Send),
    rules: &[QualityRule],
    shrink: Shrink,
    reload: bool,
) -> Result<Option<ingest::LoadSummary>> {
    let id = &product.spec.id;
    let fingerprint = source.fingerprint()?;
    // Loads recorded before fingerprints were kept compare by source
    // name: right for generated data, which its name determines.
    let loaded = match product.store.fingerprint(id)? {
        Some(fingerprint) => Some(fingerprint),
        None => product.store.load_info(id)?.map(|l| l.source),
    };
    if !reload && loaded.as_deref() == Some(fingerprint.as_str()) {
        tracing::info!(product = %id, source = %source.describe(), "data already loaded");
        return Ok(None);
    }
    tracing::info!(product = %id, source = %source.describe(), "loading");
    ingest::load(&product.destination(), source, rules, shrink).map(Some)
}

/// Serves `product` (with no extra methods) on `listener` and keeps it
/// registered as `args` say, until `shutdown`.
pub async fn serve_product(
    product: Arc<Product>,
    args: &DomainArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    run_domain(listener, vec![ProductService::new(product, Default::default())], args, shutdown).await
}
