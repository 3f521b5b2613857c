//! `customer`: runs the customer domain as its own process.

use clap::Parser;
use mesh_grpc::init_logging;
use woori_data::runtime::SourceArgs;

/// The customer domain of the Woori Card data mesh.
///
/// With no source file and an empty database it generates the default
/// synthetic data (deterministic: the same seed gives the same rows).
///
/// Callers need a token of a trusted issuer (see --auth-jwks); the domain
/// calls the registry with its own (--token-file or --issuer-dir).
///
/// Examples:
///   customer --auth-jwks .mesh/issuer/jwks.json --auth-issuer mesh-local --issuer-dir .mesh/issuer
///   customer --source EDU_DATA_F.csv --auth-jwks jwks.json --token-file /run/secrets/customer-token
///   customer --customers 10000 --quarters 2 --data-dir /tmp/customer --insecure-no-auth
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
