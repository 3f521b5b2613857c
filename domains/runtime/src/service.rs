//! The gRPC side of a product service: `Query`, `Describe` and any extra
//! unary methods, routed by path and served with the pass-through codec.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use mesh_contracts::product::QueryRequest;
use prost::Message;
use tokio_stream::wrappers::ReceiverStream;
use tonic::server::{Grpc, ServerStreamingService, UnaryService};
use tonic::{Request, Response, Status};

use crate::codec::RawCodec;
use crate::product::Product;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An extra unary method of a product service: encoded request in,
/// encoded response out.
pub type UnaryHandler = Arc<dyn Fn(Bytes) -> BoxFuture<Result<Bytes, Status>> + Send + Sync>;

/// Serves one product's service.
#[derive(Clone)]
pub struct ProductService {
    product: Arc<Product>,
    extra: Arc<HashMap<String, UnaryHandler>>,
}

impl ProductService {
    /// Serves `product` with `Query` and `Describe`, plus `extra` methods by name.
    pub fn new(product: Arc<Product>, extra: HashMap<String, UnaryHandler>) -> Self {
        Self { product, extra: Arc::new(extra) }
    }

    /// The full name of the service, e.g. `woori.payment.v1.CardSpendingService`.
    pub fn name(&self) -> &'static str {
        self.product.spec.service
    }

    /// The product served.
    pub fn product(&self) -> Arc<Product> {
        Arc::clone(&self.product)
    }
}

struct QueryMethod(Arc<Product>);

impl ServerStreamingService<Bytes> for QueryMethod {
    type Response = Bytes;
    type ResponseStream = ReceiverStream<Result<Bytes, Status>>;
    type Future = BoxFuture<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let product = Arc::clone(&self.0);
        Box::pin(async move {
            let caller = request.remote_addr().map(|a| a.to_string()).unwrap_or_default();
            let query = QueryRequest::decode(request.into_inner()).map_err(|e| {
                Status::invalid_argument(format!("request is not a mesh.product.v1.QueryRequest: {e}"))
            })?;
            tracing::debug!(product = product.spec.id, %caller, filter = %query.filter, limit = query.limit, "query");
            let receiver = product.query(&query, &caller).map_err(|error| {
                tracing::info!(product = product.spec.id, %caller, %error, "query refused");
                Status::from(error)
            })?;
            Ok(Response::new(ReceiverStream::new(receiver)))
        })
    }
}

struct UnaryMethod(BoxFnOnce);
type BoxFnOnce = Box<dyn FnOnce(Bytes) -> BoxFuture<Result<Bytes, Status>> + Send>;

impl UnaryService<Bytes> for UnaryMethod {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let handler = std::mem::replace(
            &mut self.0,
            Box::new(|_| Box::pin(async { Err(Status::internal("called twice")) })),
        );
        Box::pin(async move { handler(request.into_inner()).await.map(Response::new) })
    }
}

/// One unary method served on a route of its own with the pass-through
/// codec: the handler takes the encoded request and answers encoded bytes.
#[derive(Clone)]
pub struct RawUnaryRoute(UnaryHandler);

impl RawUnaryRoute {
    /// Serves `handler`.
    pub fn new(handler: UnaryHandler) -> Self {
        Self(handler)
    }
}

impl tower::Service<http::Request<axum::body::Body>> for RawUnaryRoute {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let handler = Arc::clone(&self.0);
        let method = UnaryMethod(Box::new(move |bytes| handler(bytes)));
        Box::pin(async move { Ok(Grpc::new(RawCodec).unary(method, request).await) })
    }
}

impl tower::Service<http::Request<axum::body::Body>> for ProductService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let method = request.uri().path().rsplit('/').next().unwrap_or_default().to_owned();
        let product = Arc::clone(&self.product);
        let extra = self.extra.get(&method).cloned();
        Box::pin(async move {
            let mut grpc = Grpc::new(RawCodec);
            let response = match method.as_str() {
                "Query" => grpc.server_streaming(QueryMethod(product), request).await,
                "Describe" => {
                    let describe: BoxFnOnce = Box::new(move |_request| {
                        Box::pin(async move {
                            let described = tokio::task::spawn_blocking(move || product.describe())
                                .await
                                .map_err(|e| Status::internal(e.to_string()))?
                                .map_err(Status::from)?;
                            Ok(Bytes::from(described.encode_to_vec()))
                        })
                    });
                    grpc.unary(UnaryMethod(describe), request).await
                }
                _ => match extra {
                    Some(handler) => {
                        grpc.unary(UnaryMethod(Box::new(move |bytes| handler(bytes))), request).await
                    }
                    None => Status::unimplemented(format!("method `{method}` is not served")).into_http(),
                },
            };
            Ok(response)
        })
    }
}
