//! The OpenAPI 3.1 document of the registry's REST API, from the handlers'
//! annotations.

use mesh_grpc::rest::BearerTokens;
use utoipa::{IntoParams, OpenApi};

/// The filters and paging of the product list.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct ListParams {
    /// Words that must all appear in the id, title, description, purpose,
    /// owner, tags or column names (at most 16 words, 256 characters).
    search: Option<String>,
    /// Only this domain's products.
    domain: Option<String>,
    /// Only products of this owner team.
    owner: Option<String>,
    /// Only products with this tag.
    tag: Option<String>,
    /// Products per page (default 50, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    page_size: Option<i32>,
    /// The `next_page_token` of the previous page.
    page_token: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Woori Card data mesh: catalog REST API",
        description = "The catalog's products, each with its owner, purpose, policy, columns, endpoints, versions \
                       and lineage, and its contract as ODCS v3 and ODPS v1 YAML. Every call but this document \
                       needs a bearer token (`mesh token print`).",
        version = "1"
    ),
    paths(super::list_products, super::get_product, super::odcs, super::odps, super::events::list_events),
    components(schemas(mesh_grpc::rest::ErrorBody, mesh_grpc::rest::ErrorDetail)),
    modifiers(&BearerTokens),
    security(("bearer" = []))
)]
struct ApiDoc;

/// The document as JSON.
pub(super) fn document() -> crate::error::Result<bytes::Bytes> {
    let json = ApiDoc::openapi()
        .to_json()
        .map_err(|e| crate::error::RegistryError::Internal(format!("the OpenAPI document: {e}")))?;
    Ok(bytes::Bytes::from(json))
}
