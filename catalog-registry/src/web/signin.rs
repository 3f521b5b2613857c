//! Signing in and out: through the IdP (authorization code with PKCE),
//! with a one-time link, or with a pasted token; each ends in a session
//! whose token the services verify like any other. The token reaches page
//! scripts only through `/catalog/session/token`, for previews.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use mesh_grpc::rest::{JSON, RestError, ok_response};
use tonic::Status;

use super::session::{COOKIE, random_token, same_secret, set_cookie};
use super::view::{Chrome, RedirectPage, SignInPage};
use super::{Form, Web, local_path, render};

/// The cookie tying a sign-in form to its browser (double submit).
const SIGNIN_COOKIE: &str = "mesh_signin";
/// The cookie tying an IdP sign-in to its browser (SameSite=Lax: the IdP
/// sends the browser back with a cross-site navigation).
const OIDC_COOKIE: &str = "mesh_oidc";
/// The header a page script sends to read the session's token.
const SCRIPT_HEADER: &str = "x-mesh-catalog";

fn query(raw: Option<String>) -> BTreeMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

fn add_cookie(response: &mut Response, cookie: String) {
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(http::header::SET_COOKIE, value);
    }
}

/// The sign-in page, with `error` on top.
fn sign_in_page(web: &Web, status: StatusCode, next: &str, error: Option<String>) -> Response {
    let csrf = random_token();
    let page = SignInPage {
        chrome: Chrome::of(None, None),
        idp: web.oidc.as_ref().map(|o| o.issuer().to_owned()),
        csrf: csrf.clone(),
        next: local_path(next),
        error,
    };
    let mut response = render(status, &page, &[]);
    add_cookie(&mut response, set_cookie(SIGNIN_COOKIE, &csrf, "Strict", web.tls, Duration::from_secs(3600)));
    response
}

/// The sign-in page saying why signing in did not work.
fn refused(web: &Web, status: StatusCode, next: &str, message: String) -> Response {
    sign_in_page(web, status, next, Some(message))
}

/// Starts a session for `token` if it verifies; the response sends the
/// browser on (`page`: by a page of the catalog's own, after an IdP).
async fn start_session(web: &Web, token: String, next: &str, page: bool) -> Result<Response, String> {
    let mut owner = (String::new(), String::new());
    if let Some(verifier) = &web.verifier {
        let principal = verifier
            .verify(Some(&format!("Bearer {token}")))
            .await
            .map_err(|e| Status::from(e).message().to_owned())?;
        tracing::info!(caller = %principal.subject, "signed in to the web catalog");
        owner = (principal.issuer, principal.subject);
    }
    let cookie = web.sessions.start(token, owner);
    let next = local_path(next);
    let mut response = if page {
        render(StatusCode::OK, &RedirectPage { next }, &[])
    } else {
        Redirect::to(&next).into_response()
    };
    web.set_session_cookie(&mut response, &cookie);
    Ok(response)
}

/// `GET /catalog/signin?next=`.
pub(super) async fn page(
    State(web): State<Arc<Web>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = query(raw);
    let next = params.get("next").map_or("/catalog", String::as_str);
    if web.visitor(&headers).await.is_some() {
        return Redirect::to(&local_path(next)).into_response();
    }
    sign_in_page(&web, StatusCode::OK, next, None)
}

/// `POST /catalog/signin`: a pasted token.
pub(super) async fn with_token(State(web): State<Arc<Web>>, headers: HeaderMap, fields: Form) -> Response {
    let next = fields.field("next").unwrap_or("/catalog").to_owned();
    let expected = super::session::cookie(&headers, SIGNIN_COOKIE, web.tls);
    let sent = fields.field("csrf").unwrap_or_default();
    if expected.is_none_or(|expected| !same_secret(&expected, sent)) {
        let error = "The sign-in form expired or came from elsewhere; try again.".to_owned();
        return sign_in_page(&web, StatusCode::FORBIDDEN, &next, Some(error));
    }
    let token =
        fields.field("token").unwrap_or_default().trim().trim_start_matches("Bearer ").trim().to_owned();
    if token.is_empty() {
        return sign_in_page(&web, StatusCode::BAD_REQUEST, &next, Some("Paste a token first.".to_owned()));
    }
    match start_session(&web, token, &next, false).await {
        Ok(mut response) => {
            add_cookie(&mut response, set_cookie(SIGNIN_COOKIE, "", "Strict", web.tls, Duration::ZERO));
            response
        }
        Err(message) => {
            refused(&web, StatusCode::UNAUTHORIZED, &next, format!("The token was refused: {message}"))
        }
    }
}

/// `GET /catalog/signin/link?code=`: a one-time link.
pub(super) async fn with_link(State(web): State<Arc<Web>>, RawQuery(raw): RawQuery) -> Response {
    let params = query(raw);
    let Some(token) = params.get("code").and_then(|code| web.links.redeem(code)) else {
        let error =
            "This sign-in link was already used or has expired (links last 15 minutes and work once). \
                     Sign in with a token (`mesh token print`) instead."
                .to_owned();
        return sign_in_page(&web, StatusCode::UNAUTHORIZED, "/catalog", Some(error));
    };
    match start_session(&web, token, "/catalog", false).await {
        Ok(response) => response,
        Err(message) => refused(
            &web,
            StatusCode::UNAUTHORIZED,
            "/catalog",
            format!("The link's token was refused: {message}"),
        ),
    }
}

/// `GET /catalog/signin/oidc?next=`: off to the IdP.
pub(super) async fn with_idp(
    State(web): State<Arc<Web>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = query(raw);
    let next = local_path(params.get("next").map_or("/catalog", String::as_str));
    let Some(oidc) = &web.oidc else {
        return sign_in_page(
            &web,
            StatusCode::NOT_FOUND,
            &next,
            Some("No IdP is configured for this catalog.".into()),
        );
    };
    let redirect_uri = format!("{}/catalog/auth/callback", web.base_url(&headers));
    match oidc.begin(&redirect_uri, next.clone()).await {
        Ok((url, state)) => {
            let mut response = Redirect::to(&url).into_response();
            add_cookie(
                &mut response,
                set_cookie(OIDC_COOKIE, &state, "Lax", web.tls, super::oidc::SIGN_IN_TTL),
            );
            response
        }
        Err(message) => {
            refused(&web, StatusCode::BAD_GATEWAY, &next, format!("The IdP could not be reached: {message}"))
        }
    }
}

/// `GET /catalog/auth/callback?code=&state=`: back from the IdP.
pub(super) async fn callback(
    State(web): State<Arc<Web>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = query(raw);
    let Some(oidc) = &web.oidc else {
        return sign_in_page(
            &web,
            StatusCode::NOT_FOUND,
            "/catalog",
            Some("No IdP is configured for this catalog.".into()),
        );
    };
    if let Some(error) = params.get("error") {
        let detail = params.get("error_description").map_or(error.as_str(), String::as_str);
        return refused(
            &web,
            StatusCode::UNAUTHORIZED,
            "/catalog",
            format!("The IdP did not sign you in: {detail}"),
        );
    }
    let (Some(code), Some(state)) = (params.get("code"), params.get("state")) else {
        return sign_in_page(
            &web,
            StatusCode::BAD_REQUEST,
            "/catalog",
            Some("The IdP's answer lacks its code or state.".into()),
        );
    };
    let redirect_uri = format!("{}/catalog/auth/callback", web.base_url(&headers));
    let cookie_state = super::session::cookie(&headers, OIDC_COOKIE, web.tls);
    let signed_in = match oidc.finish(state, cookie_state.as_deref(), code, &redirect_uri).await {
        Ok((token, next)) => start_session(&web, token, &next, true).await,
        Err(message) => Err(message),
    };
    match signed_in {
        Ok(mut response) => {
            add_cookie(&mut response, set_cookie(OIDC_COOKIE, "", "Lax", web.tls, Duration::ZERO));
            response
        }
        Err(message) => {
            refused(&web, StatusCode::UNAUTHORIZED, "/catalog", format!("Signing in failed: {message}"))
        }
    }
}

/// `POST /catalog/signout`.
pub(super) async fn sign_out(State(web): State<Arc<Web>>, headers: HeaderMap, fields: Form) -> Response {
    if let Some(visitor) = web.visitor(&headers).await
        && fields.field("csrf").is_some_and(|token| same_secret(token, &visitor.session.csrf))
    {
        web.sessions.end(&visitor.cookie);
    }
    let mut response = Redirect::to("/catalog/signin").into_response();
    add_cookie(&mut response, set_cookie(COOKIE, "", "Strict", web.tls, Duration::ZERO));
    response
}

/// `GET /catalog/session/token?domain=D`: a token for the page's own script
/// to read domain `D` with (it must send `x-mesh-catalog: 1`, which no other
/// site's page can without the catalog allowing it): one exchanged for that
/// domain alone. The session's own token never leaves the registry.
pub(super) async fn session_token(
    State(web): State<Arc<Web>>,
    uri: http::Uri,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    if headers.get(SCRIPT_HEADER).is_none() {
        return Err(RestError::new(Status::permission_denied(format!(
            "only the catalog's pages read this; send `{SCRIPT_HEADER}: 1`"
        ))));
    }
    let visitor = web.visitor(&headers).await.ok_or_else(|| {
        RestError::new(Status::unauthenticated("not signed in, or the session ended; sign in again"))
    })?;
    let domain = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(name, _)| name == "domain")
        .map(|(_, value)| value.into_owned());
    let Some(domain) = domain.filter(|d| !d.is_empty()) else {
        return Err(RestError::new(Status::invalid_argument(
            "name the domain the token is for: ?domain=payment (a token is good at one domain alone)",
        )));
    };
    let Some(issuer) = &web.exchange_issuer else {
        return Err(RestError::new(Status::failed_precondition(
            "this registry does not exchange tokens (start it with --token-exchange-issuer-dir), \
             so its pages cannot read a domain's rows",
        )));
    };
    let known = web.catalog.has_domain(&domain).await.map_err(|e| RestError::from(Status::from(e)))?;
    if !known {
        return Err(RestError::new(Status::not_found(format!(
            "no domain `{domain}` has products in this catalog"
        ))));
    }
    let audience = mesh_grpc::auth::exchange::domain_audience(&domain);
    let token = crate::exchange::mint(issuer, &visitor.principal, &visitor.session.token, &audience)
        .map_err(|e| RestError::new(Status::permission_denied(e)))?
        .0;
    let body = serde_json::json!({ "token": token, "subject": visitor.principal.subject });
    Ok(ok_response(JSON, body.to_string()))
}
