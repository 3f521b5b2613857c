//! The whole generic domain server: every product file declared and
//! checked (all mistakes reported at once), the domain's store opened,
//! sources loaded (a file when its content changed), derived products built
//! once their inputs serve, and everything served and kept registered.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use mesh_product_file::{Declared, Mistakes};
use mesh_runtime::hosting::run_domain;
use mesh_runtime::{DomainError, ProductService, Result};
use tokio::net::TcpListener;

use crate::args::{DEFAULT_PORT, ServeArgs};
use crate::derived::Inputs;
use crate::load::load_source_async;
use crate::published::Published;
use crate::refresh::{Origin, Refresher};

/// What `mesh-domain` and `mesh domain serve` do: listen on `--addr` (or
/// port 50060 on loopback), then [`run`] until SIGINT or SIGTERM.
pub async fn run_until_signal(args: ServeArgs) -> Result<()> {
    let shutdown = mesh_grpc::shutdown_signal();
    mesh_grpc::set_client_tls(args.domain.client_tls.clone());
    let listener = mesh_grpc::server::bind(args.domain.addr_or(DEFAULT_PORT)).await?;
    run(args, listener, shutdown).await
}

/// Declares, opens and loads the products of `args`, then serves them on
/// `listener` and keeps them registered until `shutdown`.
pub async fn run(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    prepare(args).await?.serve(listener, shutdown).await
}

/// A domain's products declared, opened and loaded from their files: ready
/// to serve (derived products are built once serving).
pub struct Prepared {
    args: ServeArgs,
    domain: String,
    published: Vec<Arc<Published>>,
}

/// Declares every product file of `args` (all mistakes reported at once),
/// opens the domain's store and loads the file sources whose content is
/// not loaded yet.
pub async fn prepare(args: ServeArgs) -> Result<Prepared> {
    let declared = declare_all(&args.products)?;
    let domain = one_domain(&declared)?;
    let opening = (args.domain.clone(), domain.clone());
    let store = tokio::task::spawn_blocking(move || opening.0.open_store(&opening.1))
        .await
        .map_err(|e| DomainError::Internal(format!("the store task failed: {e}")))??;
    let published: Vec<Arc<Published>> =
        declared.into_iter().map(|d| Published::open(d, store.clone())).collect::<Result<_>>()?;
    published.iter().try_for_each(|p| crate::derived::check_query(p))?;
    // Derived products are built once serving; the others load now.
    for product in published.iter().filter(|p| p.declared.file.source.sql.is_none()) {
        load_source_async(Arc::clone(product), args.reload, args.shrink()).await?;
    }
    Ok(Prepared { args, domain, published })
}

impl Prepared {
    /// The products, in the order of their files.
    pub fn products(&self) -> Vec<Arc<mesh_runtime::Product>> {
        self.published.iter().map(|p| Arc::clone(&p.product)).collect()
    }

    /// The products with their files and rules, in the order of their files.
    pub fn published(&self) -> &[Arc<Published>] {
        &self.published
    }

    /// Serves the products on `listener` and keeps them registered, loading
    /// them again as their files say, until `shutdown`.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let Prepared { args, domain, published } = self;
        let mut tasks = Vec::new();
        let mut services = Vec::new();
        for product in &published {
            let origin = match product.declared.file.source.sql {
                Some(_) => Origin::Derived(Inputs::new(
                    args.domain.registries().remove(0),
                    args.domain.client_credentials(&domain)?,
                )?),
                None => Origin::Source(args.shrink()),
            };
            let refresher = Refresher::new(Arc::clone(product), origin);
            tasks.extend(refresher.start()?);
            services.push(ProductService::new(
                Arc::clone(&product.product),
                crate::methods::handlers(&refresher),
            ));
        }
        let served = run_domain(listener, services, &args.domain, shutdown).await;
        tasks.iter().for_each(tokio::task::JoinHandle::abort);
        served
    }
}

/// Every product file declared, or every mistake of every file.
fn declare_all(paths: &[PathBuf]) -> Result<Vec<Declared>> {
    let mut declared = Vec::new();
    let mut mistakes = Vec::new();
    for path in paths {
        match mesh_product_file::declare(path) {
            Ok(product) => declared.push(product),
            Err(Mistakes(found)) => mistakes.extend(found),
        }
    }
    if !mistakes.is_empty() {
        return Err(DomainError::Config(format!(
            "the product files cannot be served:\n{}",
            Mistakes(mistakes)
        )));
    }
    Ok(declared)
}

/// The one domain the products belong to; two products of the same id,
/// or of two domains, are refused.
fn one_domain(declared: &[Declared]) -> Result<String> {
    let domain_of =
        |d: &Declared| d.file.product.split_once('.').map_or(String::new(), |(domain, _)| domain.to_owned());
    let Some(first) = declared.first() else {
        return Err(DomainError::Config("no product file given: name one with --product FILE".into()));
    };
    let domain = domain_of(first);
    let (mut ids, mut tables) = (std::collections::HashSet::new(), std::collections::HashSet::new());
    for product in declared {
        if domain_of(product) != domain {
            return Err(DomainError::Config(format!(
                "{} belongs to domain `{}` and {} to `{domain}`: one server serves one domain; start one per domain",
                product.file.path.display(),
                domain_of(product),
                first.file.path.display()
            )));
        }
        if !ids.insert(product.file.product.as_str()) {
            return Err(DomainError::Config(format!(
                "{} declares {} again: each product is declared once",
                product.file.path.display(),
                product.file.product
            )));
        }
        if !tables.insert(product.file.table()) {
            return Err(DomainError::Config(format!(
                "{} keeps its rows in table `{}`, as another product of the domain does: give it `table:` of its own",
                product.file.path.display(),
                product.file.table()
            )));
        }
    }
    Ok(domain)
}
