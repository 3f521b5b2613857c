//! `mesh token`: signing tokens with the local issuer, and printing the
//! token in use.

use anyhow::{Result, anyhow, bail};
use mesh_grpc::exchange;
use mesh_grpc::issuer::LocalIssuer;

use crate::cli::{Cli, TokenCommand};

/// Runs `mesh token issue` or `mesh token print`.
pub(crate) async fn run(cli: &Cli, command: &TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Issue(args) => {
            let issuer = LocalIssuer::open_or_create(&args.issuer_dir)?;
            let audience =
                args.domain.as_deref().map_or_else(|| args.audience.clone(), exchange::domain_audience);
            println!("{}", issuer.issue(&args.sub, &args.roles, args.ttl, &audience)?);
            Ok(())
        }
        TokenCommand::Print(args) => {
            let Some(token) = crate::session::current_token(cli).await? else {
                bail!(
                    "no token for the registry {}: start the mesh (mesh up), sign in (mesh login), or set MESH_TOKEN",
                    crate::style::safe(cli.primary_registry())
                );
            };
            let Some(domain) = &args.domain else {
                println!("{token}");
                return Ok(());
            };
            let url = match &args.token_exchange_url {
                Some(url) => url.clone(),
                None => format!("{}{}", cli.primary_registry().trim_end_matches('/'), exchange::TOKEN_PATH),
            };
            let exchanged =
                exchange::exchange(&url, &token, &exchange::domain_audience(domain)).await.map_err(|e| {
                    anyhow!("cannot get a token for the domain `{}`: {e}", crate::style::safe(domain))
                })?;
            println!("{}", exchanged.token);
            Ok(())
        }
    }
}
