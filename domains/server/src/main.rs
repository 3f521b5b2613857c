//! `mesh-domain`: the generic domain server as its own process
//! (`mesh-domain --help` lists its flags).

use clap::Parser;

/// Serves the products a domain declares in product files: contracts
/// compiled at start, sources loaded, derived products built from SQL over
/// their inputs, everything registered in the catalog.
///
/// Callers need a token of a trusted issuer (see --auth-jwks); the domain
/// calls the registry and its inputs with its own (--token-file or --issuer-dir).
///
/// Examples:
///   mesh-domain --product merchant/shops.product.yaml --product merchant/sales.product.yaml \
///     --auth-jwks .mesh/issuer/jwks.json --auth-issuer mesh-local --issuer-dir .mesh/issuer \
///     --pseudonym-key .mesh/pseudonym.key
///   mesh-domain --product shops.product.yaml --addr 0.0.0.0:50060 --database-url postgres://...
#[derive(Debug, Parser)]
#[command(name = "mesh-domain", version, verbatim_doc_comment)]
struct Cli {
    #[command(flatten)]
    args: mesh_domain_server::ServeArgs,

    #[command(flatten)]
    trace: mesh_grpc::telemetry::TraceArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let telemetry = mesh_grpc::telemetry::init("info", "mesh-domain", &cli.trace)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(mesh_domain_server::run_until_signal(cli.args))?;
    telemetry.shutdown();
    Ok(())
}
