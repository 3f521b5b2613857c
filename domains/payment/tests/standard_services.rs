//! A domain answers the standard services generic tools rely on: gRPC
//! health per product service, and reflection listing what it serves.

use crate::common;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_describe_the_domain() {
    let domain = common::start(20, &common::nowhere()).await;
    let channel = common::connect(domain.addr, mesh_grpc::Credentials::none()).await;

    let mut health = HealthClient::new(channel.clone());
    let status = health
        .check(HealthCheckRequest { service: "woori.payment.v1.CardSpendingService".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status(), ServingStatus::Serving);
    let unknown =
        health.check(HealthCheckRequest { service: "woori.customer.v1.CustomerProfileService".into() }).await;
    assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);

    let mut names = mesh_grpc::reflection::reflected_services(channel).await.unwrap();
    names.sort_unstable();
    assert_eq!(
        names,
        ["grpc.health.v1.Health", "mesh.product.v1.AuditService", "woori.payment.v1.CardSpendingService"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_and_describe_need_a_token_the_domain_accepts() {
    use mesh_contracts::product::{DescribeRequest, QueryRequest};
    use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
    use mesh_grpc::Credentials;
    use mesh_grpc::auth::test_tokens::TestIssuer;

    let keys = tempfile::tempdir().unwrap();
    let issuer =
        TestIssuer::for_audience(keys.path(), &mesh_grpc::auth::exchange::domain_audience("payment"));
    let auth = issuer.auth_args();
    let domain = common::start_with(tempfile::tempdir().unwrap(), move |dir| {
        let mut args = common::args(dir, 20, &common::nowhere());
        args.domain.auth = auth;
        args
    })
    .await;
    let client = |credentials: Credentials| async move {
        CardSpendingServiceClient::new(common::connect(domain.addr, credentials).await)
    };

    let mut anonymous = client(Credentials::none()).await;
    for status in [
        anonymous.query(QueryRequest::default()).await.unwrap_err(),
        anonymous.describe(DescribeRequest::default()).await.unwrap_err(),
    ] {
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert_eq!(
            status.message(),
            "the call carries no bearer token; send `authorization: Bearer <token>` (mesh token print)"
        );
    }
    for (what, token, message) in issuer.bad_tokens() {
        let status = client(Credentials::token(&token).unwrap())
            .await
            .query(QueryRequest::default())
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (tonic::Code::Unauthenticated, message.as_str()),
            "{what}"
        );
    }
    // A token for the registry, good and signed by a trusted key, is refused here.
    let registry_token =
        issuer.key.sign(&mesh_grpc::auth::test_tokens::claims("kim", &[], serde_json::json!({})));
    let status = client(Credentials::token(&registry_token).unwrap())
        .await
        .query(QueryRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(
        status.message().contains("this service accepts `urn:woori-mesh:domain:payment`"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("mesh token print --for payment"), "{}", status.message());
    let mut reader = client(Credentials::token(&issuer.token("kim", &[])).unwrap()).await;
    let described = reader.describe(DescribeRequest::default()).await.unwrap().into_inner();
    assert_eq!(described.product, "payment.card_spending");
}
