//! `mesh token`: signing tokens with the local issuer, and printing the
//! token in use.

use anyhow::{Result, bail};
use mesh_grpc::issuer::LocalIssuer;

use crate::cli::{Cli, TokenCommand};

/// Runs `mesh token issue` or `mesh token print`.
pub(crate) async fn run(cli: &Cli, command: &TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Issue(args) => {
            let issuer = LocalIssuer::open_or_create(&args.issuer_dir)?;
            println!("{}", issuer.issue(&args.sub, &args.roles, args.ttl, &args.audience)?);
            Ok(())
        }
        TokenCommand::Print => match crate::session::current_token(cli).await? {
            Some(token) => {
                println!("{token}");
                Ok(())
            }
            None => bail!(
                "no token for the registry {}: start the mesh (mesh up), sign in (mesh login), or set MESH_TOKEN",
                crate::style::safe(cli.primary_registry())
            ),
        },
    }
}
