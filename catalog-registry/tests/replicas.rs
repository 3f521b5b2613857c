//! Two registries on one PostgreSQL database serve one catalog: a write on
//! either is read on the other at once, even where the other had the
//! answer cached, and the lease times are the database's. A registry whose
//! database is gone says so, for the caller to try another replica.

use crate::common;

use std::time::Duration;

use common::{Fixture, TestRegistry};
use mesh_contracts::catalog::{
    DeprecateProductRequest, DeregisterEndpointRequest, GetProductRequest, ListProductsRequest, ServingStatus,
};

fn get(name: &str) -> GetProductRequest {
    GetProductRequest { name: name.into(), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_database_serve_one_catalog() {
    let (first_dir, second_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ttl = Duration::from_secs(30);
    let mut first = common::on_postgres(TestRegistry::start(&first_dir.path().join("r.sqlite"), ttl)).await;
    let mut second = first.replica(second_dir.path(), ttl).await;

    // Registered on the first, read on the second.
    let fixture = Fixture::default();
    first.client.register_product(fixture.register("shop.orders", "http://127.0.0.1:6001")).await.unwrap();
    let read = second.client.get_product(get("shop.orders")).await.unwrap().into_inner();
    let product = read.product.unwrap();
    assert_eq!(product.status(), ServingStatus::Serving);
    assert_eq!(product.endpoints.len(), 1);

    // The second holds the answer cached; each write on the first shows
    // on the second at once.
    for round in 0..20 {
        let endpoint = format!("http://127.0.0.1:{}", 7000 + round);
        second.client.get_product(get("shop.orders")).await.unwrap();
        first.client.register_product(fixture.register("shop.orders", &endpoint)).await.unwrap();
        let product =
            second.client.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
        assert!(
            product.endpoints.iter().any(|e| e.uri == endpoint),
            "round {round}: the second replica does not show the endpoint registered on the first"
        );
        first
            .client
            .deregister_endpoint(DeregisterEndpointRequest {
                name: "products/shop.orders".into(),
                endpoint: endpoint.clone(),
            })
            .await
            .unwrap();
        let product =
            second.client.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
        assert!(
            !product.endpoints.iter().any(|e| e.uri == endpoint),
            "round {round}: a deregistration not seen"
        );
    }
    second
        .client
        .deprecate_product(DeprecateProductRequest {
            name: "products/shop.orders".into(),
            message: "use shop.orders_v2".into(),
        })
        .await
        .unwrap();
    let product = first.client.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
    assert_eq!(product.deprecation.unwrap().message, "use shop.orders_v2");
    let listed = first.client.list_products(ListProductsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.total_size, 1);

    // The lease runs from the database's clock: granted now by its time.
    let endpoint = &product.endpoints[0];
    let granted = endpoint.renew_time.unwrap().seconds;
    let expires = endpoint.lease_expire_time.unwrap().seconds;
    assert_eq!(expires - granted, 30);
    let database_now: i64 =
        first.stored(first_dir.path(), "SELECT CAST(extract(epoch FROM now()) AS BIGINT)").await[0][0]
            .parse()
            .unwrap();
    assert!((database_now - granted).abs() < 60, "granted at {granted}, the database says {database_now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_loses_its_database_answers_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let server = mesh_postgres::testing::TestServer::start();
    let mut registry = TestRegistry::on_url(dir.path(), server.url()).await;
    let fixture = Fixture::default();
    registry.client.register_product(fixture.register("shop.orders", "http://127.0.0.1:6001")).await.unwrap();
    server.kill();
    let status = registry.client.list_products(ListProductsRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(
        status.message(),
        "the catalog's database cannot be reached; retry shortly, or on another registry replica"
    );
}
