//! Signing in through the company's IdP: OpenID Connect authorization code
//! flow with PKCE (S256) as a public client (or confidential, with a
//! secret). The state ties the IdP's answer to the browser that asked
//! (checked against a short-lived cookie) and to its code verifier, kept
//! here and used once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::session::random_token;

/// How long a sign-in at the IdP may take.
pub(crate) const SIGN_IN_TTL: Duration = Duration::from_secs(10 * 60);
/// Sign-ins in progress at once; the oldest is dropped beyond it.
const MAX_PENDING: usize = 10_000;

/// The IdP's endpoints, from its discovery document.
#[derive(Debug, Clone)]
struct Endpoints {
    authorization: String,
    token: String,
}

/// A sign-in in progress.
struct Pending {
    verifier: String,
    next: String,
    started: Instant,
}

/// The web catalog's OIDC client.
pub(crate) struct WebOidc {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    scopes: String,
    http: reqwest::Client,
    endpoints: OnceCell<Endpoints>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for WebOidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebOidc").field("issuer", &self.issuer).field("client_id", &self.client_id).finish()
    }
}

impl WebOidc {
    /// A client `client_id` of `issuer` asking for `scopes`.
    pub(crate) fn new(
        issuer: String,
        client_id: String,
        client_secret: Option<String>,
        scopes: String,
    ) -> mesh_grpc::Result<Self> {
        Ok(Self {
            issuer,
            client_id,
            client_secret,
            scopes,
            http: mesh_grpc::auth::oidc::http_client()?,
            endpoints: OnceCell::new(),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// The IdP's name for the sign-in button: its issuer URL.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn endpoints(&self) -> Result<&Endpoints, String> {
        self.endpoints
            .get_or_try_init(|| async {
                let document = mesh_grpc::auth::oidc::discover(&self.http, &self.issuer).await?;
                let field = |name: &str| {
                    document[name]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("the IdP's discovery document has no {name}"))
                };
                Ok(Endpoints {
                    authorization: field("authorization_endpoint")?,
                    token: field("token_endpoint")?,
                })
            })
            .await
    }

    /// Starts a sign-in returning to `next`: the IdP URL to send the browser
    /// to, and the state to keep in its cookie.
    pub(crate) async fn begin(&self, redirect_uri: &str, next: String) -> Result<(String, String), String> {
        let endpoints = self.endpoints().await?;
        let (state, verifier) = (random_token(), random_token());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.retain(|_, p| p.started.elapsed() < SIGN_IN_TTL);
            if pending.len() >= MAX_PENDING
                && let Some(oldest) = pending.iter().min_by_key(|(_, p)| p.started).map(|(k, _)| k.clone())
            {
                pending.remove(&oldest);
            }
            pending.insert(state.clone(), Pending { verifier, next, started: Instant::now() });
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.scopes)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let separator = if endpoints.authorization.contains('?') { '&' } else { '?' };
        Ok((format!("{}{separator}{query}", endpoints.authorization), state))
    }

    /// Finishes the sign-in `state` with the IdP's `code`: the access token
    /// and where to go next. The state must be the browser's own
    /// (`cookie_state`) and is used up.
    pub(crate) async fn finish(
        &self,
        state: &str,
        cookie_state: Option<&str>,
        code: &str,
        redirect_uri: &str,
    ) -> Result<(String, String), String> {
        if cookie_state.is_none_or(|c| !super::session::same_secret(c, state)) {
            return Err("this sign-in was not started in this browser (or took longer than 10 minutes); \
                        start again"
                .into());
        }
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(state)
            .filter(|p| p.started.elapsed() < SIGN_IN_TTL)
            .ok_or("this sign-in expired or was already used; start again")?;
        let endpoints = self.endpoints().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", self.client_id.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret));
        }
        let (status, answer) = mesh_grpc::auth::oidc::post_form(&self.http, &endpoints.token, &form)
            .await
            .map_err(|e| format!("the IdP could not be reached: {e}"))?;
        if !status.is_success() {
            let reason = answer["error_description"]
                .as_str()
                .or(answer["error"].as_str())
                .unwrap_or("no reason given");
            return Err(format!("the IdP refused the sign-in ({status}): {reason}"));
        }
        let token =
            answer["access_token"].as_str().ok_or("the IdP answered without an access_token")?.to_owned();
        Ok((token, pending.next))
    }
}
