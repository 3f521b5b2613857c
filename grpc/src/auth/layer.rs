//! The authentication layer of the one server builder: every call must
//! carry a bearer token the service's [`Verifier`] accepts, except health
//! and reflection (orchestrators and grpcurl need them), each of which can
//! be closed too, paths a service declares public (pages with their own
//! sign-in, the OpenAPI document) and CORS preflight requests (browsers send
//! them without credentials). The verified [`Principal`] rides in the
//! request's extensions for the service to authorize with. A REST request
//! refused gets a JSON error, a gRPC call a gRPC status.

use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::body::Body;

use crate::auth::{Principal, Verifier};
use crate::unary::BoxFuture;

/// Path prefixes of the health service and of reflection v1 and v1alpha.
const HEALTH: &str = "/grpc.health.v1.Health/";
const REFLECTION: [&str; 2] =
    ["/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"];

/// Which calls need a token, and who checks it; without a verifier every
/// call passes (a service not configured for authentication).
#[derive(Debug, Clone, Default)]
pub struct Authenticate {
    verifier: Option<Arc<Verifier>>,
    close_health: bool,
    close_reflection: bool,
    public: Vec<&'static str>,
    documents: Vec<&'static str>,
    open_metrics: bool,
    metrics: Option<crate::metrics::Metrics>,
}

impl Authenticate {
    /// Requires tokens `verifier` accepts on every call but health and reflection.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self {
            verifier: Some(verifier),
            close_health: false,
            close_reflection: false,
            public: Vec::new(),
            documents: Vec::new(),
            open_metrics: false,
            metrics: None,
        }
    }

    /// Serves `paths` without a token: each is a path, and a path other
    /// than `/` covers everything below it too (`/catalog` covers
    /// `/catalog/products/x`).
    pub fn public(mut self, paths: &[&'static str]) -> Self {
        self.public.extend_from_slice(paths);
        self
    }

    /// Serves `paths` (documents describing the service, such as its
    /// OpenAPI document) as reflection is served: without a token unless
    /// reflection is closed too.
    pub fn documents(mut self, paths: &[&'static str]) -> Self {
        self.documents.extend_from_slice(paths);
        self
    }

    /// The verifier checking tokens; none when every call passes.
    pub fn verifier(&self) -> Option<Arc<Verifier>> {
        self.verifier.clone()
    }

    /// Serves `/metrics` without a token (`open`; --insecure-open-metrics).
    pub fn open_metrics(mut self, open: bool) -> Self {
        self.open_metrics = open;
        self
    }

    /// Whether `/metrics` is served without a token.
    pub fn metrics_open(&self) -> bool {
        self.open_metrics
    }

    /// Counts the tokens refused, by reason, into `metrics`.
    pub fn count_refusals(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Requires a token for health (`close`) too.
    pub fn close_health(mut self, close: bool) -> Self {
        self.close_health = close;
        self
    }

    /// Requires a token for reflection (`close`) too.
    pub fn close_reflection(mut self, close: bool) -> Self {
        self.close_reflection = close;
        self
    }

    /// Whether `request` passes without a token. Decided by its path (and
    /// content type), never by its method alone: a gRPC service answers
    /// whatever the method, so an `OPTIONS` request passes only as a CORS
    /// preflight to a path that is not a gRPC method (and then without its
    /// body, see [`is_preflight`]).
    fn is_open<B>(&self, request: &http::Request<B>) -> bool {
        let path = request.uri().path();
        if !crate::rest::is_grpc(request) {
            return (is_preflight(request) && !is_grpc_method(path))
                || (self.open_metrics && path == crate::metrics::METRICS_PATH)
                || (!self.close_reflection && self.documents.contains(&path))
                || self.public.iter().any(|p| {
                    path == *p
                        || (*p != "/" && path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/')))
                });
        }
        (!self.close_health && path.starts_with(HEALTH))
            || (!self.close_reflection && REFLECTION.iter().any(|prefix| path.starts_with(prefix)))
    }
}

/// A CORS preflight: `OPTIONS` with the headers browsers send before a
/// cross-origin call. Browsers send it without credentials; the CORS layer
/// of a REST router answers it (a router without one answers 405).
fn is_preflight<B>(request: &http::Request<B>) -> bool {
    request.method() == http::Method::OPTIONS
        && request.headers().contains_key(http::header::ORIGIN)
        && request.headers().contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Whether `path` names a gRPC method (`/package.Service/Method`), which a
/// gRPC router serves whatever the request's method and content type.
fn is_grpc_method(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(service, _)| service.contains('.'))
}

impl<S> tower::Layer<S> for Authenticate {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated { inner, auth: self.clone() }
    }
}

/// A service behind [`Authenticate`].
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: Authenticate,
}

impl<S> tower::Service<http::Request<Body>> for Authenticated<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The clone is ready only if the original was: swap them.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if self.auth.is_open(&request) {
            if is_preflight(&request) {
                // A preflight carries nothing a handler should read.
                *request.body_mut() = Body::empty();
            }
            return Box::pin(inner.call(request));
        }
        let Some(verifier) = self.auth.verifier.as_ref() else {
            // A service started with --insecure-no-auth: every caller may do anything.
            request.extensions_mut().insert(Principal::anonymous_admin());
            return Box::pin(inner.call(request));
        };
        let verifier = Arc::clone(verifier);
        let metrics = self.auth.metrics.clone();
        let header =
            request.headers().get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("").to_owned());
        Box::pin(async move {
            match verifier.verify(header.as_deref()).await {
                Ok(principal) => {
                    if let Some(expiry) = header.as_deref().and_then(token_expiry) {
                        request.extensions_mut().insert(expiry);
                    }
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(error) => {
                    tracing::info!(path = request.uri().path(), %error, "call refused");
                    if let Some(metrics) = &metrics {
                        metrics.auth_refused(error.reason());
                    }
                    let status = Status::from(error);
                    if crate::rest::is_grpc(&request) {
                        Ok(status.into_http())
                    } else {
                        Ok(crate::rest::error_response(&status).map(Body::new))
                    }
                }
            }
        })
    }
}

/// When the token a request was authenticated with expires: a call that
/// lasts (a stream of events) ends then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenExpiry(pub std::time::SystemTime);

/// The `exp` of the bearer token in `header`, read once the token has been
/// verified (so its payload is what its issuer signed).
fn token_expiry(header: &str) -> Option<TokenExpiry> {
    use base64::Engine;
    let token = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer "))?.trim();
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let exp = serde_json::from_slice::<serde_json::Value>(&bytes).ok()?["exp"].as_u64()?;
    Some(TokenExpiry(std::time::UNIX_EPOCH + std::time::Duration::from_secs(exp)))
}

/// The caller a request was authenticated as; UNAUTHENTICATED when the
/// request did not pass through [`Authenticate`] (never the case for a
/// service built with [`crate::MeshServer`]).
pub fn caller(extensions: &http::Extensions) -> Result<Principal, Status> {
    extensions
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("the call was not authenticated"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: http::Method, path: &str, grpc: bool) -> http::Request<()> {
        let mut request = http::Request::builder().method(method).uri(path).body(()).unwrap();
        if grpc {
            request.headers_mut().insert(http::header::CONTENT_TYPE, "application/grpc".parse().unwrap());
        }
        request
    }

    #[test]
    fn pages_documents_and_preflights_pass_as_configured() {
        let open = Authenticate::default().public(&["/", "/catalog"]).documents(&["/openapi.json"]);
        let get = |path: &str| request(http::Method::GET, path, false);
        assert!(
            open.is_open(&get("/")) && open.is_open(&get("/catalog")) && open.is_open(&get("/catalog/x"))
        );
        assert!(!open.is_open(&get("/catalogue")) && !open.is_open(&get("/v1/products")));
        assert!(open.is_open(&get("/openapi.json")));
        let preflight = |path: &str| {
            let mut request = request(http::Method::OPTIONS, path, false);
            request.headers_mut().insert(http::header::ORIGIN, "https://a.example".parse().unwrap());
            request.headers_mut().insert(http::header::ACCESS_CONTROL_REQUEST_METHOD, "GET".parse().unwrap());
            request
        };
        assert!(open.is_open(&preflight("/v1/products")), "CORS preflight");
        assert!(!open.is_open(&request(http::Method::OPTIONS, "/v1/products", false)), "not a preflight");
        for path in
            ["/mesh.catalog.v1.CatalogService/GetProduct", "/woori.payment.v1.CardSpendingService/Describe"]
        {
            assert!(!open.is_open(&preflight(path)), "a preflight never reaches a gRPC method: {path}");
            assert!(!open.is_open(&request(http::Method::OPTIONS, path, false)), "{path}");
            assert!(!open.is_open(&request(http::Method::OPTIONS, path, true)), "{path}");
        }
        assert!(!open.is_open(&request(http::Method::POST, "/catalog", true)), "gRPC is never a page");
        assert!(open.is_open(&request(http::Method::POST, "/grpc.health.v1.Health/Check", true)));
        let closed = open.close_reflection(true);
        assert!(!closed.is_open(&get("/openapi.json")), "documents close with reflection");
        assert!(closed.is_open(&get("/catalog")));
    }
}
