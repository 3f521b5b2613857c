//! Both documents of a product as the registry holds it, checked against
//! the ODCS v3 and ODPS v1 JSON schemas (found as `mesh_standards::
//! schema_files` says), as JSON and after a YAML round trip.

use mesh_contracts::catalog::{
    Column, Consumer, DataStatus, Deprecation, Endpoint, InputPort, Product, ServingStatus,
};
use mesh_contracts::product::{AccessMode, Classification, ProductOptions, QualityResult};
use mesh_standards::{Links, contract, data_product, schema_files, to_yaml};
use serde_json::Value;

fn validator(path: &std::path::Path) -> jsonschema::Validator {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::options().build(&schema).unwrap()
}

fn odcs_schema() -> jsonschema::Validator {
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    validator(&schema_files::odcs(&repository).unwrap_or_else(|missing| panic!("{missing}")))
}

/// The ODPS schema, or none (after saying why) when it is not at hand.
fn odps_schema() -> Option<jsonschema::Validator> {
    match schema_files::odps() {
        Ok(path) => Some(validator(&path)),
        Err(missing) => {
            eprintln!("skipping the ODPS schema check: {missing}");
            None
        }
    }
}

fn time(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn product() -> Product {
    let column = |name: &str, number: i32, r#type: &str, classification: Classification, unit: &str| Column {
        name: name.into(),
        number,
        r#type: r#type.into(),
        repeated: false,
        description: format!("the {name}"),
        classification: classification as i32,
        source_column: name.to_uppercase(),
        unit: unit.into(),
    };
    Product {
        name: "products/payment.card_spending".into(),
        product_id: "payment.card_spending".into(),
        domain: "payment".into(),
        service: "woori.payment.v1.CardSpendingService".into(),
        row_type: "woori.payment.v1.CardSpending".into(),
        metadata: Some(ProductOptions {
            title: "Card spending".into(),
            owner_team: "Payment Data Team".into(),
            owner_contact: "payment-data@wooricard.example".into(),
            purpose: "spending analysis".into(),
            source: "EDU_DATA_F".into(),
            policy: "internal use".into(),
            freshness: "quarterly".into(),
            tags: vec!["payment".into()],
            input_products: vec!["customer.profiles".into()],
            access_mode: AccessMode::ByAgreement as i32,
            auto_approvals: Vec::new(),
        }),
        description: "Card spending per customer and quarter".into(),
        columns: vec![
            column("seq", 1, "string", Classification::PiiIdentifier, ""),
            column("tot_use_am", 2, "int64", Classification::Sensitive, "KRW"),
            column("ratio", 3, "double", Classification::Internal, ""),
            column("active", 4, "bool", Classification::Public, ""),
        ],
        status: ServingStatus::Serving as i32,
        endpoints: vec![Endpoint {
            uri: "https://payment.mesh.example:50052".into(),
            status: ServingStatus::Serving as i32,
            register_time: time(1_700_000_000),
            renew_time: time(1_700_000_100),
            lease_expire_time: time(1_700_000_130),
        }],
        major_version: 1,
        latest_version: 3,
        versions: Vec::new(),
        deprecation: None,
        input_ports: vec![InputPort {
            product: "customer.profiles".into(),
            status: ServingStatus::Serving as i32,
        }],
        create_time: time(1_690_000_000),
        update_time: time(1_700_000_000),
        data: Some(DataStatus {
            row_count: 400_000,
            consumer_count: 1,
            last_loaded_time: time(1_700_000_000),
            quality_results: vec![QualityResult {
                rule: "unique_key".into(),
                description: "each (bas_yh, seq) occurs once".into(),
                passed: true,
                failed_rows: 0,
                checked_rows: 400_000,
            }],
            consumers: vec![Consumer {
                principal: "ana".into(),
                issuer: "mesh-local".into(),
                last_read_time: time(1_700_000_050),
                reads: 3,
                rows: 1200,
            }],
            load_id: 7,
        }),
    }
}

#[test]
fn timestamps_stay_strings_for_yaml_1_1_readers() {
    let yaml = to_yaml(
        &serde_json::json!({"created": "2024-01-31T10:00:00.5Z", "list": ["2024-01-31T10:00:00Z"], "day": "2024-01-31", "version": "1.2.0"}),
    );
    assert_eq!(
        yaml,
        "created: '2024-01-31T10:00:00.5Z'\nlist:\n- '2024-01-31T10:00:00Z'\nday: '2024-01-31'\nversion: 1.2.0\n"
    );
}

fn assert_valid(validator: &jsonschema::Validator, document: &Value) {
    let errors: Vec<String> =
        validator.iter_errors(document).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{}", to_yaml(document));
    let yaml = to_yaml(document);
    let reread: Value = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(&reread, document, "YAML keeps the document");
}

#[test]
fn the_contract_is_valid_odcs_v3_and_carries_what_the_catalog_knows() {
    let links = Links { registry: Some("https://catalog.mesh.example:50050".into()) };
    let document = contract(&product(), &links);
    assert_valid(&odcs_schema(), &document);
    assert_eq!(document["version"], "1.3.0");
    assert_eq!(document["status"], "active");
    let properties = document["schema"][0]["properties"].as_array().unwrap();
    assert_eq!(properties[0]["classification"], "pii_identifier");
    assert_eq!(properties[1]["logicalType"], "integer");
    assert_eq!(properties[2]["logicalType"], "number");
    assert_eq!(properties[3]["logicalType"], "boolean");
    assert_eq!(document["schema"][0]["quality"][0]["name"], "unique_key");
    assert_eq!(
        document["servers"][1]["location"],
        "https://payment.mesh.example:50052/v1/products/payment.card_spending/rows"
    );
    assert_eq!(document["team"]["members"][0]["username"], "payment-data@wooricard.example");
    assert_eq!(document["description"]["limitations"], "internal use");
    assert_eq!(document["slaProperties"][0]["value"], "quarterly");

    // The schema does catch a wrong document.
    let mut wrong = document.clone();
    wrong["schema"][0]["properties"][0]["logicalType"] = "text".into();
    assert!(!odcs_schema().is_valid(&wrong));

    let mut deprecated = product();
    deprecated.deprecation =
        Some(Deprecation { message: "use v2".into(), deprecate_time: time(1_700_000_000) });
    deprecated.endpoints.clear();
    deprecated.data = None;
    let document = contract(&deprecated, &Links::default());
    assert_valid(&odcs_schema(), &document);
    assert_eq!(document["status"], "deprecated");
}

#[test]
fn the_data_product_is_valid_odps_v1_with_ports_from_endpoints_and_lineage() {
    let links = Links { registry: Some("https://catalog.mesh.example:50050".into()) };
    let mut input = product();
    input.product_id = "customer.profiles".into();
    input.major_version = 2;
    input.latest_version = 5;
    let document = data_product(&product(), &[input], &links);
    if let Some(schema) = &odps_schema() {
        assert_valid(schema, &document);
    }
    assert_eq!(document["outputPorts"][0]["type"], "grpc");
    assert_eq!(document["outputPorts"][1]["type"], "rest");
    assert_eq!(document["inputPorts"][0]["name"], "customer.profiles");
    assert_eq!(document["inputPorts"][0]["version"], "2.5.0");
    assert_eq!(
        document["managementPorts"][1]["url"],
        "https://catalog.mesh.example:50050/v1/products/payment.card_spending/contract.odcs.yaml"
    );
    let document = data_product(&product(), &[], &Links::default());
    if let Some(schema) = &odps_schema() {
        assert_valid(schema, &document);
    }
    assert_eq!(document["inputPorts"][0]["version"], "unknown");
}
