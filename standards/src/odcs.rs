//! ODCS v3.1 data contracts.

use mesh_contracts::catalog::{Column, Product};
use mesh_contracts::product::Classification;
use serde_json::{Value, json};

use crate::{Links, property, rfc3339, rows_url, status, support, team, version};

/// The ODCS v3.1.0 data contract of `product`: its row type as the schema
/// (types, descriptions, classification, required), its latest quality
/// results as rules, its endpoints as servers (gRPC and REST), its team,
/// its purpose and policy as terms of use, and its freshness as the SLA.
pub fn contract(product: &Product, links: &Links) -> Value {
    let options = product.metadata.clone().unwrap_or_default();
    let short_name = product.row_type.rsplit('.').next().unwrap_or(&product.row_type);
    let mut object = json!({
        "name": short_name,
        "physicalName": product.row_type,
        "physicalType": "protobuf message",
        "logicalType": "object",
        "description": product.description,
        "properties": product.columns.iter().map(column).collect::<Vec<_>>(),
    });
    let quality = quality(product);
    if !quality.is_empty() {
        object["quality"] = json!(quality);
    }
    let mut contract = json!({
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": product.product_id,
        "name": if options.title.is_empty() { product.product_id.clone() } else { options.title.clone() },
        "version": version(product),
        "status": status(product),
        "domain": product.domain,
        "dataProduct": product.product_id,
        "tags": options.tags,
        "description": {
            "usage": product.description,
            "purpose": options.purpose,
            "limitations": options.policy,
        },
        "schema": [object],
        "servers": servers(product),
        "team": team(product),
    });
    if let Some(channel) = support(product) {
        contract["support"] = json!([channel]);
    }
    if !options.freshness.is_empty() {
        contract["slaProperties"] = json!([{ "property": "frequency", "value": options.freshness }]);
    }
    let mut custom = vec![
        property("accessMode", options.access_mode().as_str_name().trim_start_matches("ACCESS_MODE_")),
        property("source", options.source.clone()),
        property("grpcService", product.service.clone()),
    ];
    if let Some(data) = &product.data {
        custom.push(property("rowCount", data.row_count));
        if let Some(loaded) = rfc3339(data.last_loaded_time.as_ref()) {
            custom.push(property("lastLoadedTime", loaded));
        }
    }
    if let Some(registry) = &links.registry {
        custom.push(property("catalogUrl", format!("{}/catalog/products/{}", registry, product.product_id)));
    }
    contract["customProperties"] = json!(custom);
    if let Some(created) = rfc3339(product.create_time.as_ref()) {
        contract["contractCreatedTs"] = json!(created);
    }
    contract
}

/// One column as a schema property.
fn column(column: &Column) -> Value {
    let logical = match column.r#type.as_str() {
        _ if column.repeated => "array",
        "string" | "bytes" => "string",
        "double" | "float" => "number",
        "bool" => "boolean",
        "int32" | "int64" | "uint32" | "uint64" | "sint32" | "sint64" | "fixed32" | "fixed64"
        | "sfixed32" | "sfixed64" => "integer",
        // Enums travel as their names; messages as objects.
        name if name.contains('.') => "object",
        _ => "string",
    };
    let mut property = json!({
        "name": column.name,
        "logicalType": logical,
        "physicalType": column.r#type,
        "description": column.description,
        // Protobuf scalars always have a value (never null).
        "required": !column.repeated,
        "classification": classification(column.classification()),
    });
    let mut custom = vec![crate::property("fieldNumber", column.number)];
    if !column.source_column.is_empty() {
        custom.push(crate::property("sourceColumn", column.source_column.clone()));
    }
    if !column.unit.is_empty() {
        custom.push(crate::property("unit", column.unit.clone()));
    }
    property["customProperties"] = json!(custom);
    property
}

/// A classification as the contract names it: `pii_identifier`, `public`...
pub(crate) fn classification(classification: Classification) -> String {
    classification.as_str_name().trim_start_matches("CLASSIFICATION_").to_ascii_lowercase()
}

/// The product's quality rules with their latest results.
fn quality(product: &Product) -> Vec<Value> {
    let Some(data) = &product.data else { return Vec::new() };
    data.quality_results
        .iter()
        .map(|result| {
            json!({
                "type": "text",
                "name": result.rule,
                "description": result.description,
                "severity": "error",
                "customProperties": [
                    { "property": "lastResult", "value": if result.passed { "passed" } else { "failed" } },
                    { "property": "failedRows", "value": result.failed_rows },
                    { "property": "checkedRows", "value": result.checked_rows },
                ],
            })
        })
        .collect()
}

/// Each endpoint as two servers: its gRPC service and its REST rows.
fn servers(product: &Product) -> Vec<Value> {
    let mut servers = Vec::new();
    for (i, endpoint) in product.endpoints.iter().enumerate() {
        let n = i + 1;
        let state = crate::serving(endpoint.status());
        servers.push(json!({
            "server": format!("{}-grpc-{n}", product.domain),
            "type": "custom",
            "description": format!("gRPC service {} ({state})", product.service),
            "endpointUrl": endpoint.uri,
            "customProperties": [{ "property": "protocol", "value": "grpc" }],
        }));
        servers.push(json!({
            "server": format!("{}-rest-{n}", product.domain),
            "type": "api",
            "description": format!("REST rows as JSON pages, NDJSON or CSV ({state})"),
            "location": rows_url(&endpoint.uri, &product.product_id),
        }));
    }
    servers
}
