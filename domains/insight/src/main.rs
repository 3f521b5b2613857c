//! `insight`: runs the insight domain as its own process.

use clap::Parser;
use mesh_grpc::{init_logging, shutdown_signal};

/// The insight domain of the Woori Card data mesh: segment spending built
/// from customer.profiles and payment.card_spending, found through the registry.
///
/// Callers need a token of a trusted issuer (see --auth-jwks); Refresh needs
/// the role owner:insight or admin. The domain calls the registry and its
/// sources with its own token (--token-file or --issuer-dir).
///
/// Examples:
///   insight --auth-jwks .mesh/issuer/jwks.json --auth-issuer mesh-local --issuer-dir .mesh/issuer
///   insight --min-customers 10 --auth-oidc-issuer https://sso.example.com/realms/cards --token-file token
///   grpcurl -plaintext -H "authorization: Bearer $(mesh token print)" 127.0.0.1:50053 \
///     woori.insight.v1.SegmentSpendingService/Refresh
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    #[command(flatten)]
    args: insight::InsightArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let cli = Cli::parse();
    mesh_grpc::set_client_tls(cli.args.domain.client_tls.clone());
    let addr = cli.args.domain.addr_or(insight::PORT);
    let listener = mesh_grpc::server::bind(addr).await?;
    insight::run(cli.args, listener, shutdown_signal()).await?;
    Ok(())
}
