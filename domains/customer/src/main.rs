//! `customer`: runs the customer domain as its own process.

use clap::Parser;
use mesh_grpc::init_logging;
use woori_data::runtime::SourceArgs;

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
    customer::DOMAIN.run_until_signal(cli.args).await?;
    Ok(())
}
