//! What a client command calls with: the token (MESH_TOKEN, else the
//! registry's profile, renewed when it is due) and the CA (--ca-file, else
//! the profile's).

use anyhow::Result;
use mesh_grpc::Credentials;

use crate::cli::Cli;
use crate::profile::Profile;

/// Sets up TLS and, for a command that calls services, fills in
/// `cli.credentials`.
pub(crate) async fn start(cli: &mut Cli) -> Result<()> {
    if !cli.command.calls_services() {
        mesh_grpc::set_client_tls(cli.tls.clone());
        return Ok(());
    }
    let mut profile = Profile::load(cli.primary_registry())?;
    if cli.tls.ca_file.is_none() {
        cli.tls.ca_file = profile.as_ref().and_then(|p| p.ca_file.clone());
    }
    mesh_grpc::set_client_tls(cli.tls.clone());
    cli.credentials = match token_override() {
        Some(token) => Credentials::token(&token)?,
        None => match &mut profile {
            Some(profile) => {
                crate::token_renewal::renew_if_due(profile).await?;
                match &profile.token {
                    Some(token) => Credentials::token(token)?,
                    None => Credentials::none(),
                }
            }
            None => Credentials::none(),
        },
    };
    Ok(())
}

/// The token in MESH_TOKEN, if set.
pub(crate) fn token_override() -> Option<String> {
    std::env::var("MESH_TOKEN").ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// The token calls carry, for `mesh token print`.
pub(crate) async fn current_token(cli: &Cli) -> Result<Option<String>> {
    if let Some(token) = token_override() {
        return Ok(Some(token));
    }
    let Some(mut profile) = Profile::load(cli.primary_registry())? else { return Ok(None) };
    crate::token_renewal::renew_if_due(&mut profile).await?;
    Ok(profile.token)
}
