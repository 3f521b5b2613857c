//! The catalog's read API as JSON, on the registry's port, behind the same
//! TLS and bearer tokens as gRPC: the products (with the filters of
//! `ListProducts`), one product, and each product's contract in the open
//! standards (ODCS v3 YAML, ODPS v1 YAML). Errors are Google-style JSON; the
//! OpenAPI document is at `/openapi.json`.

pub mod events;
mod openapi;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use mesh_contracts::catalog::{ListProductsRequest, Product};
use mesh_grpc::auth::Principal;
use mesh_grpc::rest::{JSON, RestError, number, ok_response, proto_json, query_parameters};
use mesh_standards::{Links, Standard};
use prost::Message;
use prost_reflect::DescriptorPool;
use tonic::Status;

use crate::service::Catalog;

/// The path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// The query parameters of the product list.
const LIST_PARAMETERS: [&str; 6] = ["search", "domain", "owner", "tag", "page_size", "page_token"];

/// What the handlers share.
struct Api {
    catalog: Catalog,
    pool: DescriptorPool,
    openapi: bytes::Bytes,
}

/// The registry's REST routes over `catalog` and its `events`.
pub fn router(catalog: Catalog, events: crate::events::Events) -> crate::error::Result<axum::Router> {
    let pool = DescriptorPool::decode(mesh_contracts::FILE_DESCRIPTOR_SET)
        .map_err(|e| crate::error::RegistryError::Internal(e.to_string()))?;
    let api = Arc::new(Api { catalog, pool, openapi: openapi::document()? });
    Ok(axum::Router::new()
        .route("/v1/products", get(list_products))
        .route("/v1/products/{id}", get(get_product))
        .route("/v1/products/{id}/contract.odcs.yaml", get(odcs))
        .route("/v1/products/{id}/product.odps.yaml", get(odps))
        .route(
            OPENAPI_PATH,
            get(|State(api): State<Arc<Api>>| async move { ok_response(JSON, api.openapi.clone()) }),
        )
        .with_state(api)
        .merge(axum::Router::new().route("/v1/events", get(events::list_events)).with_state(events)))
}

/// Products matching the filters, a page at a time (`ListProducts`).
#[utoipa::path(
    get,
    path = "/v1/products",
    operation_id = "listProducts",
    params(openapi::ListParams),
    responses(
        (status = 200, description = "A page of products: `products`, `next_page_token`, `total_size`", body = Object),
        (status = 400, description = "A bad parameter, named in the message", body = mesh_grpc::rest::ErrorBody),
        mesh_grpc::rest::Unauthenticated,
    )
)]
async fn list_products(
    State(api): State<Arc<Api>>,
    request: http::Request<axum::body::Body>,
) -> Result<Response, RestError> {
    let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
    let mut list = ListProductsRequest::default();
    for (name, value) in query_parameters(request.uri().query().unwrap_or(""), &LIST_PARAMETERS)? {
        match name {
            "search" => list.search = value,
            "domain" => list.domain = value,
            "owner" => list.owner = value,
            "tag" => list.tag = value,
            "page_token" => list.page_token = value,
            _ => list.page_size = number("page_size", &value, "a whole number of products")?,
        }
    }
    let page = api.catalog.list_products(list, &caller).await.map_err(|e| RestError::new(e.into()))?;
    let body = proto_json(&api.pool, "mesh.catalog.v1.ListProductsResponse", &page.encode_to_vec())?;
    Ok(ok_response(JSON, body))
}

/// One product: contract metadata, columns, endpoints, versions, lineage,
/// data status (`GetProduct`, full view).
#[utoipa::path(
    get,
    path = "/v1/products/{id}",
    operation_id = "getProduct",
    params(mesh_grpc::rest::ProductIdParam),
    responses(
        (status = 200, description = "The product", body = Object),
        mesh_grpc::rest::ProductRefusals,
    )
)]
async fn get_product(
    State(api): State<Arc<Api>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    extensions: http::Extensions,
) -> Result<Response, RestError> {
    let product = product(&api, path, &extensions).await?;
    Ok(ok_response(JSON, proto_json(&api.pool, "mesh.catalog.v1.Product", &product.encode_to_vec())?))
}

/// The product's data contract in ODCS v3.1.0, as YAML.
#[utoipa::path(
    get,
    path = "/v1/products/{id}/contract.odcs.yaml",
    operation_id = "getContractOdcs",
    params(mesh_grpc::rest::ProductIdParam),
    responses(
        (status = 200, description = "The ODCS v3.1.0 data contract", content_type = "application/yaml", body = Object),
        mesh_grpc::rest::ProductRefusals,
    )
)]
async fn odcs(
    State(api): State<Arc<Api>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    request: http::Request<axum::body::Body>,
) -> Result<Response, RestError> {
    standard(&api, path, request.extensions(), links(&request), Standard::Odcs).await
}

/// The product in ODPS v1.0.0, as YAML.
#[utoipa::path(
    get,
    path = "/v1/products/{id}/product.odps.yaml",
    operation_id = "getProductOdps",
    params(mesh_grpc::rest::ProductIdParam),
    responses(
        (status = 200, description = "The ODPS v1.0.0 data product", content_type = "application/yaml", body = Object),
        mesh_grpc::rest::ProductRefusals,
    )
)]
async fn odps(
    State(api): State<Arc<Api>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    request: http::Request<axum::body::Body>,
) -> Result<Response, RestError> {
    standard(&api, path, request.extensions(), links(&request), Standard::Odps).await
}

/// `product` in `standard`, as YAML, with the catalog's links under `links`
/// (and, for ODPS, its input products as the catalog knows them), as
/// `caller` may see them.
pub(crate) async fn document(
    catalog: &Catalog,
    product: &Product,
    standard: Standard,
    links: &Links,
    caller: &Principal,
) -> String {
    let inputs = match standard {
        Standard::Odps => inputs(catalog, product, caller).await,
        Standard::Odcs => Vec::new(),
    };
    mesh_standards::document(product, standard, &inputs, links)
}

/// The product the path names in `standard`, as YAML.
async fn standard(
    api: &Api,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    extensions: &http::Extensions,
    links: Links,
    standard: Standard,
) -> Result<Response, RestError> {
    let product = product(api, path, extensions).await?;
    let caller = mesh_grpc::auth::layer::caller(extensions)?;
    Ok(ok_response(mesh_standards::YAML, document(&api.catalog, &product, standard, &links, &caller).await))
}

/// The product the path names, for an authenticated caller.
async fn product(
    api: &Api,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    extensions: &http::Extensions,
) -> Result<Product, RestError> {
    let caller = mesh_grpc::auth::layer::caller(extensions)?;
    let Path(id) = path.map_err(|e| RestError::new(Status::invalid_argument(format!("id: {e}"))))?;
    api.catalog.product(&id, &caller).await.map_err(|e| RestError::new(e.into()))
}

/// The input products of `product` the catalog knows (for their versions).
async fn inputs(catalog: &Catalog, product: &Product, caller: &Principal) -> Vec<Product> {
    let mut inputs = Vec::new();
    for port in &product.input_ports {
        if let Ok(input) = catalog.product(&port.product, caller).await {
            inputs.push(input);
        }
    }
    inputs
}

/// The registry's own URL as the client reached it, for the documents' links.
fn links<B>(request: &http::Request<B>) -> Links {
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(ToString::to_string));
    let scheme =
        request.uri().scheme_str().unwrap_or(if is_tls(request) { "https" } else { "http" }).to_owned();
    Links { registry: host.map(|host| format!("{scheme}://{host}")) }
}

/// Whether the request came over TLS (the transport records the peer's
/// certificates, if any, only then).
fn is_tls<B>(request: &http::Request<B>) -> bool {
    request
        .extensions()
        .get::<tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>>()
        .is_some()
}
