//! Talking to an OAuth 2.0 / OIDC provider over HTTPS: its discovery
//! document, JSON documents of bounded size, and form posts (token and
//! device-authorization endpoints). Plain `http://` is allowed to loopback
//! only, and `https://` trusts the CA the process's clients trust.

use std::time::Duration;

use serde_json::Value;

use crate::error::{GrpcError, Result};

/// How long one request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a document may weigh.
const MAX_DOCUMENT: usize = 1 << 20;

/// Refuses a URL that would be fetched in plaintext from another host.
pub(crate) fn check_url(url: &str) -> Result<()> {
    let uri: http::Uri = url.parse().map_err(|_| GrpcError::Auth(format!("`{url}` is not a URL")))?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if crate::auth::credentials::is_loopback_host(uri.host().unwrap_or_default()) => Ok(()),
        _ => Err(GrpcError::Auth(format!(
            "{url} must be an https:// URL (plain http is accepted for loopback only)"
        ))),
    }
}

/// The HTTP client for issuers: the CA the process trusts for `https://`
/// (or the public web roots), a timeout, and no redirects (each URL is
/// checked before it is fetched).
pub fn http_client() -> Result<reqwest::Client> {
    let mut builder =
        reqwest::Client::builder().timeout(FETCH_TIMEOUT).redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = crate::tls::client_ca_pem()? {
        let certificate = reqwest::Certificate::from_pem(&ca)
            .map_err(|e| GrpcError::Tls(format!("the CA file cannot be used: {e}")))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().map_err(|e| GrpcError::Tls(format!("cannot build an HTTP client: {e}")))
}

/// A JSON document at `url`, of at most [`MAX_DOCUMENT`] bytes.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    check_url(url).map_err(|e| e.to_string())?;
    let response = http.get(url).send().await.map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    read_json(url, response).await
}

/// Posts `form` to `url`; the status and the JSON answer (error answers of
/// OAuth endpoints are JSON too).
pub async fn post_form(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<(reqwest::StatusCode, Value), String> {
    check_url(url).map_err(|e| e.to_string())?;
    let response = http.post(url).form(form).send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    Ok((status, read_json(url, response).await?))
}

async fn read_json(url: &str, mut response: reqwest::Response) -> Result<Value, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(format!("{url} answered more than {MAX_DOCUMENT} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url} did not answer JSON: {e}"))
}

/// An OIDC issuer's discovery document, checked to be its own.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Value, String> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let document = get_json(http, &url).await?;
    if document["issuer"].as_str() != Some(issuer) {
        return Err(format!("{url} names another issuer ({})", document["issuer"]));
    }
    Ok(document)
}
