//! A product's contract in the open standards, as its own domain knows it:
//! the contract's metadata and columns, this domain's endpoint, the input
//! products it names, its data status and the readers in its read log. The
//! registry's documents add the catalog's view (every endpoint, the schema
//! version, the inputs' versions); both come from the one builder of
//! `mesh-standards`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use mesh_contracts::catalog::{Endpoint, InputPort, Product as CatalogProduct, ServingStatus};
use mesh_grpc::rest::{RestError, ok_response};
use mesh_standards::Standard;
use tonic::Status;

use super::{Api, authenticated, blocking};
use crate::serve::registration::reported_status;

/// The catalog entry of product `id` as this domain sees it.
async fn entry(
    api: &Api,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    extensions: &http::Extensions,
) -> Result<CatalogProduct, RestError> {
    authenticated(extensions)?;
    let Path(id) = path.map_err(|e| RestError::new(Status::invalid_argument(format!("id: {e}"))))?;
    let service = api.product(&id)?;
    let (product, _, governance) = service.read_path();
    let audit = governance.and_then(|g| g.audit_log().cloned());
    let reading = Arc::clone(&product);
    let data = blocking(move || reported_status(&reading, audit.as_ref())).await?;
    let mut entry = product.shape.catalog_entry();
    let inputs = entry.metadata.as_ref().map(|m| m.input_products.clone()).unwrap_or_default();
    entry.product_id = product.spec.id.to_owned();
    entry.name = format!("products/{}", product.spec.id);
    entry.domain = product.spec.domain().to_owned();
    entry.status = ServingStatus::Serving as i32;
    entry.major_version = 1;
    entry.endpoints = api
        .advertise
        .iter()
        .map(|uri| Endpoint { uri: uri.clone(), status: ServingStatus::Serving as i32, ..Default::default() })
        .collect();
    entry.input_ports = inputs.into_iter().map(|product| InputPort { product, status: 0 }).collect();
    entry.data = Some(data);
    Ok(entry)
}

/// `GET /v1/products/{id}/contract.odcs.yaml`: the ODCS v3.1.0 contract.
#[utoipa::path(
    get,
    path = "/v1/products/{id}/contract.odcs.yaml",
    operation_id = "getContractOdcs",
    params(mesh_grpc::rest::ProductIdParam),
    responses(
        (status = 200, description = "The ODCS v3.1.0 data contract, as this domain knows it", content_type = "application/yaml", body = Object),
        mesh_grpc::rest::ProductRefusals,
    )
)]
pub(super) async fn odcs(
    State(api): State<Arc<Api>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    extensions: http::Extensions,
) -> Result<Response, RestError> {
    yaml(&api, path, &extensions, Standard::Odcs).await
}

/// `GET /v1/products/{id}/product.odps.yaml`: the ODPS v1.0.0 data product.
#[utoipa::path(
    get,
    path = "/v1/products/{id}/product.odps.yaml",
    operation_id = "getProductOdps",
    params(mesh_grpc::rest::ProductIdParam),
    responses(
        (status = 200, description = "The ODPS v1.0.0 data product, as this domain knows it", content_type = "application/yaml", body = Object),
        mesh_grpc::rest::ProductRefusals,
    )
)]
pub(super) async fn odps(
    State(api): State<Arc<Api>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    extensions: http::Extensions,
) -> Result<Response, RestError> {
    yaml(&api, path, &extensions, Standard::Odps).await
}

/// The product the path names in `standard`, as YAML.
async fn yaml(
    api: &Api,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    extensions: &http::Extensions,
    standard: Standard,
) -> Result<Response, RestError> {
    let entry = entry(api, path, extensions).await?;
    let document = mesh_standards::document(&entry, standard, &[], &mesh_standards::Links::default());
    Ok(ok_response(mesh_standards::YAML, document))
}
