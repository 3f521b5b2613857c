//! A catalog product in the open standards catalog tools read: an ODCS v3
//! data contract (its schema, quality rules, servers, team, terms of use and
//! SLA) and an ODPS v1 data product (its output ports for gRPC and REST,
//! input ports from lineage, owner and status). The registry serves both
//! and `mesh describe --format odcs|odps` prints them; one builder for both.

mod odcs;
mod odps;
pub mod schema_files;

use mesh_contracts::catalog::{Product, ServingStatus};
use serde_json::{Value, json};

pub use odcs::contract;
pub use odps::data_product;

/// The media type of the YAML documents.
pub const YAML: &str = "application/yaml";

/// Where a product is served and catalogued, for the documents' links.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// The registry's base URL (`https://catalog.example.com:50050`), for
    /// the catalog's own links; none leaves them out.
    pub registry: Option<String>,
}

/// The open standards a product is published in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {
    /// An ODCS v3 data contract.
    Odcs,
    /// An ODPS v1 data product.
    Odps,
}

/// `product` in `standard`, as YAML (`inputs`, the input products as the
/// catalog knows them, serve ODPS only).
pub fn document(product: &Product, standard: Standard, inputs: &[Product], links: &Links) -> String {
    let document = match standard {
        Standard::Odcs => contract(product, links),
        Standard::Odps => data_product(product, inputs, links),
    };
    to_yaml(&document)
}

/// `document` as YAML. Timestamps are quoted: YAML 1.1 readers (PyYAML,
/// and so `datacontract`) would otherwise read them as dates, not the
/// strings the standards' schemas ask for.
pub fn to_yaml(document: &Value) -> String {
    let yaml = serde_norway::to_string(document).unwrap_or_default();
    let mut out = String::with_capacity(yaml.len() + 64);
    for line in yaml.lines() {
        match line
            .rfind(": ")
            .map(|at| at + 2)
            .or_else(|| line.trim_start().starts_with("- ").then(|| line.find("- ").unwrap_or(0) + 2))
        {
            Some(at) if looks_like_timestamp(&line[at..]) => {
                out.push_str(&line[..at]);
                out.push('\'');
                out.push_str(&line[at..]);
                out.push('\'');
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Whether a plain YAML scalar would be read as a timestamp by YAML 1.1
/// (`2024-01-31T10:00:00Z`, `2024-01-31 10:00:00`).
fn looks_like_timestamp(scalar: &str) -> bool {
    let bytes = scalar.as_bytes();
    bytes.len() >= 10
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[5..7].iter().chain(&bytes[8..10]).all(u8::is_ascii_digit)
        && scalar.bytes().all(|b| b.is_ascii_alphanumeric() || b":.-+ ".contains(&b))
}

/// The document's version: `<major>.<schema version>.0`, so a compatible
/// change of the contract raises the minor number.
fn version(product: &Product) -> String {
    format!("{}.{}.0", product.major_version.max(1), product.latest_version)
}

/// `active`, or `deprecated` once the owners deprecated it.
fn status(product: &Product) -> &'static str {
    if product.deprecation.is_some() { "deprecated" } else { "active" }
}

/// The REST rows URL of an endpoint.
fn rows_url(endpoint: &str, product: &str) -> String {
    format!("{}/v1/products/{product}/rows", endpoint.trim_end_matches('/'))
}

/// The owning team with its contact as the owner.
fn team(product: &Product) -> Value {
    let options = product.metadata.clone().unwrap_or_default();
    let mut team = json!({ "name": options.owner_team });
    if !options.owner_contact.is_empty() {
        team["members"] = json!([{ "username": options.owner_contact, "role": "owner" }]);
    }
    team
}

/// The owner's contact as a support channel (e-mail when it is an address).
fn support(product: &Product) -> Option<Value> {
    let contact = product.metadata.as_ref().map(|o| o.owner_contact.as_str()).unwrap_or_default();
    if contact.is_empty() {
        return None;
    }
    let mut channel = json!({ "channel": "owners", "description": "The product's owning team" });
    if contact.contains('@') && !contact.contains(':') {
        channel["url"] = json!(format!("mailto:{contact}"));
        channel["tool"] = json!("email");
    } else {
        channel["url"] = json!(contact);
        channel["tool"] = json!("other");
    }
    Some(channel)
}

/// A custom property.
fn property(name: &str, value: impl Into<Value>) -> Value {
    json!({ "property": name, "value": value.into() })
}

/// Serving status in words (`serving`, `stale`, ...).
fn serving(status: ServingStatus) -> String {
    status.as_str_name().trim_start_matches("SERVING_STATUS_").to_ascii_lowercase()
}

/// A timestamp as RFC 3339.
fn rfc3339(time: Option<&prost_types::Timestamp>) -> Option<String> {
    time.map(ToString::to_string)
}
