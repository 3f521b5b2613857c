//! The registry's quotas under a registrant who tries to fill it: versions
//! pruned to the last ones kept, products per domain, endpoints per product,
//! expired endpoints removed after the grace period, the major version
//! rising one at a time, pages bounded by bytes.

use crate::common;

mesh_postgres::on_both_backends!(
    old_schema_versions_lose_their_descriptor_sets_but_keep_their_history,
    a_domain_cannot_register_more_products_than_its_quota,
    endpoints_are_capped_and_expired_ones_removed_after_the_grace_period,
    the_major_version_rises_one_at_a_time,
    a_page_of_products_stays_far_below_the_client_message_limit,
);

use std::time::Duration;

use catalog_registry::Clock;
use catalog_registry::quota::{
    ENDPOINTS_PER_PRODUCT, EXPIRED_ENDPOINT_GRACE_MS, PRODUCTS_PER_DOMAIN, VERSIONS_KEPT,
};
use common::{Fixture, ORDER_FIELDS, TestRegistry};
use mesh_contracts::catalog::{GetProductRequest, ListProductsRequest, ProductView};
use tonic::Code;

const ENDPOINT: &str = "http://127.0.0.1:6001";

async fn registry(dir: &tempfile::TempDir) -> TestRegistry {
    TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await
}

async fn old_schema_versions_lose_their_descriptor_sets_but_keep_their_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = registry(&dir).await;
    let mut fields = ORDER_FIELDS.to_owned();
    let total = VERSIONS_KEPT + 3;
    for n in 1..=total {
        if n > 1 {
            fields.push_str(&format!("\n  int64 extra_{n} = {};", n + 10));
        }
        let fixture = Fixture { fields: fields.clone(), ..Fixture::default() };
        registry.client.register_product(fixture.register("shop.orders", ENDPOINT)).await.unwrap();
    }
    let get = |version: i64| GetProductRequest {
        name: "shop.orders".into(),
        version,
        view: ProductView::Full as i32,
        ..Default::default()
    };
    let latest = registry.client.get_product(get(0)).await.unwrap().into_inner();
    assert_eq!(latest.product.as_ref().unwrap().versions.len() as i64, total);
    assert!(!latest.descriptor_set.is_empty());
    let kept = registry.client.get_product(get(total - VERSIONS_KEPT + 1)).await.unwrap().into_inner();
    assert!(!kept.descriptor_set.is_empty());
    let pruned = registry.client.get_product(get(total - VERSIONS_KEPT)).await.unwrap_err();
    assert_eq!(pruned.code(), Code::NotFound);
    assert_eq!(
        pruned.message(),
        format!(
            "schema version 3 of `shop.orders` was pruned: the registry keeps the descriptor sets of the last \
             {VERSIONS_KEPT} versions; its fingerprint and changes remain in the product's versions"
        )
    );
}

async fn a_domain_cannot_register_more_products_than_its_quota() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = registry(&dir).await;
    for n in 0..PRODUCTS_PER_DOMAIN {
        registry
            .client
            .register_product(Fixture::default().register(&format!("shop.p{n}"), ENDPOINT))
            .await
            .unwrap();
    }
    let refused = registry
        .client
        .register_product(Fixture::default().register("shop.one_more", ENDPOINT))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused.message(),
        format!(
            "domain `shop` already has {PRODUCTS_PER_DOMAIN} products, the most a domain may register \
             ({PRODUCTS_PER_DOMAIN}); delete products it no longer serves"
        )
    );
    // Registering a product it already has still works.
    registry.client.register_product(Fixture::default().register("shop.p0", ENDPOINT)).await.unwrap();
}

async fn endpoints_are_capped_and_expired_ones_removed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual();
    let mut registry =
        TestRegistry::start_with_clock(&dir.path().join("r.sqlite"), Duration::from_secs(30), clock.clone())
            .await;
    for n in 0..ENDPOINTS_PER_PRODUCT {
        let endpoint = format!("http://127.0.0.1:{}", 7000 + n);
        registry
            .client
            .register_product(Fixture::default().register("shop.orders", &endpoint))
            .await
            .unwrap();
    }
    let refused = registry
        .client
        .register_product(Fixture::default().register("shop.orders", "http://127.0.0.1:9999"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(
        refused.message(),
        format!(
            "product `shop.orders` already has {ENDPOINTS_PER_PRODUCT} endpoints, the most a product may have \
             ({ENDPOINTS_PER_PRODUCT}); deregister endpoints that are gone"
        )
    );
    // Long after their leases ran out, the old endpoints are gone and a new one fits.
    clock.advance(Duration::from_millis((EXPIRED_ENDPOINT_GRACE_MS + 31_000) as u64));
    let fresh = registry
        .client
        .register_product(Fixture::default().register("shop.orders", "http://127.0.0.1:9999"))
        .await
        .unwrap()
        .into_inner();
    let endpoints = fresh.product.unwrap().endpoints;
    assert_eq!(endpoints.iter().map(|e| e.uri.as_str()).collect::<Vec<_>>(), ["http://127.0.0.1:9999"]);
}

async fn the_major_version_rises_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = registry(&dir).await;
    let mut squatter = Fixture::default().register("shop.orders", ENDPOINT);
    squatter.major_version = u32::MAX;
    let refused = registry.client.register_product(squatter).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(
        refused.message(),
        "major_version: 4294967295 for the new product `shop.orders`; a product starts at major version 1"
    );
    registry.client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let mut jump = Fixture::default().register("shop.orders", ENDPOINT);
    jump.major_version = 3;
    let refused = registry.client.register_product(jump).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(
        refused.message(),
        "major_version: 3 jumps past 2 for `shop.orders` (now at 1); raise it one at a time"
    );
}

async fn a_page_of_products_stays_far_below_the_client_message_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = registry(&dir).await;
    // Products with long column descriptions: a full page of them would
    // pass 4 MiB.
    let description = "d".repeat(20_000);
    let fields: String = (1..=20)
        .map(|n| {
            format!("  int64 f{n} = {n} [(mesh.product.v1.column) = {{ description: \"{description}\" }}];\n")
        })
        .collect();
    for n in 0..30 {
        let fixture = Fixture { fields: fields.clone(), ..Fixture::default() };
        registry.client.register_product(fixture.register(&format!("shop.p{n:02}"), ENDPOINT)).await.unwrap();
    }
    let mut seen = 0;
    let mut token = String::new();
    loop {
        let request = ListProductsRequest { page_size: 1000, page_token: token, ..Default::default() };
        let page = registry.client.list_products(request).await.unwrap().into_inner();
        assert!(
            prost::Message::encoded_len(&page) < 2 * 1024 * 1024,
            "a page of {} bytes",
            prost::Message::encoded_len(&page)
        );
        seen += page.products.len();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, 30);
}
