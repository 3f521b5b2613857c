//! The REST face of a domain, on the same port as gRPC and behind the same
//! TLS and authentication: the products it serves, each one's description,
//! and its rows as one JSON page, NDJSON or CSV, read through the same
//! function as the gRPC `Query` (agreements, pseudonyms, audit and limits
//! alike). Errors are JSON in Google's style; the OpenAPI document describing
//! all of it is at `/openapi.json`.

mod openapi;
mod rows;
mod standards;
mod usage;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use http::HeaderValue;
use mesh_grpc::rest::RestError;
use prost::Message;
use prost_reflect::DescriptorPool;
use serde::Serialize;
use tonic::Status;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::ToSchema;

use crate::error::{DomainError, Result};
use crate::serve::audit_service::Reads;
use crate::serve::service::ProductService;

/// The path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// What the REST handlers share: the domain's products by id, and the URLs
/// it advertises.
struct Api {
    products: BTreeMap<String, ProductService>,
    openapi: Bytes,
    pool: DescriptorPool,
    advertise: Vec<String>,
    /// The read log, for the usage path.
    reads: Reads,
}

impl Api {
    fn product(&self, id: &str) -> std::result::Result<&ProductService, RestError> {
        self.products.get(id).ok_or_else(|| {
            let served: Vec<&str> = self.products.keys().map(String::as_str).collect();
            RestError::new(Status::not_found(format!(
                "product `{}` is not served here; this domain serves {}",
                mesh_grpc::rest::escape_path(id),
                served.join(", ")
            )))
        })
    }
}

impl From<DomainError> for RestError {
    fn from(error: DomainError) -> Self {
        Self::new(error.into())
    }
}

/// The REST routes of a domain serving `services` at `advertise` (its URLs
/// in order of preference) with its read log in `reads`, with CORS
/// for browsers on `cors_origins` (no cross-origin access when empty).
pub(crate) fn router(
    services: &[ProductService],
    advertise: &[String],
    reads: Reads,
    cors_origins: &[HeaderValue],
) -> Result<axum::Router> {
    let pool = DescriptorPool::decode(mesh_contracts::FILE_DESCRIPTOR_SET)
        .map_err(|e| DomainError::Schema(e.to_string()))?;
    let products: BTreeMap<_, _> =
        services.iter().map(|s| (s.product().spec.id.clone(), s.clone())).collect();
    let openapi = openapi::document(services.iter().map(|s| s.product()).collect::<Vec<_>>().as_slice())?;
    let api = Arc::new(Api { products, openapi, pool, advertise: advertise.to_vec(), reads });
    let router = axum::Router::new()
        .route("/v1/products", get(list_products))
        .route("/v1/products/{id}", get(describe_product))
        .route("/v1/products/{id}/rows", get(rows::rows))
        .route("/v1/products/{id}/contract.odcs.yaml", get(standards::odcs))
        .route("/v1/products/{id}/product.odps.yaml", get(standards::odps))
        .route("/v1/products/{id}/usage", get(usage::usage))
        .route(OPENAPI_PATH, get(openapi_document))
        .with_state(api);
    if cors_origins.is_empty() {
        return Ok(router);
    }
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(cors_origins.iter().cloned()))
        .allow_methods([http::Method::GET])
        .allow_headers([http::header::AUTHORIZATION, http::header::ACCEPT])
        .expose_headers([http::HeaderName::from_static(mesh_contracts::descriptor::WITHHELD_COLUMNS_HEADER)])
        .max_age(std::time::Duration::from_secs(600));
    Ok(router.layer(cors))
}

/// One product in the domain's list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProductSummary {
    /// Product id, e.g. `payment.card_spending`.
    id: String,
    /// Human title from the contract.
    title: String,
    /// The full name of its gRPC service.
    service: String,
    /// The team owning it.
    owner_team: String,
    /// Who may read it: `ACCESS_MODE_OPEN` or `ACCESS_MODE_BY_AGREEMENT`.
    access_mode: String,
    /// Rows in the current data.
    row_count: i64,
    /// When the data was last loaded (RFC 3339), empty before the first load.
    last_loaded_time: String,
    /// Its description: `/v1/products/{id}`.
    describe_url: String,
    /// Its rows: `/v1/products/{id}/rows`.
    rows_url: String,
}

/// The products a domain serves.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProductList {
    /// In id order.
    products: Vec<ProductSummary>,
}

/// Checks that the request was authenticated (the layer in front put the
/// caller in its extensions).
fn authenticated(extensions: &http::Extensions) -> std::result::Result<(), RestError> {
    mesh_grpc::auth::layer::caller(extensions).map(|_| ()).map_err(RestError::new)
}

/// The products this domain serves, with their size and last load.
#[utoipa::path(
    get,
    path = "/v1/products",
    operation_id = "listProducts",
    responses(
        (status = 200, description = "The products served", body = ProductList),
        mesh_grpc::rest::Unauthenticated,
    )
)]
async fn list_products(
    State(api): State<Arc<Api>>,
    extensions: http::Extensions,
) -> std::result::Result<Response, RestError> {
    authenticated(&extensions)?;
    let services: Vec<ProductService> = api.products.values().cloned().collect();
    let products = blocking(move || {
        services
            .iter()
            .map(|service| {
                let product = service.product();
                let options = product.shape.options();
                let data = product.data_status()?;
                let id = &product.spec.id;
                Ok(ProductSummary {
                    id: id.to_owned(),
                    title: options.title.clone(),
                    service: product.spec.service.clone(),
                    owner_team: options.owner_team.clone(),
                    access_mode: options.access_mode().as_str_name().to_owned(),
                    row_count: data.row_count,
                    last_loaded_time: data.last_loaded_time.map(|t| t.to_string()).unwrap_or_default(),
                    describe_url: format!("/v1/products/{id}"),
                    rows_url: format!("/v1/products/{id}/rows"),
                })
            })
            .collect::<Result<Vec<_>>>()
    })
    .await?;
    let body = serde_json::to_vec(&ProductList { products }).unwrap_or_default();
    Ok(mesh_grpc::rest::ok_response(mesh_grpc::rest::JSON, body))
}

/// A product's `Describe` answer in protobuf's JSON mapping (field names as
/// in the .proto files): contract options, row count, last load, quality
/// results and its service's descriptor set.
#[utoipa::path(
    get,
    path = "/v1/products/{id}",
    operation_id = "describeProduct",
    params(mesh_grpc::rest::ProductIdParam),
    responses(
        (status = 200, description = "The product's description", body = Object),
        mesh_grpc::rest::ProductRefusals,
    )
)]
async fn describe_product(
    State(api): State<Arc<Api>>,
    path: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
    extensions: http::Extensions,
) -> std::result::Result<Response, RestError> {
    authenticated(&extensions)?;
    let Path(id) = path.map_err(|e| RestError::new(Status::invalid_argument(format!("id: {e}"))))?;
    let product = api.product(&id)?.product();
    let described = blocking(move || product.describe()).await?;
    let body = mesh_grpc::rest::proto_json(
        &api.pool,
        "mesh.product.v1.DescribeResponse",
        &described.encode_to_vec(),
    )?;
    Ok(mesh_grpc::rest::ok_response(mesh_grpc::rest::JSON, body))
}

/// `GET /openapi.json`: this document (no token needed).
async fn openapi_document(State(api): State<Arc<Api>>) -> Response {
    mesh_grpc::rest::ok_response(mesh_grpc::rest::JSON, api.openapi.clone())
}

/// Runs `work` (which reads the store) on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> std::result::Result<T, RestError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RestError::new(mesh_grpc::internal_status("serving a REST request", &e)))?
        .map_err(RestError::from)
}
