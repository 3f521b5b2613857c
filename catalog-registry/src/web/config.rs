//! Flags of the web catalog.

use std::path::PathBuf;
use std::time::Duration;

/// How the web catalog signs people in.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Web catalog")]
pub struct WebArgs {
    /// The catalog's public base URL (`https://catalog.example.com`), for
    /// the IdP's redirect and the documents' links; by default the address
    /// each browser used.
    #[arg(long, env = "MESH_WEB_URL")]
    pub web_url: Option<String>,

    /// Sign people in through this OIDC client of the IdP (authorization
    /// code with PKCE); without it, people sign in with a pasted token.
    #[arg(long, env = "MESH_WEB_OIDC_CLIENT_ID")]
    pub web_oidc_client_id: Option<String>,

    /// The IdP to sign in with; by default --auth-oidc-issuer.
    #[arg(long, env = "MESH_WEB_OIDC_ISSUER")]
    pub web_oidc_issuer: Option<String>,

    /// A file holding the client's secret, for a confidential client (PKCE
    /// is used either way).
    #[arg(long, env = "MESH_WEB_OIDC_CLIENT_SECRET_FILE")]
    pub web_oidc_client_secret_file: Option<PathBuf>,

    /// Scopes asked of the IdP.
    #[arg(long, env = "MESH_WEB_OIDC_SCOPES", default_value = "openid profile")]
    pub web_oidc_scopes: String,

    /// How long a browser stays signed in at most (its token's own expiry
    /// ends it sooner).
    #[arg(long, env = "MESH_WEB_SESSION_TTL", default_value = "8h", value_parser = humantime::parse_duration)]
    pub web_session_ttl: Duration,

    /// One-time sign-in links made by the program hosting the registry
    /// (`mesh up` prints one).
    #[arg(skip)]
    pub sign_in_links: super::SignInLinks,
}

impl Default for WebArgs {
    fn default() -> Self {
        Self {
            web_url: None,
            web_oidc_client_id: None,
            web_oidc_issuer: None,
            web_oidc_client_secret_file: None,
            web_oidc_scopes: "openid profile".to_owned(),
            web_session_ttl: Duration::from_secs(8 * 3600),
            sign_in_links: Default::default(),
        }
    }
}
