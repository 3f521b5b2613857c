//! Unary methods served over the pass-through codec: the handler takes the
//! encoded request and answers encoded bytes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tonic::server::{Grpc, UnaryService};
use tonic::{Request, Response, Status};

use crate::codec::RawCodec;

/// A boxed future that can cross threads.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A unary method: encoded request in (with its metadata and extensions,
/// such as the caller's principal), encoded response out.
pub type UnaryHandler = Arc<dyn Fn(Request<Bytes>) -> BoxFuture<Result<Bytes, Status>> + Send + Sync>;

/// The HTTP request a route receives.
pub type HttpRequest = http::Request<axum::body::Body>;
/// The HTTP response a gRPC route answers.
pub type HttpResponse = http::Response<tonic::body::Body>;

/// Answers the gRPC request `request` with `handler`.
pub async fn serve_unary(handler: UnaryHandler, request: HttpRequest) -> HttpResponse {
    Grpc::new(RawCodec).unary(Once(Some(handler)), request).await
}

/// A handler used for one call.
struct Once(Option<UnaryHandler>);

impl UnaryService<Bytes> for Once {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let handler = self.0.take();
        Box::pin(async move {
            let handler = handler.ok_or_else(|| Status::internal("a unary method was called twice"))?;
            handler(request).await.map(Response::new)
        })
    }
}

/// One unary method served on a route of its own (see
/// [`crate::MeshServer::route`]).
#[derive(Clone)]
pub struct RawUnaryRoute(UnaryHandler);

impl RawUnaryRoute {
    /// Serves `handler`.
    pub fn new(handler: UnaryHandler) -> Self {
        Self(handler)
    }
}

impl tower::Service<HttpRequest> for RawUnaryRoute {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture<Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let handler = Arc::clone(&self.0);
        Box::pin(async move { Ok(serve_unary(handler, request).await) })
    }
}
