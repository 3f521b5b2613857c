//! Every kind of bad input gets a precise status naming the field, and none
//! of it changes what the registry has stored.

use crate::common;

mesh_postgres::on_both_backends!(
    bad_registrations_are_refused_and_change_nothing,
    bad_reads_and_lifecycle_calls_name_the_field,
    a_get_product_request_that_does_not_parse_is_refused,
);

use std::time::Duration;

use common::{Fixture, TestRegistry};
use mesh_contracts::catalog::{
    DeprecateProductRequest, GetProductRequest, ListDomainsRequest, ListProductsRequest,
    RegisterProductRequest, RenewLeaseRequest,
};
use tonic::Code;

const ENDPOINT: &str = "http://127.0.0.1:6001";

fn assert_status(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, needle: &str) {
    let status = result.expect_err("bad input was accepted");
    assert_eq!(status.code(), code, "{}", status.message());
    assert!(status.message().contains(needle), "`{needle}` missing from: {}", status.message());
}

async fn bad_registrations_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let good = Fixture::default().register("shop.orders", ENDPOINT);
    registry.client.register_product(good.clone()).await.unwrap();
    let before = registry.client.list_products(ListProductsRequest::default()).await.unwrap().into_inner();

    let with = |edit: &dyn Fn(&mut RegisterProductRequest)| {
        let mut request = good.clone();
        edit(&mut request);
        request
    };
    let no_describe = Fixture::default().source().replace(
        "rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse);",
        "",
    );
    let unary_query =
        Fixture::default().source().replace("returns (stream QueryResponse)", "returns (QueryResponse)");
    let no_owner = Fixture { options: "title: \"x\"".into(), ..Fixture::default() };
    let bad_input_port = Fixture {
        options: format!("{}\n input_products: [\"nope\"]", common::ORDER_OPTIONS),
        ..Fixture::default()
    };
    let cases: Vec<(RegisterProductRequest, Code, &str)> = vec![
        (with(&|r| r.product_id.clear()), Code::InvalidArgument, "product_id: a product name is required"),
        (
            with(&|r| r.product_id = "Shop.Orders".into()),
            Code::InvalidArgument,
            "product_id: `Shop` is not a valid domain part",
        ),
        (
            with(&|r| r.product_id = "orders".into()),
            Code::InvalidArgument,
            "product_id: `orders` is not a product name",
        ),
        (
            with(&|r| r.product_id = "shop.orders; DROP TABLE products".into()),
            Code::InvalidArgument,
            "product_id:",
        ),
        (
            with(&|r| r.domain = "card".into()),
            Code::InvalidArgument,
            "domain: product `shop.orders` belongs to domain `shop`",
        ),
        (with(&|r| r.domain.clear()), Code::InvalidArgument, "domain: domain name is required"),
        (
            with(&|r| r.service = "Orders Service".into()),
            Code::InvalidArgument,
            "service: `Orders Service` is not a fully qualified service name",
        ),
        (
            with(&|r| r.endpoint = "not a url".into()),
            Code::InvalidArgument,
            "endpoint: `not a url` is not a usable endpoint",
        ),
        (with(&|r| r.endpoint = "127.0.0.1:6001".into()), Code::InvalidArgument, "endpoint:"),
        (
            with(&|r| r.endpoint = "ftp://127.0.0.1:6001".into()),
            Code::InvalidArgument,
            "scheme `ftp` is not http or https",
        ),
        (with(&|r| r.endpoint.clear()), Code::InvalidArgument, "endpoint: an endpoint URL is required"),
        (with(&|r| r.descriptor_set.clear()), Code::InvalidArgument, "descriptor_set: is empty"),
        (
            with(&|r| r.descriptor_set = b"\xff\xff\xff garbage".to_vec()),
            Code::InvalidArgument,
            "descriptor_set: does not parse as a FileDescriptorSet",
        ),
        (
            with(&|r| r.descriptor_set = vec![0; 3 * 1024 * 1024]),
            Code::InvalidArgument,
            "descriptor_set: is 3145728 bytes",
        ),
        (
            with(&|r| r.service = "shop.orders.v1.Missing".into()),
            Code::InvalidArgument,
            "service: service `shop.orders.v1.Missing` is not in the descriptor set (it holds: shop.orders.v1.OrdersService)",
        ),
        (
            with(&|r| r.descriptor_set = common::compile("x.proto", &no_describe)),
            Code::InvalidArgument,
            "it has no `Describe` method",
        ),
        (
            with(&|r| r.descriptor_set = common::compile("x.proto", &unary_query)),
            Code::InvalidArgument,
            "`Query` must stream its responses",
        ),
        (with(&|r| r.descriptor_set = no_owner.descriptor_set()), Code::InvalidArgument, "names no owner"),
        (
            with(&|r| r.descriptor_set = bad_input_port.descriptor_set()),
            Code::InvalidArgument,
            "input product `nope`",
        ),
    ];
    for (request, code, needle) in cases {
        assert_status(registry.client.register_product(request).await, code, needle);
    }

    let after = registry.client.list_products(ListProductsRequest::default()).await.unwrap().into_inner();
    assert_eq!(after.products.len(), 1);
    let (mut before, mut after) = (before.products[0].clone(), after.products[0].clone());
    // Lease times move on; everything else is as it was.
    before.endpoints.clear();
    after.endpoints.clear();
    assert_eq!(after, before);
}

async fn bad_reads_and_lifecycle_calls_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let client = &mut registry.client;
    client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    client.register_product(Fixture::default().register("shop.returns", ENDPOINT)).await.unwrap();

    let list = |edit: &dyn Fn(&mut ListProductsRequest)| {
        let mut request = ListProductsRequest::default();
        edit(&mut request);
        request
    };
    assert_status(
        client.list_products(list(&|r| r.page_size = 1001)).await,
        Code::InvalidArgument,
        "page_size: 1001 is above the maximum 1000",
    );
    assert_status(
        client.list_products(list(&|r| r.page_size = -5)).await,
        Code::InvalidArgument,
        "page_size: -5 is negative",
    );
    assert_status(
        client.list_products(list(&|r| r.page_token = "garbage!".into())).await,
        Code::InvalidArgument,
        "page_token: the token is not one this registry issued",
    );
    assert_status(
        client.list_products(list(&|r| r.domain = "Bad Domain".into())).await,
        Code::InvalidArgument,
        "domain:",
    );
    assert_status(
        client.list_products(list(&|r| r.search = "x".repeat(300))).await,
        Code::InvalidArgument,
        "search: is longer than 256",
    );

    // A real token with one character changed is refused too.
    let page = client.list_products(list(&|r| r.page_size = 1)).await.unwrap().into_inner();
    let mut token = page.next_page_token.into_bytes();
    let last = token.len() - 1;
    token[last] = if token[last] == b'A' { b'B' } else { b'A' };
    let token = String::from_utf8(token).unwrap();
    assert_status(
        client
            .list_products(list(&|r| {
                r.page_size = 1;
                r.page_token = token.clone();
            }))
            .await,
        Code::InvalidArgument,
        "page_token:",
    );
    assert_status(
        client
            .list_domains(ListDomainsRequest {
                page_size: 0,
                page_token: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            })
            .await,
        Code::InvalidArgument,
        "page_token:",
    );

    assert_status(
        client
            .get_product(GetProductRequest {
                name: String::new(),
                version: 0,
                known_fingerprint: String::new(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "name: a product name is required",
    );
    assert_status(
        client
            .get_product(GetProductRequest {
                name: "products/".into(),
                version: 0,
                known_fingerprint: String::new(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "name:",
    );
    assert_status(
        client
            .get_product(GetProductRequest {
                name: "shop.nothing".into(),
                version: 0,
                known_fingerprint: String::new(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        "product `shop.nothing` is not in the catalog",
    );
    assert_status(
        client
            .get_product(GetProductRequest {
                name: "shop.orders".into(),
                version: 9,
                known_fingerprint: String::new(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        "has no schema version 9; its versions are 1 to 1",
    );
    assert_status(
        client
            .get_product(GetProductRequest {
                name: "shop.orders".into(),
                version: -1,
                known_fingerprint: String::new(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "version: -1 is negative",
    );
    assert_status(
        client
            .renew_lease(RenewLeaseRequest {
                name: "shop.nothing".into(),
                endpoint: ENDPOINT.into(),
                data: None,
            })
            .await,
        Code::NotFound,
        "product `shop.nothing` is not in the catalog",
    );
    assert_status(
        client
            .renew_lease(RenewLeaseRequest {
                name: "shop.orders".into(),
                endpoint: "nope".into(),
                data: None,
            })
            .await,
        Code::InvalidArgument,
        "endpoint:",
    );
    assert_status(
        client
            .deprecate_product(DeprecateProductRequest { name: "shop.orders".into(), message: "  ".into() })
            .await,
        Code::InvalidArgument,
        "message: a deprecation needs a message",
    );

    // The catalog is untouched.
    let products = client.list_products(ListProductsRequest::default()).await.unwrap().into_inner().products;
    assert_eq!(products.len(), 2);
    assert!(products.iter().all(|p| p.deprecation.is_none() && p.latest_version == 1));
}

async fn a_get_product_request_that_does_not_parse_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let mut grpc = tonic::client::Grpc::new(
        common::channel(registry.addr, mesh_grpc::Credentials::token(&registry.token("kim", &[])).unwrap())
            .await,
    );
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/mesh.catalog.v1.CatalogService/GetProduct");
    // Field 1 (name) claims 100 bytes but the message ends after 2.
    let truncated = bytes::Bytes::from_static(&[0x0a, 100, b'a', b'b']);
    assert_status(
        grpc.unary(tonic::Request::new(truncated), path, mesh_grpc::codec::RawCodec).await,
        Code::InvalidArgument,
        "request is not a mesh.catalog.v1.GetProductRequest",
    );
}
