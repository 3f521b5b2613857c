//! `mesh up`: the registry and the three domains in one process, each on its
//! own port with its own SQLite file, until Ctrl-C.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use catalog_registry::RegistryConfig;
use mesh_contracts::catalog::{ListProductsRequest, ServingStatus};
use mesh_domain_runtime::DomainArgs;
use tokio::net::TcpListener;
use tokio::sync::watch;
use woori_data::source_domain::SourceArgs;

use crate::cli::UpArgs;
use crate::registry::Registry;

/// The products `mesh up` serves.
const PRODUCTS: [&str; 3] = ["customer.profiles", "payment.card_spending", "insight.segment_spending"];

async fn bind(port: u16) -> Result<(TcpListener, SocketAddr)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr}: is another mesh running? (--base-port picks other ports)")
    })?;
    Ok((listener, addr))
}

/// Starts everything, waits until every product serves, runs until Ctrl-C.
pub async fn run(args: &UpArgs, timeout: Duration) -> Result<()> {
    let shutdown = mesh_domain_runtime::hosting::shutdown_signal();
    tokio::pin!(shutdown);
    let (registry_listener, registry_addr) = bind(args.base_port).await?;
    let registry_url = format!("http://{registry_addr}");
    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };

    let config = RegistryConfig {
        addr: registry_addr,
        data_dir: args.data_dir.join("registry"),
        db: None,
        lease_ttl: Duration::from_secs(30),
    };
    let registry_stopped = stopped.clone();
    let registry_task = tokio::spawn(async move {
        catalog_registry::serve(&config, registry_listener, until_stopped(registry_stopped)).await
    });

    let domain_args = |name: &str, addr: SocketAddr| DomainArgs {
        addr: Some(addr),
        data_dir: Some(args.data_dir.join(name)),
        registry: registry_url.clone(),
        advertise_url: None,
    };
    let mut domain_tasks = Vec::new();
    for (offset, domain) in [(1, customer::DOMAIN), (2, payment::DOMAIN)] {
        let (listener, addr) = bind(args.base_port + offset).await?;
        let source = SourceArgs {
            domain: domain_args(domain.name, addr),
            source: None,
            customers: args.customers,
            quarters: args.quarters,
            seed: woori_data::generator::DEFAULT_SEED,
            reload: false,
        };
        let stopped = stopped.clone();
        domain_tasks
            .push(tokio::spawn(async move { domain.run(source, listener, until_stopped(stopped)).await }));
    }
    let (listener, addr) = bind(args.base_port + 3).await?;
    let insight_args = insight::InsightArgs { domain: domain_args("insight", addr), min_customers: 5 };
    let insight_stopped = stopped.clone();
    domain_tasks.push(tokio::spawn(async move {
        insight::run(insight_args, listener, until_stopped(insight_stopped)).await
    }));

    eprintln!("starting the mesh in {} (first start generates the data)...", args.data_dir.display());
    let interrupted = tokio::select! {
        ready = wait_until_serving(&registry_url, timeout) => {
            ready?;
            false
        }
        _ = &mut shutdown => true,
    };
    if !interrupted {
        print_next_steps(&registry_url, args.base_port);
        (&mut shutdown).await;
    }
    eprintln!("stopping...");
    let _ = stop.send(true);
    for task in domain_tasks {
        task.await.context("a domain panicked")?.context("a domain failed")?;
    }
    registry_task.await.context("the registry panicked")?.context("the registry failed")?;
    eprintln!("stopped");
    Ok(())
}

/// Polls the registry until every product is serving with data.
async fn wait_until_serving(registry_url: &str, timeout: Duration) -> Result<()> {
    let mut registry = Registry::new(registry_url, timeout)?;
    let started = Instant::now();
    loop {
        if let Ok(products) = registry.products(ListProductsRequest::default()).await {
            let ready = PRODUCTS.iter().all(|id| {
                products.iter().any(|p| {
                    p.product_id == *id
                        && p.status() == ServingStatus::Serving
                        && p.data.as_ref().is_some_and(|d| d.row_count > 0)
                })
            });
            if ready {
                eprintln!("every product is serving ({:.1} s)", started.elapsed().as_secs_f64());
                return Ok(());
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the mesh did not become ready within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn print_next_steps(registry_url: &str, base_port: u16) {
    let flag = if base_port == 50050 { String::new() } else { format!(" --registry {registry_url}") };
    println!(
        "the mesh is up: registry {registry_url}, customer :{}, payment :{}, insight :{}\n\
         try:\n  mesh{flag} products\n  mesh{flag} describe payment.card_spending\n  \
         mesh{flag} query payment.card_spending --filter 'tot_use_am > 50000000' --order-by 'tot_use_am desc' --limit 10\n  \
         mesh{flag} query insight.segment_spending --filter 'hous_sido_nm = \"서울\"' --select bas_yh,life_stage,mbr_rk,customer_count,avg_use_am\n  \
         mesh{flag} health\n\
         Ctrl-C stops everything.",
        base_port + 1,
        base_port + 2,
        base_port + 3
    );
}
