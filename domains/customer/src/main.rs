//! `customer`: runs the customer domain as its own process.

use anyhow::Context;
use clap::Parser;
use mesh_domain_runtime::hosting::{init_logging, shutdown_signal};
use woori_data::source_domain::SourceArgs;

/// The customer domain of the Woori Card data mesh.
///
/// With no source file and an empty database it generates the default
/// synthetic data (deterministic: the same seed gives the same rows).
///
/// Examples:
///   customer
///   customer --source EDU_DATA_F.csv
///   customer --customers 10000 --quarters 2 --data-dir /tmp/customer
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    #[command(flatten)]
    args: SourceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let cli = Cli::parse();
    let domain = customer::DOMAIN;
    let addr = cli.args.domain.addr_or(domain.port);
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    domain.run(cli.args, listener, shutdown_signal()).await?;
    Ok(())
}
