//! `catalog-registry`: runs the catalog registry as its own process.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

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
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A closed log pipe must not take the service down: the subscriber's
        // own error report would panic writing to that same stderr.
        .log_internal_errors(false)
        .init();
    let cli = Cli::parse();
    let listener = tokio::net::TcpListener::bind(cli.config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", cli.config.addr))?;
    catalog_registry::serve(&cli.config, listener, shutdown_signal()).await?;
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}
