//! `mesh token`: signing tokens with the local issuer, and printing the
//! token in use.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use mesh_grpc::auth::exchange;
use mesh_grpc::auth::issuer::LocalIssuer;

use crate::cli::Cli;

/// `mesh token ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Sign a token with the local issuer (created in --issuer-dir on first use).
    ///
    /// Examples:
    ///   mesh token issue --sub kim --role analyst --ttl 8h
    ///   export MESH_TOKEN=$(mesh token issue --sub ci --role admin --ttl 1h)
    ///   mesh token issue --sub service:insight --for payment --ttl 10m
    #[command(verbatim_doc_comment)]
    Issue(TokenIssueArgs),
    /// Print the token calls carry (MESH_TOKEN, else the registry's
    /// profile), or with --for a short-lived token for one domain, got by
    /// token exchange (RFC 8693) at the registry (or --token-exchange-url).
    ///
    /// Examples:
    ///   mesh token print
    ///   grpcurl -H "authorization: Bearer $(mesh token print --for payment)" 127.0.0.1:50052 list
    ///   curl -H "authorization: Bearer $(mesh token print --for payment)" \
    ///     localhost:50052/v1/products/payment.card_spending/rows
    #[command(verbatim_doc_comment)]
    Print(TokenPrintArgs),
}

/// Flags of `mesh token print`.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenPrintArgs {
    /// Print a token for this domain (e.g. `payment`), good there alone.
    #[arg(long = "for", value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Where tokens are exchanged [default: the registry's /v1/token]; a
    /// company IdP's token endpoint when it supports token exchange.
    #[arg(long, env = "MESH_TOKEN_EXCHANGE_URL")]
    pub token_exchange_url: Option<String>,
}

/// Flags of `mesh token issue`.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenIssueArgs {
    /// The principal the token names (its `sub`).
    #[arg(long)]
    pub sub: String,
    /// A role the token grants; repeat for several.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// How long the token lives, at most 30 days.
    #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// The audience the token is for [default: the registry's].
    #[arg(long, default_value = mesh_grpc::auth::issuer::DEFAULT_AUDIENCE)]
    pub audience: String,
    /// Make the token for this domain (e.g. `payment`) instead, good there
    /// alone: its audience is `urn:woori-mesh:domain:<DOMAIN>`.
    #[arg(long = "for", value_name = "DOMAIN", conflicts_with = "audience")]
    pub domain: Option<String>,
    /// Where the local issuer keeps its key and JWKS.
    #[arg(long, env = "MESH_ISSUER_DIR", default_value = ".mesh/issuer")]
    pub issuer_dir: std::path::PathBuf,
}

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
