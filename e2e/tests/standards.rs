//! The catalog's REST read API and its contracts in the open standards,
//! against a real mesh: the JSON API with its errors; ODCS and ODPS YAML
//! from the registry, validated against the standards' schemas (Python
//! jsonschema; found as `mesh_standards::schema_files` says) and by `datacontract lint`; `mesh describe --format`
//! printing the same documents; schemathesis against the registry's
//! OpenAPI document.

use crate::common;

use std::path::{Path, PathBuf};

use common::Mesh;
use mesh_standards::{Standard, schema_files};
use serde_json::Value;

/// The schema a standard's documents are checked against, or none (after
/// saying why) when only a file from outside the repository could give it.
fn standard_schema(standard: Standard) -> Option<PathBuf> {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match standard {
        Standard::Odcs => Some(schema_files::odcs(&repository).unwrap_or_else(|missing| panic!("{missing}"))),
        Standard::Odps => schema_files::odps()
            .inspect_err(|missing| eprintln!("skipping the ODPS schema check: {missing}"))
            .ok(),
    }
}

async fn get(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// Validates the YAML file `document` against the schema of `standard`.
fn validate(standard: Standard, document: &Path) {
    let Some(schema) = standard_schema(standard) else { return };
    common::run_ok(
        std::process::Command::new(common::tool("web-venv/bin/python"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/validate_standard.py"))
            .arg(schema)
            .arg(document),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_catalog_reads_as_json_and_exports_valid_odcs_and_odps() {
    let mesh = Mesh::start(200, true).await;
    let registry = mesh.registry.clone();
    let token = mesh.token.clone();

    // The JSON read API.
    let refused = get(&format!("{registry}/v1/products"), None).await;
    assert_eq!(refused.status(), 401);
    let list: Value =
        get(&format!("{registry}/v1/products?domain=payment"), Some(&token)).await.json().await.unwrap();
    assert_eq!(list["total_size"], 1);
    assert_eq!(list["products"][0]["product_id"], "payment.card_spending");
    let page: Value =
        get(&format!("{registry}/v1/products?page_size=2"), Some(&token)).await.json().await.unwrap();
    assert_eq!(page["products"].as_array().unwrap().len(), 2);
    assert!(!page["next_page_token"].as_str().unwrap().is_empty());
    let response = get(&format!("{registry}/v1/products/payment.card_spending"), Some(&token)).await;
    assert_eq!(response.status(), 200);
    let product: Value = response.json().await.unwrap();
    assert_eq!(product["metadata"]["owner_team"], "Payment Data Team");
    let seq = product["columns"].as_array().unwrap().iter().find(|c| c["name"] == "seq").unwrap();
    assert_eq!(seq["classification"], "CLASSIFICATION_PII_IDENTIFIER");
    for (path, status, start) in [
        ("/v1/products/shop.orders", 404, "product `shop.orders` is not in the catalog"),
        ("/v1/products?page_size=abc", 400, "page_size: `abc` is not a whole number"),
        ("/v1/products?colour=red", 400, "unknown query parameter `colour`"),
        ("/v1/products/Bad%20Name/contract.odcs.yaml", 400, "name"),
    ] {
        let response = get(&format!("{registry}{path}"), Some(&token)).await;
        assert_eq!(response.status(), status, "{path}");
        let body: Value = response.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(start), "{path}: {message}");
    }

    // ODCS and ODPS from the registry, valid by the schemas and datacontract-cli.
    let dir = tempfile::tempdir().unwrap();
    let odcs_url = format!("{registry}/v1/products/payment.card_spending/contract.odcs.yaml");
    let response = get(&odcs_url, Some(&token)).await;
    assert_eq!(response.headers()["content-type"], "application/yaml");
    let odcs = response.text().await.unwrap();
    let odcs_file = dir.path().join("card_spending.odcs.yaml");
    std::fs::write(&odcs_file, &odcs).unwrap();
    validate(Standard::Odcs, &odcs_file);
    let lint = common::run_ok(
        std::process::Command::new(common::tool("datacontract/bin/datacontract"))
            .args(["lint"])
            .arg(&odcs_file)
            .env("NO_COLOR", "1"),
    );
    assert!(lint.contains("valid"), "{lint}");
    assert!(odcs.contains("classification: pii_identifier"), "{odcs}");
    assert!(odcs.contains(&format!("location: {}/v1/products/payment.card_spending/rows", mesh.payment_url)));

    let odps_url = format!("{registry}/v1/products/insight.segment_spending/product.odps.yaml");
    let odps = get(&odps_url, Some(&token)).await.text().await.unwrap();
    let odps_file = dir.path().join("segment_spending.odps.yaml");
    std::fs::write(&odps_file, &odps).unwrap();
    validate(Standard::Odps, &odps_file);
    assert!(odps.contains("- name: payment.card_spending"), "input ports from lineage:\n{odps}");

    // Each domain publishes its own product's documents too, valid the same way.
    let domain_odcs = get(
        &format!("{}/v1/products/payment.card_spending/contract.odcs.yaml", mesh.payment_url),
        Some(&mesh.domain_token("payment")),
    )
    .await
    .text()
    .await
    .unwrap();
    let domain_file = dir.path().join("domain.odcs.yaml");
    std::fs::write(&domain_file, &domain_odcs).unwrap();
    validate(Standard::Odcs, &domain_file);
    assert!(domain_odcs.contains(&format!("endpointUrl: {}", mesh.payment_url)), "{domain_odcs}");
    let insight_url = mesh.insight_url.clone().unwrap();
    let domain_odps = get(
        &format!("{insight_url}/v1/products/insight.segment_spending/product.odps.yaml"),
        Some(&mesh.domain_token("insight")),
    )
    .await
    .text()
    .await
    .unwrap();
    let domain_file = dir.path().join("domain.odps.yaml");
    std::fs::write(&domain_file, &domain_odps).unwrap();
    validate(Standard::Odps, &domain_file);
    assert!(domain_odps.contains("- name: customer.profiles"), "{domain_odps}");

    // `mesh describe --format` prints the same documents.
    for (format, product, served) in
        [("odcs", "payment.card_spending", &odcs), ("odps", "insight.segment_spending", &odps)]
    {
        let printed =
            common::stdout(&mesh.mesh().args(["describe", product, "--format", format]).output().unwrap());
        assert_eq!(&printed, served, "{format}");
    }
    let json = common::stdout(
        &mesh.mesh().args(["describe", "payment.card_spending", "--format", "json"]).output().unwrap(),
    );
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["product_id"], "payment.card_spending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_nothing_wrong_with_the_registry_api() {
    let mesh = Mesh::start(100, false).await;
    common::schemathesis(&format!("{}/openapi.json", mesh.registry), &mesh.token);
}
