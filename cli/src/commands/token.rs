//! `mesh token`: signing tokens with the local issuer, and printing the
//! token in use.

use anyhow::{Result, bail};
use mesh_grpc::issuer::LocalIssuer;

use crate::cli::TokenCommand;

/// Runs `mesh token issue` or `mesh token print`.
pub(crate) fn run(command: &TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Issue(args) => {
            let issuer = LocalIssuer::open_or_create(&args.issuer_dir)?;
            println!("{}", issuer.issue(&args.sub, &args.roles, args.ttl, &args.audience)?);
            Ok(())
        }
        TokenCommand::Print => match std::env::var("MESH_TOKEN") {
            Ok(token) if !token.trim().is_empty() => {
                println!("{}", token.trim());
                Ok(())
            }
            _ => bail!(
                "no token in use: set MESH_TOKEN (`mesh token issue --sub NAME --role ROLE` prints one)"
            ),
        },
    }
}
