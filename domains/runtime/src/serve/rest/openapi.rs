//! The OpenAPI 3.1 document of a domain's REST face: paths and bodies
//! from the handlers' annotations, the row schema of each product from its
//! contract (column kinds, units, classifications), built once at start.

use std::sync::Arc;

use bytes::Bytes;
use mesh_grpc::rest::BearerTokens;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::{DomainError, Result};
use crate::serve::product::Product;
use crate::values::schema::ColumnKind;

/// One row: the columns asked for (all readable ones by default), named as
/// in the contract. The schemas of each product's row are listed under
/// `Row.<product id>`.
#[derive(Debug, ToSchema)]
#[schema(value_type = Object)]
#[allow(dead_code)]
pub(crate) struct Row(serde_json::Map<String, serde_json::Value>);

/// One page of rows.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(crate) struct RowsPage {
    /// At most `page_size` rows.
    rows: Vec<Row>,
    /// Give it as `page_token`, with the same other parameters, for the next
    /// page; empty on the last page.
    next_page_token: String,
}

/// The query parameters of the rows path.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct RowsParams {
    /// The filter language of `mesh query --filter`, e.g.
    /// `age >= 30 AND sex_cd = 'F'`.
    filter: Option<String>,
    /// Columns to return, separated by commas (default: every column the
    /// caller may read).
    select: Option<String>,
    /// Columns to sort by, separated by commas, each optionally followed by
    /// `desc`.
    order_by: Option<String>,
    /// The most rows to return in all pages together; 0 for no limit.
    #[param(minimum = 0)]
    limit: Option<i64>,
    /// Rows per page, for `application/json` only.
    #[param(minimum = 1, maximum = 1000)]
    page_size: Option<u32>,
    /// The `next_page_token` of the previous page (or of a gRPC batch).
    page_token: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Woori Card data mesh: domain REST API",
        description = "The data products a domain serves, read under the same access agreements, pseudonyms, \
                       audit and limits as its gRPC services. Every call but this document needs a bearer token \
                       (`mesh token print`).",
        version = "1"
    ),
    paths(
        super::list_products,
        super::describe_product,
        super::rows::rows,
        super::standards::odcs,
        super::standards::odps,
        super::usage::usage
    ),
    components(schemas(mesh_grpc::rest::ErrorBody, mesh_grpc::rest::ErrorDetail, Row, RowsPage, super::ProductList, super::ProductSummary)),
    modifiers(&BearerTokens),
    security(("bearer" = []))
)]
struct ApiDoc;

/// The document for a domain serving `products`, as JSON.
pub(super) fn document(products: &[Arc<Product>]) -> Result<Bytes> {
    let mut openapi = ApiDoc::openapi();
    let components = openapi.components.get_or_insert_with(Default::default);
    let mut any_row = AnyOfBuilder::new();
    for product in products {
        let name = format!("Row.{}", product.spec.id);
        components.schemas.insert(name.clone(), RefOr::T(row_schema(product)));
        any_row = any_row.item(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name)));
    }
    if !products.is_empty() {
        components.schemas.insert("Row".to_owned(), RefOr::T(Schema::AnyOf(any_row.build())));
    }
    let json = openapi.to_json().map_err(|e| DomainError::Schema(format!("the OpenAPI document: {e}")))?;
    Ok(Bytes::from(json))
}

/// The JSON schema of one product's row.
fn row_schema(product: &Product) -> Schema {
    let mut row = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(format!("A row of {}", product.spec.id)))
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)));
    for column in &product.schema.columns {
        let mut description = format!("{} ({})", column.source_column, column.classification.as_str_name());
        if !column.unit.is_empty() {
            description.push_str(&format!(", {}", column.unit));
        }
        let property = match column.kind {
            ColumnKind::String => ObjectBuilder::new().schema_type(Type::String),
            ColumnKind::Integer => ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
            // Not finite values (none in a valid load) are written as null.
            ColumnKind::Real => ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::Number, Type::Null])),
            ColumnKind::Bool => ObjectBuilder::new().schema_type(Type::Boolean),
        };
        row = row.property(column.name.clone(), property.description(Some(description)));
    }
    Schema::Object(row.build())
}
