//! The web catalog, served by the registry on its own port: search and
//! browse with facets, a page per product (metadata, endpoints, columns,
//! versions, quality, a lineage graph, agreements, requests and decisions)
//! and a data preview the browser fetches from the owning domain itself.
//! Pages are rendered on the server from compiled templates; the style
//! sheet and the one script are in the binary. People sign in through the
//! IdP, a one-time link or a pasted token; the session is an HttpOnly,
//! SameSite=Strict cookie and every form carries a CSRF token.

mod actions;
mod config;
mod lineage;
mod links;
mod oidc;
mod pages;
mod product_view;
mod session;
mod signin;
mod view;

use std::sync::Arc;

use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode};
use mesh_grpc::auth::{Principal, Verifier};

pub use config::WebArgs;
pub use links::{LINK_TTL, SignInLinks};

use crate::access::Access;
use crate::service::Catalog;
use session::{COOKIE, Session, Sessions};

/// The path of the catalog's pages: everything below it is the web
/// catalog, which signs people in itself.
pub const WEB_PATH: &str = "/catalog";
/// The most bytes a form may send.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// What the pages share.
pub(crate) struct Web {
    catalog: Catalog,
    access: Access,
    events: crate::events::Events,
    /// Checks the session's token on every request; none when the registry
    /// runs without authentication.
    verifier: Option<Arc<Verifier>>,
    sessions: Sessions,
    links: SignInLinks,
    oidc: Option<oidc::WebOidc>,
    base_url: Option<String>,
    tls: bool,
    /// Signs the domain tokens the previews read with, when the registry
    /// exchanges tokens.
    exchange_issuer: Option<Arc<mesh_grpc::auth::issuer::LocalIssuer>>,
}

/// The registry's services the web catalog shows.
#[derive(Debug, Clone)]
pub struct Backends {
    /// Products.
    pub catalog: Catalog,
    /// Agreements.
    pub access: Access,
    /// The event log.
    pub events: crate::events::Events,
}

/// The web catalog's routes.
pub fn router(
    Backends { catalog, access, events }: Backends,
    verifier: Option<Arc<Verifier>>,
    args: &WebArgs,
    oidc_issuer: Option<&str>,
    tls: bool,
    exchange_issuer: Option<Arc<mesh_grpc::auth::issuer::LocalIssuer>>,
) -> crate::error::Result<axum::Router> {
    let oidc = match (&args.web_oidc_client_id, args.web_oidc_issuer.as_deref().or(oidc_issuer)) {
        (Some(client_id), Some(issuer)) => {
            let secret = match &args.web_oidc_client_secret_file {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| {
                            crate::error::RegistryError::Config(format!(
                                "--web-oidc-client-secret-file {}: {e}",
                                path.display()
                            ))
                        })?
                        .trim()
                        .to_owned(),
                ),
                None => None,
            };
            let client = oidc::WebOidc::new(
                issuer.to_owned(),
                client_id.clone(),
                secret,
                args.web_oidc_scopes.clone(),
            )
            .map_err(|e| crate::error::RegistryError::Config(e.to_string()))?;
            Some(client)
        }
        (Some(_), None) => {
            return Err(crate::error::RegistryError::Config(
                "--web-oidc-client-id needs an IdP: give --web-oidc-issuer URL or --auth-oidc-issuer URL"
                    .into(),
            ));
        }
        _ => None,
    };
    let web = Arc::new(Web {
        catalog,
        access,
        events,
        verifier,
        sessions: Sessions::new(args.web_session_ttl),
        links: args.sign_in_links.clone(),
        oidc,
        base_url: args.web_url.as_ref().map(|u| u.trim_end_matches('/').to_owned()),
        tls,
        exchange_issuer,
    });
    Ok(axum::Router::new()
        .route("/", get(|| async { Redirect::to(WEB_PATH) }))
        .route(WEB_PATH, get(pages::search))
        .route("/catalog/products/{id}", get(pages::product))
        .route("/catalog/products/{id}/contract.odcs.yaml", get(pages::odcs))
        .route("/catalog/products/{id}/product.odps.yaml", get(pages::odps))
        .route("/catalog/products/{id}/access", post(actions::request_access))
        .route("/catalog/agreements/{id}/{decision}", post(actions::decide))
        .route("/catalog/signin", get(signin::page).post(signin::with_token))
        .route("/catalog/signin/link", get(signin::with_link))
        .route("/catalog/signin/oidc", get(signin::with_idp))
        .route("/catalog/auth/callback", get(signin::callback))
        .route("/catalog/signout", post(signin::sign_out))
        .route("/catalog/session/token", get(signin::session_token))
        .route("/catalog/assets/{file}", get(asset))
        .route("/catalog/{*rest}", get(not_found))
        .with_state(web))
}

/// A signed-in visitor.
pub(crate) struct Visitor {
    principal: Principal,
    session: Session,
    /// The session cookie's value.
    cookie: String,
}

impl Web {
    /// The visitor of `headers`, if signed in with a token that still
    /// verifies (a session whose token expired ends). Without
    /// authentication, everyone is an admin with a session of their own.
    async fn visitor(&self, headers: &HeaderMap) -> Option<Visitor> {
        let cookie = session::cookie(headers, COOKIE, self.tls)?;
        let session = self.sessions.get(&cookie)?;
        let principal = match &self.verifier {
            None => Principal::anonymous_admin(),
            Some(verifier) => match verifier.verify(Some(&format!("Bearer {}", session.token))).await {
                Ok(principal) => principal,
                Err(error) => {
                    tracing::info!(%error, "web session ended: its token no longer verifies");
                    self.sessions.end(&cookie);
                    return None;
                }
            },
        };
        Some(Visitor { principal, session, cookie })
    }

    /// The visitor, or the answer sending them to sign in (and back to
    /// `path` after).
    async fn signed_in(&self, headers: &HeaderMap, path: &str) -> Result<Visitor, Response> {
        if let Some(visitor) = self.visitor(headers).await {
            return Ok(visitor);
        }
        if self.verifier.is_none() {
            // No authentication: a session is made on the spot.
            // Each browser its own owner: nobody is anyone to bound.
            let cookie = self.sessions.start(String::new(), (String::new(), session::random_token()));
            let mut response = Redirect::to(path).into_response();
            self.set_session_cookie(&mut response, &cookie);
            return Err(response);
        }
        let next: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
        Err(Redirect::to(&format!("/catalog/signin?next={next}")).into_response())
    }

    /// Sets the session cookie on `response`.
    fn set_session_cookie(&self, response: &mut Response, value: &str) {
        let cookie = session::set_cookie(COOKIE, value, "Strict", self.tls, self.sessions.ttl());
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(http::header::SET_COOKIE, value);
        }
    }

    /// The catalog's base URL as `headers` reached it (or --web-url).
    fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(base) = &self.base_url {
            return base.clone();
        }
        let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
        format!("{}://{host}", if self.tls { "https" } else { "http" })
    }
}

/// `path` if it is a page of the catalog (so a sign-in never sends anyone
/// elsewhere), else the catalog's front page.
fn local_path(path: &str) -> String {
    let safe = (path == WEB_PATH || path.starts_with("/catalog/") || path.starts_with("/catalog?"))
        && !path.contains("//")
        && !path.contains('\\')
        && path.chars().all(|c| c.is_ascii_graphic());
    if safe { path.to_owned() } else { WEB_PATH.to_owned() }
}

/// An HTML page with the headers every page gets: no caching, no framing,
/// no referrer outside the catalog (and so a true Origin on its forms),
/// scripts and styles only from the catalog, and fetches only
/// to the catalog and `connect` (the domains a preview reads).
fn html(status: StatusCode, body: String, connect: &[String]) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(http::header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(http::header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'{}; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        connect.iter().map(|origin| format!(" {origin}")).collect::<String>()
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(http::header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// A page saying what went wrong, with a way back.
fn message_page(status: StatusCode, heading: &str, message: &str, visitor: Option<&Visitor>) -> Response {
    let page = view::MessagePage {
        chrome: view::Chrome::of(visitor, None),
        heading: heading.to_owned(),
        message: message.to_owned(),
        back: WEB_PATH.to_owned(),
        back_label: "Back to the catalog".to_owned(),
    };
    render(status, &page, &[])
}

/// Renders `template` as an HTML page.
fn render(status: StatusCode, template: &impl askama::Template, connect: &[String]) -> Response {
    match template.render() {
        Ok(body) => html(status, body, connect),
        Err(error) => {
            let status = mesh_grpc::internal_status("rendering a page", &error);
            html(StatusCode::INTERNAL_SERVER_ERROR, format!("<p>{}</p>", status.message()), &[])
        }
    }
}

/// `GET /catalog/assets/{file}`: the style sheet and the script, from the binary.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "catalog.css" => (include_str!("../../assets/catalog.css"), "text/css; charset=utf-8"),
        "catalog.js" => (include_str!("../../assets/catalog.js"), "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    headers.insert(http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Any other page.
async fn not_found(
    axum::extract::State(web): axum::extract::State<Arc<Web>>,
    headers: HeaderMap,
) -> Response {
    let visitor = web.visitor(&headers).await;
    message_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page in the catalog.",
        visitor.as_ref(),
    )
}

/// A submitted form's fields, in order, read from a body of at most
/// [`MAX_FORM_BYTES`] (a larger one is answered 413 before any handler runs).
struct Form(Vec<(String, String)>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, _: &S) -> Result<Self, Response> {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES).await.map_err(|_| {
            html(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("<p>The form is larger than {MAX_FORM_BYTES} bytes.</p>"),
                &[],
            )
        })?;
        Ok(Form(form_urlencoded::parse(&bytes).into_owned().collect()))
    }
}

impl Form {
    /// The first value of field `name`.
    fn field(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// Every value of field `name` (checkboxes), in order.
    fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(key, _)| key == name).map(|(_, value)| value.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_catalog_pages_are_followed_after_sign_in() {
        assert_eq!(
            local_path("/catalog/products/payment.card_spending"),
            "/catalog/products/payment.card_spending"
        );
        assert_eq!(local_path("/catalog?q=seoul"), "/catalog?q=seoul");
        for hostile in [
            "https://evil.example",
            "//evil.example",
            "/catalog//evil",
            "/catalogue",
            "/catalog/\\evil",
            "/v1/x",
        ] {
            assert_eq!(local_path(hostile), "/catalog", "{hostile}");
        }
    }
}
