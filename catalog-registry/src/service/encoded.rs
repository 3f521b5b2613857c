//! GetProduct served over the pass-through codec: a cached answer goes out
//! as the bytes the cache holds, with no message built or encoded per call.
//! The catalog's other methods go through the generated server.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use mesh_contracts::catalog::GetProductRequest;
use mesh_domain_runtime::codec::RawCodec;
use prost::Message;
use tonic::server::{Grpc, UnaryService};
use tonic::{Request, Response, Status};

use super::Catalog;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The route path this service answers.
pub const GET_PRODUCT_PATH: &str = "/mesh.catalog.v1.CatalogService/GetProduct";

/// `mesh.catalog.v1.CatalogService/GetProduct`, answered from encoded bytes.
#[derive(Debug, Clone)]
pub struct EncodedGetProduct(Arc<Catalog>);

impl EncodedGetProduct {
    /// Answers GetProduct for `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Self(Arc::new(catalog))
    }
}

struct Method(Arc<Catalog>);

impl UnaryService<Bytes> for Method {
    type Response = Bytes;
    type Future = BoxFuture<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let catalog = Arc::clone(&self.0);
        Box::pin(async move {
            let request = GetProductRequest::decode(request.into_inner()).map_err(|e| {
                Status::invalid_argument(format!("request is not a mesh.catalog.v1.GetProductRequest: {e}"))
            })?;
            let name = request.name.clone();
            catalog.get_product_encoded(request).await.map(Response::new).map_err(|error| {
                tracing::debug!(product = %name, %error, "get product refused");
                Status::from(error)
            })
        })
    }
}

impl tower::Service<http::Request<axum::body::Body>> for EncodedGetProduct {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let method = Method(Arc::clone(&self.0));
        Box::pin(async move { Ok(Grpc::new(RawCodec).unary(method, request).await) })
    }
}
