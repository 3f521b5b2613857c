//! The selective query (one customer in one quarter) is served by an index,
//! not a scan: checked with SQLite's EXPLAIN QUERY PLAN on the SQL the
//! domain really runs.

use crate::common;

use mesh_contracts::product::QueryRequest;
use mesh_runtime::Grant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_customer_in_one_quarter_uses_an_index() {
    let domain = common::start(200, &common::nowhere()).await;
    // As the payment domain's owner, whose token the test client carries.
    let owner = mesh_grpc::auth::Principal {
        subject: "payment-owner".into(),
        issuer: mesh_grpc::auth::issuer::LOCAL_ISSUER.into(),
        roles: vec!["owner:payment".into()],
    };
    let grant = Grant::decide(&owner, domain.product.access_policy(), None, None).unwrap();
    let explain = |request: &QueryRequest| domain.product.explain(request, &grant).unwrap();
    let selective =
        QueryRequest { filter: r#"seq = "0000000042" AND bas_yh = "2024Q2""#.into(), ..Default::default() };
    let detail = explain(&selective);
    assert!(
        detail.contains("SEARCH card_spending USING INDEX card_spending_by_key (bas_yh=? AND seq=?)"),
        "{detail}"
    );
    assert!(!detail.contains("SCAN card_spending"), "{detail}");
    assert!(!detail.contains("TEMP B-TREE"), "the natural order needs no sort: {detail}");

    let one_customer = QueryRequest { filter: r#"seq = "0000000042""#.into(), ..Default::default() };
    let detail = explain(&one_customer);
    assert!(detail.contains("USING INDEX"), "{detail}");

    // Resuming a quarter's stream seeks in the key index rather than rescanning.
    let mut stream = domain
        .client
        .clone()
        .query(QueryRequest { filter: r#"bas_yh = "2024Q2""#.into(), limit: 300, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let token = stream.message().await.unwrap().unwrap().resume_token;
    let resumed = QueryRequest {
        filter: r#"bas_yh = "2024Q2""#.into(),
        limit: 300,
        resume_token: token,
        ..Default::default()
    };
    let detail = explain(&resumed);
    assert!(detail.contains("SEARCH card_spending USING INDEX card_spending_by_key"), "{detail}");
    assert!(!detail.contains("SCAN card_spending"), "{detail}");
}
