//! The mesh under test: the registry and the three domains in this process,
//! on ephemeral ports, over data kept between runs in the bench's data folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use catalog_registry::RegistryConfig;
use mesh_domain_runtime::hosting::run_domain;
use mesh_domain_runtime::{DomainArgs, Product, ProductService};
use tokio::net::TcpListener;
use woori_data::source_domain::{SourceArgs, SourceDomain};

/// The running mesh.
pub struct Mesh {
    pub registry: String,
    pub payment_url: String,
    pub customer_url: String,
    pub payment: Arc<Product>,
    pub insight: Arc<Product>,
}

async fn listener() -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Args of a source domain over `data` with the given scale.
pub fn source_args(
    data: &Path,
    name: &str,
    addr: SocketAddr,
    registry: &str,
    customers: u64,
    quarters: u32,
) -> SourceArgs {
    SourceArgs {
        domain: DomainArgs {
            addr: Some(addr),
            data_dir: Some(data.join(name)),
            registry: registry.to_owned(),
            advertise_url: None,
        },
        source: None,
        customers,
        quarters,
        seed: woori_data::generator::DEFAULT_SEED,
        reload: false,
    }
}

async fn start_source(domain: SourceDomain, args: SourceArgs, listener: TcpListener) -> Result<Arc<Product>> {
    let product = domain.open(&args)?;
    let loading = Arc::clone(&product);
    let load_args = args.clone();
    tokio::task::spawn_blocking(move || domain.ensure_loaded(&loading, &load_args)).await??;
    let advertise = args.domain.advertise(listener.local_addr()?);
    let service = ProductService::new(Arc::clone(&product), Default::default());
    tokio::spawn(run_domain(
        listener,
        vec![service],
        args.domain.registry.clone(),
        advertise,
        std::future::pending(),
    ));
    Ok(product)
}

impl Mesh {
    /// Starts everything over `data` (generating it on first use).
    pub async fn start(data: &Path, customers: u64, quarters: u32) -> Result<Self> {
        let (registry_listener, registry_addr) = listener().await?;
        let registry = format!("http://{registry_addr}");
        let config = RegistryConfig {
            addr: registry_addr,
            data_dir: data.join("registry"),
            db: Some(data.join("registry").join(format!("registry-{}.sqlite", std::process::id()))),
            lease_ttl: Duration::from_secs(60),
        };
        tokio::spawn(async move {
            catalog_registry::serve(&config, registry_listener, std::future::pending()).await
        });

        let (customer_listener, customer_addr) = listener().await?;
        let (payment_listener, payment_addr) = listener().await?;
        let customer_args = source_args(data, "customer", customer_addr, &registry, customers, quarters);
        let payment_args = source_args(data, "payment", payment_addr, &registry, customers, quarters);
        let (_customer, payment) = tokio::try_join!(
            start_source(customer::DOMAIN, customer_args, customer_listener),
            start_source(payment::DOMAIN, payment_args, payment_listener)
        )?;

        let (insight_listener, insight_addr) = listener().await?;
        let insight_args = insight::InsightArgs {
            domain: DomainArgs {
                addr: Some(insight_addr),
                data_dir: Some(data.join("insight")),
                registry: registry.clone(),
                advertise_url: None,
            },
            min_customers: 5,
        };
        let insight = insight::open(&insight_args)?;
        let service = insight::service(Arc::clone(&insight), registry.clone(), 5);
        let insight_url = format!("http://{insight_addr}");
        tokio::spawn(run_domain(
            insight_listener,
            vec![service],
            registry.clone(),
            insight_url.clone(),
            std::future::pending(),
        ));
        // Let the domains register before anyone looks them up.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Mesh {
            registry,
            payment_url: format!("http://{payment_addr}"),
            customer_url: format!("http://{customer_addr}"),
            payment,
            insight,
        })
    }
}

/// A release binary of the workspace next to this one.
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name(name);
    anyhow::ensure!(path.exists(), "{} is missing: run `cargo build --release --bins` first", path.display());
    Ok(path)
}
