//! Keeping a signed-in profile's token fresh: renewal with the refresh
//! token before it expires, and the IdP's token answers kept in the
//! profile. The session renews before each call; `mesh login` keeps what
//! it signed in with.

use anyhow::{Context, Result, anyhow, bail};
use mesh_grpc::auth::oidc::{http_client, post_form};
use serde_json::Value;

use crate::profile::{Profile, now};
use crate::style::safe;

/// How long before expiry a token is renewed.
const RENEW_BEFORE: u64 = 60;

/// Renews the profile's token with its refresh token when it expires
/// within a minute; saves the renewed profile.
pub(crate) async fn renew_if_due(profile: &mut Profile) -> Result<()> {
    let Some(login) = profile.login.clone() else { return Ok(()) };
    let due = profile.expires_at.is_some_and(|at| at <= now() + RENEW_BEFORE);
    let Some(refresh_token) = login.refresh_token.filter(|_| due) else { return Ok(()) };
    let http = http_client()?;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", login.client_id.as_str()),
    ];
    let (status, answer) = post_form(&http, &login.token_endpoint, &form)
        .await
        .map_err(|e| anyhow!("renewing the token: {e}"))?;
    if !status.is_success() {
        bail!(
            "the IdP did not renew your token ({}); sign in again with mesh login --issuer {} --client-id {}",
            oauth_error(&answer),
            safe(&login.issuer),
            safe(&login.client_id)
        );
    }
    keep(profile, &answer)?;
    profile.save()?;
    Ok(())
}

/// Puts a token endpoint's answer into `profile`.
pub(crate) fn keep(profile: &mut Profile, tokens: &Value) -> Result<()> {
    let access = tokens["access_token"].as_str().context("the IdP's answer has no access_token")?;
    profile.token = Some(access.to_owned());
    profile.expires_at = tokens["expires_in"].as_u64().map(|seconds| now() + seconds);
    if let (Some(login), Some(refresh)) = (&mut profile.login, tokens["refresh_token"].as_str()) {
        login.refresh_token = Some(refresh.to_owned());
    }
    Ok(())
}

/// An OAuth error answer in words.
pub(crate) fn oauth_error(answer: &Value) -> String {
    let code = answer["error"].as_str().unwrap_or("no error code");
    match answer["error_description"].as_str() {
        Some(description) => safe(&format!("{code}: {description}")).into_owned(),
        None => safe(code).into_owned(),
    }
}
