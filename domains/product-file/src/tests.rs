use super::*;

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
