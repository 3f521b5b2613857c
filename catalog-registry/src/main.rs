//! `catalog-registry`: runs the catalog registry as its own process.

use clap::Parser;
use mesh_grpc::shutdown_signal;

/// The catalog registry of the Woori Card data mesh.
///
/// Every call needs a bearer token of a trusted issuer (health and
/// reflection excepted); `mesh up` runs the registry with its local issuer.
///
/// Examples:
///   catalog-registry --auth-jwks .mesh/issuer/jwks.json --auth-issuer mesh-local
///   catalog-registry --addr 0.0.0.0:50050 --tls-cert registry.pem --tls-key registry-key.pem \
///     --auth-oidc-issuer https://sso.example.com/realms/cards --auth-role-claim realm_access.roles
///   MESH_REGISTRY_LEASE_TTL=10s catalog-registry --auth-jwks jwks.json
///   catalog-registry --auth-jwks jwks.json --otlp-endpoint http://127.0.0.1:4317
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    #[command(flatten)]
    config: catalog_registry::RegistryConfig,

    #[command(flatten)]
    trace: mesh_grpc::telemetry::TraceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = mesh_grpc::telemetry::init("info", "catalog-registry", &cli.trace)?;
    mesh_grpc::set_client_tls(cli.config.client_tls.clone());
    let listener = mesh_grpc::server::bind(cli.config.addr).await?;
    catalog_registry::serve(&cli.config, listener, shutdown_signal()).await?;
    Ok(())
}
