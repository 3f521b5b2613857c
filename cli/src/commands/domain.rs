//! `mesh domain serve`: the generic domain server, serving the products a
//! domain declares in product files (the same server as `mesh-domain`).

use clap::Subcommand;

/// `mesh domain ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DomainCommand {
    /// Serve the products declared in product files, all of one domain:
    /// contracts compiled at start, sources loaded, derived products built
    /// from SQL over their inputs, everything registered in the catalog.
    ///
    /// Examples:
    ///   mesh domain serve --product merchant/shops.product.yaml --insecure-no-auth
    ///   mesh domain serve --product shops.product.yaml --product sales.product.yaml \
    ///     --auth-jwks .mesh/issuer/jwks.json --auth-issuer mesh-local --issuer-dir .mesh/issuer \
    ///     --pseudonym-key .mesh/pseudonym.key --addr 127.0.0.1:50061
    #[command(verbatim_doc_comment)]
    Serve(Box<mesh_domain_server::ServeArgs>),
}

impl DomainCommand {
    /// Runs `mesh domain ...` until SIGINT or SIGTERM.
    pub(crate) async fn run(&self) -> anyhow::Result<()> {
        match self {
            DomainCommand::Serve(args) => {
                Ok(mesh_domain_server::run_until_signal(args.as_ref().clone()).await?)
            }
        }
    }
}
