//! The registry's token endpoint, `POST /v1/token`: OAuth 2.0 Token
//! Exchange (RFC 8693) with resource indicators (RFC 8707). A client sends
//! its sign-in token (good at the registry) and names one domain
//! (`resource=urn:woori-mesh:domain:payment`); it gets a token for that
//! domain alone, signed by the local issuer, for at most five minutes and
//! never past the sign-in token's own end. The route needs no bearer header:
//! the subject token in the form is what is verified.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use mesh_grpc::auth::exchange::{ACCESS_TOKEN_TYPE, GRANT_TYPE, JWT_TOKEN_TYPE, TOKEN_PATH, domain_of};
use mesh_grpc::auth::issuer::{LOCAL_ISSUER, LocalIssuer};
use mesh_grpc::auth::{Principal, Verifier};
use serde_json::json;

use crate::service::Catalog;

/// How long an exchanged token lasts at most.
pub const EXCHANGED_TTL: Duration = Duration::from_secs(300);
/// The largest form accepted, in bytes.
const MAX_FORM: usize = 16 * 1024;

/// What the endpoint needs.
struct Exchange {
    catalog: Catalog,
    verifier: Arc<Verifier>,
    issuer: Arc<LocalIssuer>,
}

/// A token for `principal` (verified from `subject_token`) for `audience`,
/// signed by `issuer`: for [`EXCHANGED_TTL`] at most, never past the
/// subject token's end; the token and how long it lasts. An error when the
/// principal is not the local issuer's, or its token ends now.
pub(crate) fn mint(
    issuer: &LocalIssuer,
    principal: &Principal,
    subject_token: &str,
    audience: &str,
) -> Result<(String, Duration), String> {
    if principal.issuer != LOCAL_ISSUER {
        return Err(format!(
            "this registry exchanges tokens of the issuer `{LOCAL_ISSUER}` only; exchange a token of `{}` at \
             that issuer's own token endpoint",
            principal.issuer
        ));
    }
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let left = expiry(subject_token).map_or(0, |exp| exp.saturating_sub(now));
    let ttl = EXCHANGED_TTL.min(Duration::from_secs(left));
    if ttl.is_zero() {
        return Err("the subject token expires now; sign in again".into());
    }
    let token =
        issuer.issue(&principal.subject, &principal.roles, ttl, audience).map_err(|e| e.to_string())?;
    Ok((token, ttl))
}

/// The token endpoint over `catalog`, verifying subject tokens with
/// `verifier` and signing with `issuer`.
pub(crate) fn router(catalog: Catalog, verifier: Arc<Verifier>, issuer: Arc<LocalIssuer>) -> axum::Router {
    let state = Arc::new(Exchange { catalog, verifier, issuer });
    axum::Router::new()
        .route(TOKEN_PATH, post(token))
        .layer(DefaultBodyLimit::max(MAX_FORM))
        .with_state(state)
}

/// The token endpoint of a registry that exchanges nothing: every request
/// is answered with an OAuth error saying so, not a bare refusal.
pub(crate) fn unavailable_router() -> axum::Router {
    let refuse = || async {
        refused(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "this registry does not exchange tokens (it was started without --token-exchange-issuer-dir); \
             exchange the sign-in token at the company IdP's token endpoint (MESH_TOKEN_EXCHANGE_URL)",
        )
    };
    axum::Router::new().route(TOKEN_PATH, post(refuse))
}

/// An OAuth error answer (RFC 6749 section 5.2), never cached.
fn refused(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    let body = json!({ "error": error, "error_description": description.into() });
    (status, [(http::header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

fn invalid_request(description: impl Into<String>) -> Response {
    refused(StatusCode::BAD_REQUEST, "invalid_request", description)
}

/// The form's fields; a field given twice is refused (the message says which).
fn fields(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(body) {
        if fields.iter().any(|(n, _)| *n == name) {
            return Err(format!("`{name}` is given twice; give it once"));
        }
        fields.push((name.into_owned(), value.into_owned()));
    }
    Ok(fields)
}

/// The `exp` of a token already verified.
fn expiry(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?["exp"].as_u64()
}

async fn token(State(exchange): State<Arc<Exchange>>, body: Bytes) -> Response {
    let fields = match fields(&body) {
        Ok(fields) => fields,
        Err(problem) => return invalid_request(problem),
    };
    let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if field("grant_type") != Some(GRANT_TYPE) {
        return refused(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("this endpoint exchanges tokens: grant_type must be {GRANT_TYPE}"),
        );
    }
    let Some(subject_token) = field("subject_token").filter(|t| !t.is_empty()) else {
        return invalid_request("subject_token is missing: send the sign-in token to exchange");
    };
    if !matches!(field("subject_token_type"), Some(ACCESS_TOKEN_TYPE | JWT_TOKEN_TYPE)) {
        return invalid_request(format!(
            "subject_token_type must be {ACCESS_TOKEN_TYPE} or {JWT_TOKEN_TYPE}"
        ));
    }
    if field("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE && t != JWT_TOKEN_TYPE) {
        return invalid_request(format!("requested_token_type must be {ACCESS_TOKEN_TYPE}"));
    }
    let audience = match (field("resource"), field("audience")) {
        (Some(a), Some(b)) if a != b => {
            return invalid_request("resource and audience name different targets");
        }
        (Some(target), _) | (None, Some(target)) => target.to_owned(),
        (None, None) => return invalid_request("name the domain: resource=urn:woori-mesh:domain:<domain>"),
    };
    let Some(domain) = domain_of(&audience) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            format!("`{audience}` is no domain of the mesh; name one as urn:woori-mesh:domain:<domain>"),
        );
    };
    let principal = match exchange.verifier.verify(Some(&format!("Bearer {subject_token}"))).await {
        Ok(principal) => principal,
        Err(error) => return invalid_request(format!("the subject token is not accepted: {error}")),
    };
    match exchange.catalog.has_domain(domain).await {
        Ok(true) => {}
        Ok(false) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                format!("no domain `{domain}` has products in this catalog (mesh domains lists them)"),
            );
        }
        Err(error) => {
            let status = tonic::Status::from(error);
            return refused(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", status.message());
        }
    }
    let (token, ttl) = match mint(&exchange.issuer, &principal, subject_token, &audience) {
        Ok(minted) => minted,
        Err(error) => return invalid_request(error),
    };
    tracing::info!(caller = %principal.subject, %domain, "token exchanged for a domain");
    let body = json!({
        "access_token": token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
    });
    ([(http::header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}
