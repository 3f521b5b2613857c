//! The token a command calls a domain with: the sign-in token exchanged
//! (RFC 8693) at the registry, or at `MESH_TOKEN_EXCHANGE_URL` (a company
//! IdP that supports token exchange), for one good at that domain alone;
//! kept in the registry's profile (0600) until a minute before it ends, so
//! a registry outage shorter than that stops no reader.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use mesh_grpc::Credentials;
use mesh_grpc::auth::exchange;
use serde::{Deserialize, Serialize};

use crate::cli::Cli;
use crate::profile::{Profile, now};

/// A token is used until this many seconds before it ends.
const MARGIN: u64 = 60;

/// A domain token kept in a profile.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct DomainToken {
    /// The token.
    pub token: String,
    /// When it ends, seconds since the epoch.
    pub expires_at: u64,
    /// BLAKE3 (hex) of the sign-in token it was exchanged for: another
    /// sign-in (MESH_TOKEN) never uses it.
    pub sign_in: String,
}

/// Domain tokens by audience.
pub(crate) type DomainTokens = BTreeMap<String, DomainToken>;

fn digest(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// The credentials to call domain `domain` with: a token exchanged for it
/// (kept, or fresh), or the sign-in token when it is already for that
/// domain. An error when none can be had: the sign-in token, good at the
/// registry, is never sent to a domain's endpoint.
pub(crate) async fn credentials(cli: &Cli, domain: &str) -> Result<Credentials> {
    let Some(sign_in) = crate::session::current_token(cli).await? else { return Ok(cli.credentials.clone()) };
    if exchange::token_domain(&sign_in).as_deref() == Some(domain) {
        return Ok(cli.credentials.clone());
    }
    let audience = exchange::domain_audience(domain);
    // Kept even for MESH_TOKEN callers: a profile without a token of its own holds them.
    let mut profile = Profile::load(cli.primary_registry())
        .ok()
        .flatten()
        .unwrap_or_else(|| Profile { registry: cli.primary_registry().to_owned(), ..Profile::default() });
    let kept = profile.domain_tokens.get(&audience).filter(|kept| kept.sign_in == digest(&sign_in)).cloned();
    if let Some(kept) = kept.as_ref().filter(|k| k.expires_at > now() + MARGIN) {
        return Ok(Credentials::token(&kept.token)?);
    }
    let url = std::env::var("MESH_TOKEN_EXCHANGE_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
        format!("{}{}", cli.primary_registry().trim_end_matches('/'), exchange::TOKEN_PATH)
    });
    match exchange::exchange(&url, &sign_in, &audience).await {
        Ok(exchanged) => {
            let expires_at = now() + exchanged.expires_in;
            let token = DomainToken { token: exchanged.token.clone(), expires_at, sign_in: digest(&sign_in) };
            profile.domain_tokens.retain(|_, t| t.expires_at > now());
            profile.domain_tokens.insert(audience, token);
            let _ = profile.save();
            Ok(Credentials::token(&exchanged.token)?)
        }
        // A kept token still good for a while carries reads through an outage.
        Err(error) => match kept.filter(|k| k.expires_at > now()) {
            Some(kept) => {
                tracing::debug!(%error, "no token exchange; calling with the kept domain token");
                Ok(Credentials::token(&kept.token)?)
            }
            None => Err(anyhow!(
                "cannot get a token for domain `{domain}`: {error}\n\
                 hint: domains accept only tokens made for them, exchanged at the registry; \
                 check that the registry is reachable (or set MESH_TOKEN_EXCHANGE_URL to your IdP's token endpoint)"
            )),
        },
    }
}
