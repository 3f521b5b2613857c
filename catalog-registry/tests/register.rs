//! Registration: metadata read from the contract, idempotence, schema
//! versions and the refusal of breaking changes.

use crate::common;

mesh_postgres::on_both_backends!(
    registration_reads_governance_out_of_the_contract,
    same_schema_registered_again_makes_no_new_version,
    adding_a_field_is_a_new_compatible_version,
    breaking_change_is_refused_with_each_change_named,
    renaming_a_field_or_the_row_type_is_breaking,
    a_caller_holding_the_descriptor_is_not_sent_it_again,
    the_basic_view_leaves_out_only_the_columns,
);

use std::time::Duration;

use common::{Fixture, ORDER_FIELDS, TestRegistry};
use mesh_contracts::catalog::{GetProductRequest, ProductView, ServingStatus};
use mesh_contracts::descriptor::{ProductShape, column_options};
use mesh_contracts::product::Classification;
use tonic::Code;

const ENDPOINT: &str = "http://127.0.0.1:6001";

async fn registration_reads_governance_out_of_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let fixture = Fixture::default();
    let response = registry
        .client
        .register_product(fixture.register("shop.orders", ENDPOINT))
        .await
        .unwrap()
        .into_inner();
    assert!(response.new_version);
    assert_eq!(response.schema_version, 1);
    assert_eq!(response.lease_ttl.unwrap().seconds, 30);

    let product = response.product.unwrap();
    assert_eq!(product.name, "products/shop.orders");
    assert_eq!(product.domain, "shop");
    assert_eq!(product.service, "shop.orders.v1.OrdersService");
    assert_eq!(product.row_type, "shop.orders.v1.Order");
    assert_eq!(product.description, "Orders placed by customers.");
    assert_eq!(product.status(), ServingStatus::Serving);
    assert_eq!(product.endpoints.len(), 1);
    assert_eq!(product.endpoints[0].uri, ENDPOINT);
    let metadata = product.metadata.unwrap();
    assert_eq!(metadata.title, "Orders per customer");
    assert_eq!(metadata.owner_team, "Shop Data Team");
    assert_eq!(metadata.owner_contact, "shop-data@example.com");
    assert_eq!(metadata.purpose, "Answers how much each customer orders, by province");
    assert_eq!(metadata.source, "Order system nightly extract");
    assert_eq!(metadata.policy, "Internal use; customer_id is personal data");
    assert_eq!(metadata.freshness, "daily by 06:00 KST");
    assert_eq!(metadata.tags, ["orders", "spending"]);

    let columns: Vec<_> = product
        .columns
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.r#type.as_str(),
                c.classification(),
                c.source_column.as_str(),
                c.unit.as_str(),
            )
        })
        .collect();
    assert_eq!(
        columns,
        [
            ("customer_id", "string", Classification::PiiIdentifier, "CUST_NO", ""),
            ("amount", "int64", Classification::Public, "ORD_AM", "KRW"),
            ("province", "string", Classification::QuasiIdentifier, "SIDO", ""),
        ]
    );
    assert_eq!(product.columns[0].description, "Customer number");
    // No description option: the field's doc comment stands in.
    assert_eq!(product.columns[2].description, "Province of delivery.");

    // The stored descriptor decodes rows without generated code, options kept.
    let got = registry
        .client
        .get_product(GetProductRequest {
            name: "shop.orders".into(),
            version: 0,
            known_fingerprint: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.version, 1);
    let pool = prost_reflect::DescriptorPool::decode(got.descriptor_set.as_slice()).unwrap();
    let shape = ProductShape::find(&pool, "shop.orders.v1.OrdersService").unwrap();
    assert_eq!(shape.row_type.full_name(), "shop.orders.v1.Order");
    let amount = shape.row_type.get_field_by_name("amount").unwrap();
    assert_eq!(column_options(&amount).unit, "KRW");
    assert_eq!(shape.options().owner_team, "Shop Data Team");
}

async fn same_schema_registered_again_makes_no_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let request = Fixture::default().register("shop.orders", ENDPOINT);
    let first = registry.client.register_product(request.clone()).await.unwrap().into_inner();
    let second = registry.client.register_product(request).await.unwrap().into_inner();
    assert!(first.new_version);
    assert!(!second.new_version);
    assert_eq!(second.schema_version, 1);
    let product = second.product.unwrap();
    assert_eq!(product.versions.len(), 1);
    assert_eq!(product.versions[0].fingerprint, first.product.unwrap().versions[0].fingerprint);
    assert_eq!(product.versions[0].fingerprint.len(), 64);

    // A second endpoint of the same product is one more endpoint, not a version.
    let mut elsewhere = Fixture::default().register("shop.orders", "http://127.0.0.1:6002");
    elsewhere.major_version = 1;
    let third = registry.client.register_product(elsewhere).await.unwrap().into_inner();
    assert!(!third.new_version);
    assert_eq!(third.product.unwrap().endpoints.len(), 2);

    // An endpoint in plaintext off loopback, where callers' tokens would
    // cross the network in clear, is refused; over TLS it is one more.
    let mut plaintext = Fixture::default().register("shop.orders", "http://10.1.2.3:6003");
    plaintext.major_version = 1;
    let refused = registry.client.register_product(plaintext).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("plaintext on a host other than loopback"), "{}", refused.message());
    let mut encrypted = Fixture::default().register("shop.orders", "https://10.1.2.3:6003");
    encrypted.major_version = 1;
    let fourth = registry.client.register_product(encrypted).await.unwrap().into_inner();
    assert_eq!(fourth.product.unwrap().endpoints.len(), 3);
}

async fn adding_a_field_is_a_new_compatible_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let added = Fixture { fields: format!("{ORDER_FIELDS}\n  int64 item_count = 4;"), ..Fixture::default() };
    let response =
        registry.client.register_product(added.register("shop.orders", ENDPOINT)).await.unwrap().into_inner();
    assert!(response.new_version);
    assert_eq!(response.schema_version, 2);
    let product = response.product.unwrap();
    assert_eq!(product.latest_version, 2);
    assert_eq!(product.major_version, 1);
    assert_eq!(product.versions.len(), 2);
    assert_eq!(product.versions[1].changes, ["field `Order.item_count` (4) added"]);
    assert_eq!(product.columns.len(), 4);

    // Version 1's descriptor is still there, without the new field.
    let v1 = registry
        .client
        .get_product(GetProductRequest {
            name: "products/shop.orders".into(),
            version: 1,
            known_fingerprint: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let pool = prost_reflect::DescriptorPool::decode(v1.descriptor_set.as_slice()).unwrap();
    let row = pool.get_message_by_name("shop.orders.v1.Order").unwrap();
    assert!(row.get_field_by_name("item_count").is_none());
}

async fn breaking_change_is_refused_with_each_change_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let original = Fixture {
        extra_methods: "  rpc Export(ExportRequest) returns (ExportResponse);".into(),
        ..Fixture::default()
    };
    registry.client.register_product(original.register("shop.orders", ENDPOINT)).await.unwrap();

    // amount retyped, province renumbered 3 -> 7, customer_id removed, Export removed.
    let breaking =
        Fixture { fields: "string amount = 2;\n  string province = 7;".into(), ..Fixture::default() };
    let status =
        registry.client.register_product(breaking.register("shop.orders", ENDPOINT)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let message = status.message();
    for change in [
        "method `Export` removed",
        "field `Order.customer_id` (1) removed",
        "field `Order.amount` retyped from int64 to string",
        "field `Order.province` renumbered from 3 to 7",
        "raise major_version to 2",
    ] {
        assert!(message.contains(change), "`{change}` missing from: {message}");
    }

    // Nothing was stored by the refused registration.
    let product = registry
        .client
        .get_product(GetProductRequest {
            name: "shop.orders".into(),
            version: 0,
            known_fingerprint: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!(product.latest_version, 1);
    assert_eq!(product.columns.len(), 3);

    // Raising the major version publishes the breaking change.
    let mut bumped = breaking.register("shop.orders", ENDPOINT);
    bumped.major_version = 2;
    let response = registry.client.register_product(bumped).await.unwrap().into_inner();
    assert!(response.new_version);
    assert_eq!(response.schema_version, 2);
    let product = response.product.unwrap();
    assert_eq!(product.major_version, 2);
    assert_eq!(product.versions[1].major_version, 2);
    assert!(product.versions[1].changes.contains(&"major version raised from 1 to 2".to_owned()));
    assert!(product.versions[1].changes.contains(&"method `Export` removed".to_owned()));

    // Registering under the old major version is now refused.
    let status =
        registry.client.register_product(original.register("shop.orders", ENDPOINT)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("below the current major version 2"), "{}", status.message());
}

async fn renaming_a_field_or_the_row_type_is_breaking() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let renamed =
        Fixture { fields: ORDER_FIELDS.replace("province = 3", "region = 3"), ..Fixture::default() };
    let status =
        registry.client.register_product(renamed.register("shop.orders", ENDPOINT)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("field `Order.province` (3) renamed to `region`"),
        "{}",
        status.message()
    );
}

async fn a_caller_holding_the_descriptor_is_not_sent_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let get = |known: &str| GetProductRequest {
        name: "shop.orders".into(),
        version: 0,
        known_fingerprint: known.into(),
        ..Default::default()
    };
    let full = registry.client.get_product(get("")).await.unwrap().into_inner();
    assert_eq!(full.fingerprint.len(), 64);
    assert!(!full.descriptor_set.is_empty());
    assert_eq!(full.fingerprint, full.product.as_ref().unwrap().versions[0].fingerprint);

    // Twice, so the second answer comes from the registry's cache.
    for _ in 0..2 {
        let light = registry.client.get_product(get(&full.fingerprint)).await.unwrap().into_inner();
        assert!(light.descriptor_set.is_empty());
        assert_eq!(light.fingerprint, full.fingerprint);
        assert_eq!(light.product, full.product);
    }
    let stale = registry.client.get_product(get("0000")).await.unwrap().into_inner();
    assert_eq!(stale.descriptor_set, full.descriptor_set);
}

async fn the_basic_view_leaves_out_only_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let get = |view: ProductView| GetProductRequest {
        name: "shop.orders".into(),
        view: view.into(),
        ..Default::default()
    };
    let full = registry.client.get_product(get(ProductView::Full)).await.unwrap().into_inner();
    assert!(!full.product.as_ref().unwrap().columns.is_empty());
    let unspecified = registry.client.get_product(get(ProductView::Unspecified)).await.unwrap().into_inner();
    assert_eq!(unspecified, full, "no view means the full one");

    // Twice, so the second answer comes from the registry's cache.
    for _ in 0..2 {
        let basic = registry.client.get_product(get(ProductView::Basic)).await.unwrap().into_inner();
        let mut expected = full.clone();
        expected.product.as_mut().unwrap().columns.clear();
        assert_eq!(basic, expected);
        assert!(!basic.product.unwrap().endpoints.is_empty());
    }

    let status = registry
        .client
        .get_product(GetProductRequest { name: "shop.orders".into(), view: 7, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("view: 7 is not a product view"), "{}", status.message());
}
