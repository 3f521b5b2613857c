//! `mesh product check` as a domain team runs it before publishing: a
//! merchant product file with its contract and CSV passes; each mistake
//! (a key the contract lacks, an unclassified column, a missing source
//! file, a field misspelt) is refused naming its place; and against a
//! registry holding the product, a breaking change is caught before the
//! registry would refuse it, unless the major version is raised.

use crate::common;

use common::{Mesh, stderr, stdout};
use mesh_contracts::catalog::RegisterProductRequest;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;

const CONTRACT: &str = r#"syntax = "proto3";
package merchant.shops.v1;
import "mesh/product/v1/options.proto";
import "mesh/product/v1/query.proto";

// One shop.
message Shop {
  // The shop's number.
  string shop_id = 1 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PUBLIC, source_column: "SHOP_ID" }];
  // Its region.
  string region = 2 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PUBLIC, source_column: "REGION" }];
  // What it sold.
  int64 sales = 3 [(mesh.product.v1.column) = { classification: CLASSIFICATION_INTERNAL, source_column: "SALES", unit: "KRW" }];
}

// A batch of shops.
message QueryResponse {
  repeated Shop rows = 1;
  string resume_token = 2;
}

// Shops and what they sold.
service ShopsService {
  option (mesh.product.v1.product) = {
    title: "Shops" owner_team: "Merchant Data Team" owner_contact: "merchant@example.com"
    purpose: "What each shop sold" source: "Shop system" policy: "Internal use" freshness: "daily"
  };
  // Streams shops.
  rpc Query(mesh.product.v1.QueryRequest) returns (stream QueryResponse);
  // Describes the product.
  rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse);
}
"#;

const PRODUCT: &str = "\
product: merchant.shops
contract: { proto: shops.proto, service: merchant.shops.v1.ShopsService }
key: [shop_id]
indexes: [region]
amounts: [sales]
source: { csv: shops.csv }
quality:
  - { name: sales_not_negative, holds: sales >= 0 }
";

fn write(dir: &std::path::Path, contract: &str, product: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("shops.proto"), contract).unwrap();
    std::fs::write(dir.join("shops.csv"), "SHOP_ID,REGION,SALES\ns1,Seoul,100\n").unwrap();
    let file = dir.join("shops.product.yaml");
    std::fs::write(&file, product).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mesh_product_check_names_each_mistake_and_catches_breaking_changes() {
    let mesh = Mesh::start(300, false).await;
    let dir = tempfile::tempdir().unwrap();
    let check = |file: &std::path::Path| mesh.mesh().args(["product", "check"]).arg(file).output().unwrap();

    // Well formed; the registry does not hold it yet.
    let file = write(dir.path(), CONTRACT, PRODUCT);
    let output = check(&file);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("merchant.shops is well formed"), "{}", stdout(&output));
    assert!(stdout(&output).contains("not compared with a registry"), "{}", stdout(&output));

    // Each mistake, named where it is.
    for (contract, product, said) in [
        (
            CONTRACT.to_owned(),
            PRODUCT.replace("key: [shop_id]", "key: [shop]"),
            "key: `shop` is no column of merchant.shops.v1.Shop; its columns are shop_id, region, sales",
        ),
        (
            CONTRACT.replace(
                "classification: CLASSIFICATION_PUBLIC, source_column: \"REGION\"",
                "source_column: \"REGION\"",
            ),
            PRODUCT.to_owned(),
            "merchant.shops.v1.Shop has columns with no classification: region;",
        ),
        (
            CONTRACT.to_owned(),
            PRODUCT.replace("csv: shops.csv", "csv: missing.csv"),
            "source.csv: missing.csv is not a file",
        ),
        (
            CONTRACT.to_owned(),
            PRODUCT.replace("indexes:", "indexs:"),
            "shops.product.yaml:4:1: Additional properties are not allowed ('indexs' was unexpected)",
        ),
    ] {
        let file = write(dir.path(), &contract, &product);
        let output = check(&file);
        assert!(!output.status.success(), "{said}");
        assert!(stderr(&output).contains(said), "{said}:\n{}", stderr(&output));
    }

    // Registered as it is; then a field dropped: caught, unless the major version is raised.
    let compiled = mesh_contracts::compile::contract(
        &write(dir.path(), CONTRACT, PRODUCT).with_file_name("shops.proto"),
        "merchant.shops.v1.ShopsService",
    )
    .unwrap();
    let service = mesh.channel_as(&mesh.registry, "merchant-domain", &["service:merchant"]);
    let register = RegisterProductRequest {
        product_id: "merchant.shops".into(),
        domain: "merchant".into(),
        service: "merchant.shops.v1.ShopsService".into(),
        endpoint: "http://127.0.0.1:7010".into(),
        descriptor_set: compiled.descriptor_set,
        ..Default::default()
    };
    CatalogServiceClient::new(service).register_product(register).await.unwrap();
    let file = write(dir.path(), CONTRACT, PRODUCT);
    assert!(stdout(&check(&file)).contains("compatible with version 1 in force"));
    let dropped = CONTRACT.replace("  // What it sold.\n  int64 sales = 3 [(mesh.product.v1.column) = { classification: CLASSIFICATION_INTERNAL, source_column: \"SALES\", unit: \"KRW\" }];\n", "");
    let file = write(
        dir.path(),
        &dropped,
        &PRODUCT
            .replace("amounts: [sales]\n", "")
            .replace("  - { name: sales_not_negative, holds: sales >= 0 }\n", "")
            .replace("quality:\n", "")
            .replace("source: { csv: shops.csv }", "source: { csv: shops.csv, ignore: [SALES] }"),
    );
    let output = check(&file);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("breaking changes against version 1 in force"), "{}", stderr(&output));
    let file = write(
        dir.path(),
        &dropped,
        &format!(
            "major_version: 2\n{}",
            PRODUCT
                .replace("amounts: [sales]\n", "")
                .replace("  - { name: sales_not_negative, holds: sales >= 0 }\n", "")
                .replace("quality:\n", "")
                .replace("source: { csv: shops.csv }", "source: { csv: shops.csv, ignore: [SALES] }")
        ),
    );
    let output = check(&file);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("published as major version 2"), "{}", stdout(&output));
}

/// `mesh product init` writes a contract and a product file from a CSV
/// header; they are refused until every column is classified, then pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mesh_product_init_writes_a_contract_the_team_must_classify() {
    let mesh = Mesh::start(300, false).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sales.csv");
    std::fs::write(
        &csv,
        "SHOP_ID,DAY,AMOUNT,RATE,OPEN\ns1,2026-12-01,100,0.5,true\ns2,2026-12-01,250,1.25,false\n",
    )
    .unwrap();
    let output =
        mesh.mesh().args(["product", "init", "merchant.sales", "--from"]).arg(&csv).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let proto = std::fs::read_to_string(dir.path().join("sales.proto")).unwrap();
    for line in
        ["string shop_id = 1", "string day = 2", "int64 amount = 3", "double rate = 4", "bool open = 5"]
    {
        assert!(proto.contains(line), "{line}:\n{proto}");
    }
    // Written once: not over the team's files.
    let again = mesh.mesh().args(["product", "init", "merchant.sales", "--from"]).arg(&csv).output().unwrap();
    assert!(!again.status.success() && stderr(&again).contains("exists already"), "{}", stderr(&again));

    let file = dir.path().join("sales.product.yaml");
    let output = mesh.mesh().args(["product", "check"]).arg(&file).output().unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("has columns with no classification: shop_id, day, amount, rate, open;"),
        "{}",
        stderr(&output)
    );
    let classified =
        proto.replace("// classification: CLASSIFICATION_...", "classification: CLASSIFICATION_INTERNAL");
    std::fs::write(dir.path().join("sales.proto"), classified).unwrap();
    let output = mesh.mesh().args(["product", "check"]).arg(&file).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("merchant.sales is well formed"), "{}", stdout(&output));
}
