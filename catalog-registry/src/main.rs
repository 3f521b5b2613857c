//! `catalog-registry`: runs the catalog registry as its own process.

use clap::Parser;
use mesh_grpc::{init_logging, shutdown_signal};

/// The catalog registry of the Woori Card data mesh.
///
/// Examples:
///   catalog-registry
///   catalog-registry --addr 0.0.0.0:50050 --data-dir /var/lib/mesh/registry
///   MESH_REGISTRY_LEASE_TTL=10s catalog-registry
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    #[command(flatten)]
    config: catalog_registry::RegistryConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let cli = Cli::parse();
    let listener = mesh_grpc::server::bind(cli.config.addr).await?;
    catalog_registry::serve(&cli.config, listener, shutdown_signal()).await?;
    Ok(())
}
