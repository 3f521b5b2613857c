use super::*;
use crate::declared::{Declared, declare};

const GOOD: &str = "\
product: merchant.shops
contract:
  proto: shops.proto
  service: merchant.shops.v1.ShopsService
key: [shop_id]
indexes: [region]
amounts: [sales]
source:
  csv: shops.csv
quality:
  - name: sales_not_negative
    description: no shop sells less than nothing
    holds: sales >= 0
refresh:
  when_source_changes: true
";

fn mistakes(text: &str) -> Vec<String> {
    parse(text, Path::new("shops.product.yaml")).unwrap_err().0.iter().map(ToString::to_string).collect()
}

#[test]
fn a_good_file_reads() {
    let file = parse(GOOD, Path::new("shops.product.yaml")).unwrap();
    assert_eq!(file.product, "merchant.shops");
    assert_eq!(file.contract.service, "merchant.shops.v1.ShopsService");
    assert_eq!(
        (file.key.as_slice(), file.source.csv.as_deref()),
        (&["shop_id".to_owned()][..], Some(Path::new("shops.csv")))
    );
    assert_eq!(file.quality[0].holds, "sales >= 0");
    assert!(file.refresh.when_source_changes);
}

#[test]
fn each_mistake_is_named_where_it_is() {
    // A field missing: said of the object that lacks it.
    let no_key = GOOD.replace("key: [shop_id]\n", "");
    assert_eq!(mistakes(&no_key), ["shops.product.yaml:1:1: \"key\" is a required property"]);
    // A field misspelt: said where its object is, naming it.
    let misspelt = GOOD.replace("  service:", "  servce:");
    assert_eq!(
        mistakes(&misspelt),
        [
            "shops.product.yaml:2:1: contract: \"service\" is a required property",
            "shops.product.yaml:4:3: contract: Additional properties are not allowed ('servce' was unexpected)"
        ]
    );
    // A value of the wrong kind: said where it is.
    let wrong = GOOD.replace("key: [shop_id]", "key: shop_id");
    assert_eq!(mistakes(&wrong), ["shops.product.yaml:5:1: key: \"shop_id\" is not of type \"array\""]);
    let rule = GOOD.replace("- name: sales_not_negative", "- name: Sales Not Negative");
    let said = mistakes(&rule);
    assert!(
        said[0].starts_with("shops.product.yaml:11:5: quality.0.name: \"Sales Not Negative\" does not match"),
        "{said:?}"
    );
    // Two sources, or none: one of them.
    let two = GOOD.replace("  csv: shops.csv", "  csv: shops.csv\n  postgres: shop.sales");
    assert_eq!(
        mistakes(&two),
        ["shops.product.yaml:8:1: source: name exactly one of csv, tsv, postgres or sql"]
    );
    // Not YAML at all.
    let broken = mistakes("product: [unclosed\n");
    assert!(broken[0].starts_with("shops.product.yaml:") && broken[0].contains("is not YAML"), "{broken:?}");
}

#[test]
fn the_schema_is_the_one_published() {
    let published = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schemas/product-file.schema.json"
    ))
    .unwrap();
    assert_eq!(published, SCHEMA);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), GOOD).unwrap();
    assert!(read(file.path()).is_ok());
}

const CONTRACT: &str = r#"syntax = "proto3";
package merchant.shops.v1;
import "mesh/product/v1/options.proto";
import "mesh/product/v1/query.proto";
// One shop.
message Shop {
  // The shop's number.
  string shop_id = 1 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PUBLIC, source_column: "SHOP_ID" }];
  // Its region.
  string region = 2 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PUBLIC }];
  // What it sold.
  int64 sales = 3 [(mesh.product.v1.column) = { classification: CLASSIFICATION_INTERNAL, source_column: "SALES" }];
}
// A batch.
message QueryResponse {
  repeated Shop rows = 1;
  string resume_token = 2;
}
// Shops.
service ShopsService {
  option (mesh.product.v1.product) = { title: "Shops" owner_team: "Merchant" };
  // Streams shops.
  rpc Query(mesh.product.v1.QueryRequest) returns (stream QueryResponse);
  // Describes the product.
  rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse);
}
"#;

/// What `declare` says of `product` beside the contract and `csv`.
fn declared(product: &str, csv: &str) -> Result<Declared, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shops.proto"), CONTRACT).unwrap();
    std::fs::write(dir.path().join("shops.csv"), csv).unwrap();
    let path = dir.path().join("shops.product.yaml");
    std::fs::write(&path, product).unwrap();
    let shown = dir.path().display().to_string();
    declare(&path).map_err(|m| m.0.iter().map(|m| m.to_string().replace(&shown, "DIR")).collect())
}

#[test]
fn a_declared_product_names_only_what_its_contract_and_source_have() {
    let header = "SHOP_ID,REGION,SALES\ns1,Seoul,1\n";
    let good = declared(GOOD, header).unwrap();
    assert_eq!(good.columns(), ["shop_id", "region", "sales"]);
    assert_eq!(good.file.table(), "shops");

    let key = declared(&GOOD.replace("key: [shop_id]", "key: [shop]"), header).unwrap_err();
    assert_eq!(
        key,
        [
            "DIR/shops.product.yaml:5:7: key: `shop` is no column of merchant.shops.v1.Shop; its columns are shop_id, \
          region, sales"
        ]
    );
    let index = declared(&GOOD.replace("indexes: [region]", "indexes: [regoin]"), header).unwrap_err();
    assert!(index[0].starts_with("DIR/shops.product.yaml:6:11: indexes: `regoin` is no column"), "{index:?}");

    let extra = declared(GOOD, "SHOP_ID,REGION,SALES,OWNER\ns1,Seoul,1,x\n").unwrap_err();
    assert_eq!(
        extra,
        [
            "DIR/shops.product.yaml:9:3: source.csv: shops.csv has columns the contract lacks: OWNER; add a field for \
          each to the contract (its source_column naming the column), or list them under source.ignore"
        ]
    );
    let ignored = GOOD.replace("  csv: shops.csv", "  csv: shops.csv\n  ignore: [owner]");
    assert!(declared(&ignored, "SHOP_ID,REGION,SALES,OWNER\ns1,Seoul,1,x\n").is_ok());

    let missing = declared(GOOD, "SHOP_ID,SALES\ns1,1\n").unwrap_err();
    assert_eq!(
        missing,
        [
            "DIR/shops.product.yaml:9:3: source.csv: shops.csv has no column for field `region` (looked for region); \
          its columns are SHOP_ID, SALES"
        ]
    );
    let twice = GOOD.replace("refresh:", "  - { name: sales_not_negative, holds: sales < 10 }\nrefresh:");
    let said = declared(&twice, header).unwrap_err();
    assert_eq!(
        said,
        [
            "DIR/shops.product.yaml:14:7: quality: two rules are named `sales_not_negative`; give each its own name"
        ]
    );
}

#[test]
fn relative_paths_are_joined_plainly() {
    let joined = |folder: &str, path: &str| crate::joined(Path::new(folder), Path::new(path));
    assert_eq!(joined(".mesh/products/payment", "../../source/x.csv"), Path::new(".mesh/source/x.csv"));
    assert_eq!(joined(".", "./shops.csv"), Path::new("shops.csv"));
    assert_eq!(joined("/mesh/products/a", "../../proto/p.proto"), Path::new("/mesh/proto/p.proto"));
    assert_eq!(joined("a", "../../b"), Path::new("../b"));
}
