//! The one server builder every mesh service uses: reflection and health
//! routes, the service's own routes, and the transport settings (HTTP/2
//! windows, keepalive, `TCP_NODELAY`) in one place.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
pub use tonic_health::ServingStatus;
pub use tonic_health::server::HealthReporter;

use crate::error::Result;
use crate::metrics::{CallMeter, KnownMethods, MarkRoute, Metrics};
use crate::reflection::reflection_routes;
use crate::unary::{HttpRequest, HttpResponse};

/// HTTP/2 flow-control window per stream: large enough that a stream of
/// 256 KiB batches is not throttled by acknowledgements.
const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
/// HTTP/2 flow-control window per connection.
const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;
/// How often an idle connection is pinged, and how long a ping may go
/// unanswered before the connection is dropped.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Streams one HTTP/2 connection may have open at once; a client that
/// opens more waits for one to close (the services refuse data streams
/// well below this, with a message).
const MAX_CONCURRENT_STREAMS: u32 = 256;
/// TCP keepalive, so a peer that vanished without a FIN is noticed.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// How long shutdown waits for open calls when the service does not say.
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A mesh service's server, being assembled.
pub struct MeshServer {
    routes: Routes,
    health: HealthReporter,
    services: Vec<String>,
    shutdown_grace: Duration,
    tls: crate::tls::TlsArgs,
    authenticate: crate::auth::layer::Authenticate,
    public: Vec<&'static str>,
    documents: Vec<&'static str>,
    metrics: Metrics,
    metered: bool,
    known: KnownMethods,
}

impl std::fmt::Debug for MeshServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshServer").field("services", &self.services).finish_non_exhaustive()
    }
}

impl MeshServer {
    /// A server advertising `services` (full names, described in
    /// `descriptor_sets`: the mesh's own, and those of contracts compiled at
    /// start) through reflection v1 and v1alpha, with `grpc.health.v1.Health`.
    /// Each service is reported serving until the server begins to shut
    /// down.
    pub async fn new(descriptor_sets: &[&[u8]], services: &[&str]) -> Result<Self> {
        let (health, health_service) = tonic_health::server::health_reporter();
        for service in services {
            health.set_service_status(*service, ServingStatus::Serving).await;
        }
        let mut routes = reflection_routes(descriptor_sets, services)?.add_service(health_service);
        let mut known = KnownMethods::new(descriptor_sets);
        for service in services.iter().copied().chain(crate::metrics::ALWAYS_SERVED) {
            known.serve(service);
        }
        let router = std::mem::take(routes.axum_router_mut());
        *routes.axum_router_mut() = router.fallback(not_found);
        Ok(Self {
            routes,
            health,
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            tls: Default::default(),
            authenticate: Default::default(),
            public: Vec::new(),
            documents: Vec::new(),
            metrics: Metrics::new(),
            metered: true,
            known,
        })
    }

    /// Whether calls are counted and `/metrics` served (`metered`, the
    /// default); off only to measure what metrics cost.
    pub fn metered(mut self, metered: bool) -> Self {
        self.metered = metered;
        self
    }

    /// The service's metrics, served at `/metrics`: register the service's
    /// own families here (or hand their handles down) before serving.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Serves the HTTP routes of `router` (REST, pages) beside the gRPC
    /// services, on the same port, over HTTP/1.1 and HTTP/2, behind the
    /// same TLS and authentication.
    pub fn rest(mut self, router: axum::Router) -> Self {
        // Each request is labelled with the route it matched (see metrics).
        let router = if router.has_routes() { router.route_layer(MarkRoute) } else { router };
        let routes = std::mem::take(self.routes.axum_router_mut());
        *self.routes.axum_router_mut() = routes.merge(router);
        self
    }

    /// Serves the documents at `paths` (the OpenAPI document) as reflection
    /// is served: open to tools unless reflection is closed (--auth-reflection).
    pub fn documents(mut self, paths: &[&'static str]) -> Self {
        self.documents.extend_from_slice(paths);
        self
    }

    /// Serves `paths` (and what is below them) without a bearer token: pages
    /// that sign people in themselves, documents with nothing secret.
    pub fn public(mut self, paths: &[&'static str]) -> Self {
        self.public.extend_from_slice(paths);
        self
    }

    /// Requires tokens on calls as `authenticate` says (none by default).
    pub fn authenticate(mut self, authenticate: crate::auth::layer::Authenticate) -> Self {
        self.authenticate = authenticate;
        self
    }

    /// Serves TLS as `tls` says (plaintext when it names no certificate,
    /// refused on an address other than loopback unless it allows it).
    pub fn tls(mut self, tls: &crate::tls::TlsArgs) -> Self {
        self.tls = tls.clone();
        self
    }

    /// How long [`MeshServer::serve`] waits for open calls once shutdown
    /// begins before it returns anyway, cutting them.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The health reporter, for services whose health changes while serving.
    pub fn health(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Adds a generated (or any named) service on its `/<name>/*` routes.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.known.serve(S::NAME);
        self.routes = self.routes.add_service(service);
        self
    }

    /// Serves `path` with `service`. An exact path wins over a service's
    /// wildcard route, so this also overrides one method of a service added
    /// with [`MeshServer::add_service`]; a path ending in `/{*method}`
    /// serves every method of a service.
    pub fn route<S>(mut self, path: &str, service: S) -> Self
    where
        S: tower::Service<HttpRequest, Response = HttpResponse, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        // What the meter may name: one method, or every method of a service.
        if let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) {
            if method.contains('{') {
                self.known.serve(service);
            } else {
                self.known.add(service, [method]);
            }
        }
        let router = std::mem::take(self.routes.axum_router_mut());
        *self.routes.axum_router_mut() = router.route_service(path, service);
        self
    }

    /// Serves on `listener` until `shutdown` completes; then the services
    /// are reported not serving and in-flight calls are drained for at most
    /// the shutdown grace period, after which this returns and the calls
    /// still open are cut.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let addr = listener.local_addr()?;
        let tls = self.tls.acceptor()?;
        if tls.is_none() {
            self.tls.check_plaintext(addr)?;
        }
        tracing::info!(%addr, services = ?self.services, tls = tls.is_some(), "serving");
        let (health, services, grace) = (self.health, self.services, self.shutdown_grace);
        let authenticate = self
            .authenticate
            .public(&self.public)
            .documents(&self.documents)
            .count_refusals(self.metrics.clone());
        let mut routes = self.routes;
        if self.metered {
            let router = std::mem::take(routes.axum_router_mut());
            let endpoint = crate::metrics::endpoint_router(self.metrics.clone(), authenticate.metrics_open());
            *routes.axum_router_mut() = router.merge(endpoint);
        }
        let meter = self.metered.then(|| CallMeter::new(self.metrics, self.known));
        let (began, begun) = tokio::sync::oneshot::channel::<()>();
        let router = Server::builder()
            .accept_http1(true)
            .layer(tower::util::option_layer(meter))
            .layer(crate::telemetry::TraceCalls)
            .layer(authenticate)
            .initial_stream_window_size(Some(STREAM_WINDOW))
            .initial_connection_window_size(Some(CONNECTION_WINDOW))
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS))
            .add_routes(routes);
        let stopping = async {
            shutdown.await;
            for service in &services {
                health.set_service_status(service, ServingStatus::NotServing).await;
            }
            let _ = began.send(());
        };
        let serving: std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>> = match tls {
            Some(acceptor) => Box::pin(router.serve_with_incoming_shutdown(
                crate::tls_incoming::accept(incoming(listener), acceptor),
                stopping,
            )),
            None => Box::pin(router.serve_with_incoming_shutdown(incoming(listener), stopping)),
        };
        let deadline = async {
            match begun.await {
                Ok(()) => tokio::time::sleep(grace).await,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            served = serving => served?,
            () = deadline => {
                tracing::warn!(grace = ?grace, "calls still open after the shutdown grace period; cutting them");
            }
        }
        Ok(())
    }
}

/// What a path no route serves answers: UNIMPLEMENTED to a gRPC call, a
/// JSON 404 to anything else.
async fn not_found(request: http::Request<axum::body::Body>) -> http::Response<axum::body::Body> {
    if crate::rest::is_grpc(&request) {
        let (parts, ()) = tonic::Status::unimplemented("").into_http::<()>().into_parts();
        return http::Response::from_parts(parts, axum::body::Body::empty());
    }
    let path = crate::rest::escape_path(request.uri().path());
    crate::rest::error_response(&tonic::Status::not_found(format!(
        "nothing is served at {path}; see /openapi.json for the paths this service serves"
    )))
}

/// Listens on `addr`; the error names the address.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| crate::GrpcError::Bind { addr, source })
}

/// The connections `listener` accepts, with Nagle's algorithm off (a gRPC
/// answer is written as several small frames, and without `TCP_NODELAY`
/// each one after the first waits for the peer's delayed ACK, ~40 ms) and
/// TCP keepalive on.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(TCP_KEEPALIVE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_address_is_named_in_the_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let error = bind(addr).await.unwrap_err().to_string();
        assert!(error.starts_with(&format!("cannot listen on {addr}: ")), "{error}");
        assert!(bind("127.0.0.1:0".parse().unwrap()).await.is_ok());
    }
}
