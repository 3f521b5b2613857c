//! GetProduct served over the pass-through codec: a cached answer goes out
//! as the bytes the cache holds, with no message built or encoded per call.
//! The catalog's other methods go through the generated server.

use std::sync::Arc;

use mesh_contracts::catalog::GetProductRequest;
use mesh_grpc::unary::RawUnaryRoute;
use prost::Message;
use tonic::Status;

use super::Catalog;

/// The route path [`get_product_route`] answers.
pub const GET_PRODUCT_PATH: &str = "/mesh.catalog.v1.CatalogService/GetProduct";

/// `mesh.catalog.v1.CatalogService/GetProduct` of `catalog`, answered from encoded bytes.
pub fn get_product_route(catalog: Catalog) -> RawUnaryRoute {
    let catalog = Arc::new(catalog);
    RawUnaryRoute::new(Arc::new(move |request| {
        let catalog = Arc::clone(&catalog);
        Box::pin(async move {
            let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
            let request = GetProductRequest::decode(request.into_inner()).map_err(|e| {
                Status::invalid_argument(format!("request is not a mesh.catalog.v1.GetProductRequest: {e}"))
            })?;
            let name = request.name.clone();
            catalog.get_product_encoded(request, &caller).await.map_err(|error| {
                tracing::debug!(product = %name, %error, "get product refused");
                Status::from(error)
            })
        })
    }))
}
