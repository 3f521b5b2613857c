//! The token a command calls a domain with: the sign-in token exchanged
//! (RFC 8693) at the registry, or at `MESH_TOKEN_EXCHANGE_URL` (a company
//! IdP that supports token exchange), for one good at that domain alone;
//! kept in the registry's profile (0600) until a minute before it ends, so
//! a registry outage shorter than that stops no reader.

use std::collections::BTreeMap;

use mesh_grpc::Credentials;
use mesh_grpc::exchange;
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
/// (kept, or fresh), else, while no exchange answers and none is kept, the
/// sign-in token itself.
pub(crate) async fn credentials(cli: &Cli, domain: &str) -> Credentials {
    let Ok(Some(sign_in)) = crate::session::current_token(cli).await else { return cli.credentials.clone() };
    let audience = exchange::domain_audience(domain);
    let mut profile = Profile::load(cli.primary_registry()).ok().flatten();
    let kept = profile
        .as_ref()
        .and_then(|p| p.domain_tokens.get(&audience))
        .filter(|kept| kept.sign_in == digest(&sign_in))
        .cloned();
    if let Some(kept) = kept.as_ref().filter(|k| k.expires_at > now() + MARGIN) {
        return Credentials::token(&kept.token).unwrap_or_else(|_| cli.credentials.clone());
    }
    let url = std::env::var("MESH_TOKEN_EXCHANGE_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
        format!("{}{}", cli.primary_registry().trim_end_matches('/'), exchange::TOKEN_PATH)
    });
    match exchange::exchange(&url, &sign_in, &audience).await {
        Ok(exchanged) => {
            if let Some(profile) = &mut profile {
                let expires_at = now() + exchanged.expires_in;
                let token =
                    DomainToken { token: exchanged.token.clone(), expires_at, sign_in: digest(&sign_in) };
                profile.domain_tokens.retain(|_, t| t.expires_at > now());
                profile.domain_tokens.insert(audience, token);
                let _ = profile.save();
            }
            Credentials::token(&exchanged.token).unwrap_or_else(|_| cli.credentials.clone())
        }
        Err(error) => {
            tracing::debug!(%error, "no token exchange; calling with the kept or the sign-in token");
            match kept.filter(|k| k.expires_at > now()) {
                Some(kept) => Credentials::token(&kept.token).unwrap_or_else(|_| cli.credentials.clone()),
                None => cli.credentials.clone(),
            }
        }
    }
}
