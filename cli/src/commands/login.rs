//! `mesh login`: signing a person in through the company's IdP with the
//! OAuth 2.0 device authorization grant (RFC 8628), and renewing the token
//! with the refresh token when it is about to expire.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use mesh_grpc::auth::oidc::{discover, http_client, post_form};

use crate::cli::Cli;
use crate::profile::{Login, Profile};
use crate::style::safe;
use crate::token_renewal::{keep, oauth_error};

/// Flags of `mesh login`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// The IdP's issuer URL (its OIDC discovery document is read from it).
    #[arg(long, env = "MESH_LOGIN_ISSUER")]
    pub issuer: String,
    /// The CLI's client id registered at the IdP.
    #[arg(long, env = "MESH_LOGIN_CLIENT_ID")]
    pub client_id: String,
    /// Scopes to ask for, space separated.
    #[arg(long, default_value = "openid offline_access")]
    pub scope: String,
}

/// The grant type of a device code, RFC 8628 section 3.4.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Signs in and writes the registry's profile.
pub(crate) async fn run(cli: &Cli, args: &LoginArgs) -> Result<()> {
    let http = http_client()?;
    let issuer = args.issuer.trim_end_matches('/');
    let document = discover(&http, issuer).await.map_err(|e| anyhow!("cannot discover the IdP: {e}"))?;
    let endpoint = |name: &str| {
        document[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("the IdP at {} does not offer {name}", safe(issuer)))
    };
    let (device_endpoint, token_endpoint) =
        (endpoint("device_authorization_endpoint")?, endpoint("token_endpoint")?);

    let form = [("client_id", args.client_id.as_str()), ("scope", args.scope.as_str())];
    let (status, grant) =
        post_form(&http, &device_endpoint, &form).await.map_err(|e| anyhow!("device authorization: {e}"))?;
    if !status.is_success() {
        bail!("the IdP refused the device authorization: {}", oauth_error(&grant));
    }
    let field = |name: &str| grant[name].as_str().map(str::to_owned);
    let device_code = field("device_code").context("the IdP's answer has no device_code")?;
    let user_code = field("user_code").context("the IdP's answer has no user_code")?;
    let verification = field("verification_uri").context("the IdP's answer has no verification_uri")?;
    let expires_in = grant["expires_in"].as_u64().unwrap_or(600);
    let mut interval = grant["interval"].as_u64().unwrap_or(5).max(1);

    eprintln!("To sign in, open {} and enter the code {}", safe(&verification), safe(&user_code));
    if let Some(complete) = field("verification_uri_complete") {
        eprintln!("(or open {} directly)", safe(&complete));
    }
    eprintln!("waiting for you to confirm (up to {} minutes)...", expires_in.div_ceil(60));

    let deadline = Instant::now() + Duration::from_secs(expires_in);
    let tokens = loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if Instant::now() > deadline {
            bail!("the code expired before it was confirmed; run mesh login again");
        }
        let form =
            [("grant_type", DEVICE_GRANT), ("device_code", &device_code), ("client_id", &args.client_id)];
        let (status, answer) =
            post_form(&http, &token_endpoint, &form).await.map_err(|e| anyhow!("token endpoint: {e}"))?;
        if status.is_success() {
            break answer;
        }
        match answer["error"].as_str() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += 5,
            Some("access_denied") => bail!("the sign-in was denied"),
            Some("expired_token") => bail!("the code expired before it was confirmed; run mesh login again"),
            _ => bail!("the IdP refused the sign-in: {}", oauth_error(&answer)),
        }
    };

    let mut profile = Profile::load(cli.primary_registry())?.unwrap_or_default();
    profile.registry = cli.primary_registry().to_owned();
    if cli.tls.ca_file.is_some() {
        profile.ca_file.clone_from(&cli.tls.ca_file);
    }
    profile.login = Some(Login {
        issuer: issuer.to_owned(),
        client_id: args.client_id.clone(),
        token_endpoint,
        refresh_token: None,
    });
    keep(&mut profile, &tokens)?;
    let path = profile.save()?;
    eprintln!("signed in; the token is kept for {} in {}", safe(cli.primary_registry()), path.display());
    Ok(())
}
