//! The call meter: the outermost layer of every mesh server, counting each
//! call once it has ended (a stream when its last frame is sent, or when
//! the client goes away: `CANCELLED`) with its code and duration.
//!
//! Label values are bounded: a gRPC call is labelled with its service and
//! method only when the server serves that method ([`KnownMethods`]), an
//! HTTP request with the route it matched ([`Route`], a template such as
//! `/v1/products/{product}/rows`); anything else is `other`, so a caller
//! inventing paths adds no series.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;

use super::Metrics;
use crate::unary::BoxFuture;

/// The label of what the meter does not know.
const OTHER: &str = "other";
/// The service label of plain HTTP requests (REST, pages, `/metrics`).
const HTTP: &str = "http";
/// The code of an HTTP response whose client went away before its end
/// (as proxies log it).
const HTTP_CLIENT_GONE: &str = "499";
/// The code of an HTTP response the server cut after its headers.
const HTTP_CUT: &str = "500";

/// Services whose methods are known whatever the descriptors say: health,
/// reflection and Arrow Flight.
const STANDARD: [(&str, &[&str]); 4] = [
    ("grpc.health.v1.Health", &["Check", "Watch"]),
    ("grpc.reflection.v1.ServerReflection", &["ServerReflectionInfo"]),
    ("grpc.reflection.v1alpha.ServerReflection", &["ServerReflectionInfo"]),
    (
        "arrow.flight.protocol.FlightService",
        &[
            "Handshake",
            "ListFlights",
            "GetFlightInfo",
            "PollFlightInfo",
            "GetSchema",
            "DoGet",
            "DoPut",
            "DoExchange",
            "DoAction",
            "ListActions",
        ],
    ),
];

/// What every mesh server serves: health and reflection.
pub const ALWAYS_SERVED: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The gRPC methods a server answers, as `service/Method`: the label
/// values calls may get. Methods are known from the descriptor sets the
/// server is given, and count once the server serves their service.
#[derive(Debug, Clone, Default)]
pub struct KnownMethods {
    described: HashMap<String, Vec<String>>,
    methods: HashSet<Arc<str>>,
}

impl KnownMethods {
    /// The methods of the standard services and of every service described
    /// in `descriptor_sets` (sets that do not decode add nothing); none served yet.
    pub fn new(descriptor_sets: &[&[u8]]) -> Self {
        let mut known = Self::default();
        for (service, methods) in STANDARD {
            known.described.insert(service.to_owned(), methods.iter().map(|m| (*m).to_owned()).collect());
        }
        for set in descriptor_sets {
            let Ok(pool) = prost_reflect::DescriptorPool::decode(*set) else { continue };
            for service in pool.services() {
                let methods = service.methods().map(|m| m.name().to_owned()).collect();
                known.described.insert(service.full_name().to_owned(), methods);
            }
        }
        known
    }

    /// The server serves `service`: its described methods become labels.
    pub fn serve(&mut self, service: &str) {
        let methods = self.described.get(service).cloned().unwrap_or_default();
        self.add(service, methods);
    }

    /// The server serves `service`'s `methods`.
    pub fn add<M: AsRef<str>>(&mut self, service: &str, methods: impl IntoIterator<Item = M>) {
        for method in methods {
            self.methods.insert(Arc::from(format!("{service}/{}", method.as_ref())));
        }
    }

    /// The service and method labels of a gRPC call to `path`.
    fn labels(&self, path: &str) -> (Arc<str>, Arc<str>) {
        let path = path.strip_prefix('/').unwrap_or(path);
        match self.methods.get(path).and_then(|known| known.split_once('/')) {
            Some((service, method)) => (Arc::from(service), Arc::from(method)),
            None => (Arc::from(OTHER), Arc::from(OTHER)),
        }
    }
}

/// The route template an HTTP request matched, left in the response's
/// extensions by the router's route layer for the meter to read.
#[derive(Debug, Clone)]
pub struct Route(pub Arc<str>);

/// The layer a router applies to its routes (`Router::route_layer`) so
/// that the meter can label each request with the route it matched.
#[derive(Debug, Clone, Copy, Default)]
pub struct MarkRoute;

impl<S> tower::Layer<S> for MarkRoute {
    type Service = RouteMarked<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RouteMarked { inner }
    }
}

/// A route behind [`MarkRoute`].
#[derive(Debug, Clone)]
pub struct RouteMarked<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<axum::body::Body>> for RouteMarked<S>
where
    S: tower::Service<http::Request<axum::body::Body>, Response = http::Response<B>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let route =
            request.extensions().get::<axum::extract::MatchedPath>().map(|m| Route(Arc::from(m.as_str())));
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            if let Some(route) = route {
                response.extensions_mut().insert(route);
            }
            Ok(response)
        })
    }
}

/// The layer counting calls into a [`Metrics`].
#[derive(Debug, Clone)]
pub struct CallMeter {
    metrics: Metrics,
    known: Arc<KnownMethods>,
}

impl CallMeter {
    /// Counts calls into `metrics`, labelling those `known` answers.
    pub fn new(metrics: Metrics, known: KnownMethods) -> Self {
        Self { metrics, known: Arc::new(known) }
    }
}

impl<S> tower::Layer<S> for CallMeter {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metered { inner, meter: self.clone() }
    }
}

/// A service behind [`CallMeter`].
#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
    meter: CallMeter,
}

impl<S> tower::Service<http::Request<Body>> for Metered<S>
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

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let started = Instant::now();
        let grpc = crate::rest::is_grpc(&request);
        let labels = grpc.then(|| self.meter.known.labels(request.uri().path()));
        let metrics = self.meter.metrics.clone();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let (service, method) = labels.unwrap_or_else(|| {
                let route = response.extensions().get::<Route>().map(|r| Arc::clone(&r.0));
                (Arc::from(HTTP), route.unwrap_or_else(|| Arc::from(OTHER)))
            });
            let mut call = Call { metrics, service, method, started, grpc };
            // A gRPC error answered in the headers alone (trailers-only).
            let code =
                if grpc { grpc_code(response.headers()) } else { Some(response.status().as_str().into()) };
            if let (true, Some(code)) = (grpc, &code) {
                call.end(code);
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let body = MeteredBody { inner: body, call: Some(call), http_code: code };
            Ok(http::Response::from_parts(parts, Body::new(body)))
        })
    }
}

/// The code name of the `grpc-status` in `headers`, if any.
fn grpc_code(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(crate::rest::status_name(tonic::Code::from_i32(value)).to_owned())
}

/// One call being answered, recorded once when it ends.
struct Call {
    metrics: Metrics,
    service: Arc<str>,
    method: Arc<str>,
    started: Instant,
    grpc: bool,
}

impl Call {
    fn end(&mut self, code: &str) {
        self.metrics.call(&self.service, &self.method, code, self.started.elapsed().as_secs_f64());
    }
}

/// A response body that records its call when its last frame has gone (or
/// when it is dropped before: the client went away).
struct MeteredBody {
    inner: Body,
    call: Option<Call>,
    /// The HTTP status of a plain HTTP response.
    http_code: Option<String>,
}

impl MeteredBody {
    fn end(&mut self, code: &str) {
        if let Some(mut call) = self.call.take() {
            call.end(code);
        }
    }

    fn is_grpc(&self) -> bool {
        self.call.as_ref().is_some_and(|c| c.grpc)
    }

    /// The code of a response that ended without a `grpc-status` trailer.
    fn ended_code(&self) -> String {
        match (&self.call, &self.http_code) {
            (Some(call), _) if call.grpc => "UNKNOWN".to_owned(),
            (_, Some(code)) => code.clone(),
            _ => OTHER.to_owned(),
        }
    }
}

impl http_body::Body for MeteredBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_code) {
                    self.end(&code);
                } else if self.inner.is_end_stream() {
                    // Its last frame: the server may never poll again.
                    let code = self.ended_code();
                    self.end(&code);
                }
            }
            Poll::Ready(Some(Err(status))) => {
                // An HTTP body cut by the server counts as its failure.
                let code = if self.is_grpc() { crate::rest::status_name(status.code()) } else { HTTP_CUT };
                self.end(code);
            }
            Poll::Ready(None) => {
                let code = self.ended_code();
                self.end(&code);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        // Dropped before its end: the client went away.
        let code = if self.is_grpc() { "CANCELLED" } else { HTTP_CLIENT_GONE };
        self.end(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_methods_the_server_answers_are_labels() {
        let mut known = KnownMethods::new(&[]);
        let (service, method) = known.labels("/arrow.flight.protocol.FlightService/DoGet");
        assert_eq!((&*service, &*method), (OTHER, OTHER), "described, not served");
        known.serve("arrow.flight.protocol.FlightService");
        let (service, method) = known.labels("/arrow.flight.protocol.FlightService/DoGet");
        assert_eq!((&*service, &*method), ("arrow.flight.protocol.FlightService", "DoGet"));
        for invented in ["/arrow.flight.protocol.FlightService/Nope", "/x.Y/Z", "/", "", "//"] {
            let (service, method) = known.labels(invented);
            assert_eq!((&*service, &*method), (OTHER, OTHER), "{invented}");
        }
    }
}
