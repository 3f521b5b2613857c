//! ODPS v1.0 data products.

use mesh_contracts::catalog::Product;
use serde_json::{Value, json};

use crate::{Links, property, rfc3339, rows_url, status, support, team, version};

/// The ODPS v1.0.0 description of `product`: its gRPC and REST output
/// ports (with every endpoint), its input ports from lineage (`inputs` are
/// the input products as the catalog knows them, for their versions), its
/// owner and status, and who reads it.
pub fn data_product(product: &Product, inputs: &[Product], links: &Links) -> Value {
    let options = product.metadata.clone().unwrap_or_default();
    let version = version(product);
    let endpoints: Vec<&str> = product.endpoints.iter().map(|e| e.uri.as_str()).collect();
    let output_ports = json!([
        {
            "name": "grpc",
            "type": "grpc",
            "description": format!("gRPC service {}: Query streams rows with resume tokens, Describe", product.service),
            "version": version,
            "contractId": product.product_id,
            "customProperties": [
                property("service", product.service.clone()),
                property("endpoints", json!(endpoints)),
            ],
        },
        {
            "name": "rest",
            "type": "rest",
            "description": "GET /v1/products/{id}/rows: JSON pages, NDJSON or CSV, under the same agreements",
            "version": version,
            "contractId": product.product_id,
            "customProperties": [
                property("endpoints", json!(endpoints.iter().map(|e| rows_url(e, &product.product_id)).collect::<Vec<_>>())),
            ],
        },
    ]);
    let input_ports: Vec<Value> = product
        .input_ports
        .iter()
        .map(|port| {
            let input = inputs.iter().find(|p| p.product_id == port.product);
            json!({
                "name": port.product,
                "version": input.map_or_else(|| "unknown".to_owned(), crate::version),
                "contractId": port.product,
                "customProperties": [property("status", crate::serving(port.status()))],
            })
        })
        .collect();
    let mut document = json!({
        "apiVersion": "v1.0.0",
        "kind": "DataProduct",
        "id": product.product_id,
        "name": if options.title.is_empty() { product.product_id.clone() } else { options.title.clone() },
        "version": version,
        "status": status(product),
        "domain": product.domain,
        "tags": options.tags,
        "description": {
            "purpose": options.purpose,
            "limitations": options.policy,
            "usage": product.description,
        },
        "outputPorts": output_ports,
        "team": team(product),
    });
    if !input_ports.is_empty() {
        document["inputPorts"] = json!(input_ports);
    }
    if let Some(channel) = support(product) {
        document["support"] = json!([channel]);
    }
    if let Some(registry) = &links.registry {
        let base = format!("{}/v1/products/{}", registry.trim_end_matches('/'), product.product_id);
        document["managementPorts"] = json!([
            { "name": "catalog", "content": "discoverability", "type": "rest", "url": base },
            { "name": "contract", "content": "dictionary", "type": "rest", "url": format!("{base}/contract.odcs.yaml") },
        ]);
    }
    let consumers: Vec<Value> = product
        .data
        .iter()
        .flat_map(|d| &d.consumers)
        .map(|c| {
            json!({
                "principal": c.principal,
                "reads": c.reads,
                "rows": c.rows,
                "lastReadTime": rfc3339(c.last_read_time.as_ref()),
            })
        })
        .collect();
    document["customProperties"] = json!([
        property("accessMode", options.access_mode().as_str_name().trim_start_matches("ACCESS_MODE_")),
        property("servingStatus", crate::serving(product.status())),
        property("consumers", json!(consumers)),
    ]);
    if let Some(created) = rfc3339(product.create_time.as_ref()) {
        document["productCreatedTs"] = json!(created);
    }
    document
}
