//! `insight`: runs the insight domain as its own process.

use clap::Parser;
use mesh_grpc::{init_logging, shutdown_signal};

/// The insight domain of the Woori Card data mesh: segment spending built
/// from customer.profiles and payment.card_spending, found through the registry.
///
/// Examples:
///   insight
///   insight --min-customers 10
///   grpcurl -plaintext 127.0.0.1:50053 woori.insight.v1.SegmentSpendingService/Refresh
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
