//! Discovery reads: paging through products, filters, free-text search and domains.

use crate::common;

mesh_postgres::on_both_backends!(
    products_page_in_name_order_with_totals,
    products_filter_by_domain_owner_tag_and_search,
    a_page_token_is_bound_to_its_filters,
    domains_list_their_products_and_owners,
);

use std::time::Duration;

use common::{Fixture, ORDER_OPTIONS, TestRegistry};
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{ListDomainsRequest, ListProductsRequest};
use tonic::Code;

/// Registers eight products over three domains; two are owned by another
/// team and tagged differently.
async fn populate(client: &mut CatalogServiceClient<mesh_grpc::MeshChannel>) {
    let ids = [
        "shop.orders",
        "shop.returns",
        "shop.baskets",
        "card.spending",
        "card.limits",
        "card.fraud_flags",
        "risk.scores",
        "risk.alerts",
    ];
    for (i, id) in ids.iter().enumerate() {
        let options = if id.starts_with("risk.") {
            ORDER_OPTIONS
                .replace("Shop Data Team", "Risk Team")
                .replace(r#"["orders", "spending"]"#, r#"["risk"]"#)
        } else {
            ORDER_OPTIONS.to_owned()
        };
        let options = if *id == "card.fraud_flags" {
            options.replace("Answers how much", "Flags suspicious transactions and answers how much")
        } else {
            options
        };
        let fixture = Fixture { options, ..Fixture::default() };
        client
            .register_product(fixture.register(id, &format!("http://127.0.0.1:{}", 7000 + i)))
            .await
            .unwrap();
    }
}

async fn all_pages(
    client: &mut CatalogServiceClient<mesh_grpc::MeshChannel>,
    request: ListProductsRequest,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut request = request;
    loop {
        let page = client.list_products(request.clone()).await.unwrap().into_inner();
        let limit = if request.page_size == 0 { 50 } else { request.page_size as usize };
        assert!(page.products.len() <= limit);
        ids.extend(page.products.into_iter().map(|p| p.product_id));
        if page.next_page_token.is_empty() {
            return ids;
        }
        request.page_token = page.next_page_token;
    }
}

async fn products_page_in_name_order_with_totals() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    populate(&mut registry.client).await;

    let first = registry
        .client
        .list_products(ListProductsRequest { page_size: 3, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.total_size, 8);
    assert_eq!(first.products.len(), 3);
    assert!(!first.next_page_token.is_empty());

    let ids =
        all_pages(&mut registry.client, ListProductsRequest { page_size: 3, ..Default::default() }).await;
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(ids.len(), 8);

    // A page size that divides the total exactly still ends with an empty token.
    let ids =
        all_pages(&mut registry.client, ListProductsRequest { page_size: 4, ..Default::default() }).await;
    assert_eq!(ids.len(), 8);
    let whole = registry.client.list_products(ListProductsRequest::default()).await.unwrap().into_inner();
    assert_eq!(whole.products.len(), 8);
    assert!(whole.next_page_token.is_empty());
}

async fn products_filter_by_domain_owner_tag_and_search() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    populate(&mut registry.client).await;
    let client = &mut registry.client;

    let by_domain =
        all_pages(client, ListProductsRequest { domain: "card".into(), page_size: 2, ..Default::default() })
            .await;
    assert_eq!(by_domain, ["card.fraud_flags", "card.limits", "card.spending"]);

    let by_owner =
        all_pages(client, ListProductsRequest { owner: "risk team".into(), ..Default::default() }).await;
    assert_eq!(by_owner, ["risk.alerts", "risk.scores"]);

    let by_tag = all_pages(client, ListProductsRequest { tag: "RISK".into(), ..Default::default() }).await;
    assert_eq!(by_tag, ["risk.alerts", "risk.scores"]);
    let by_tag = all_pages(client, ListProductsRequest { tag: "orders".into(), ..Default::default() }).await;
    assert_eq!(by_tag.len(), 6);

    // Every word must match, anywhere in name, purpose or columns, any case.
    let found = all_pages(
        client,
        ListProductsRequest { search: "SUSPICIOUS transactions".into(), ..Default::default() },
    )
    .await;
    assert_eq!(found, ["card.fraud_flags"]);
    let found =
        all_pages(client, ListProductsRequest { search: "returns".into(), ..Default::default() }).await;
    assert_eq!(found, ["shop.returns"]);
    let found = all_pages(
        client,
        ListProductsRequest { search: "order amount".into(), domain: "risk".into(), ..Default::default() },
    )
    .await;
    assert_eq!(found, ["risk.alerts", "risk.scores"]);
    let found =
        all_pages(client, ListProductsRequest { search: "nothing-like-this".into(), ..Default::default() })
            .await;
    assert!(found.is_empty());
    // SQL syntax in a search is just text.
    let found =
        all_pages(client, ListProductsRequest { search: "' OR 1=1 --".into(), ..Default::default() }).await;
    assert!(found.is_empty());
}

async fn a_page_token_is_bound_to_its_filters() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    populate(&mut registry.client).await;
    let page = registry
        .client
        .list_products(ListProductsRequest { page_size: 1, domain: "card".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let status = registry
        .client
        .list_products(ListProductsRequest {
            page_size: 1,
            domain: "shop".into(),
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("page_token:"), "{}", status.message());
}

async fn domains_list_their_products_and_owners() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    populate(&mut registry.client).await;

    let first = registry
        .client
        .list_domains(ListDomainsRequest { page_size: 2, page_token: String::new() })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = first.domains.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["card", "risk"]);
    assert_eq!(first.domains[0].products, ["card.fraud_flags", "card.limits", "card.spending"]);
    assert_eq!(first.domains[0].owner_teams, ["Shop Data Team"]);
    assert_eq!(first.domains[0].serving_products, 3);
    assert_eq!(first.domains[1].owner_teams, ["Risk Team"]);

    let second = registry
        .client
        .list_domains(ListDomainsRequest { page_size: 2, page_token: first.next_page_token })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = second.domains.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["shop"]);
    assert!(second.next_page_token.is_empty());
}
