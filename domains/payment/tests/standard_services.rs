//! A domain answers the standard services generic tools rely on: gRPC
//! health per product service, and reflection listing what it serves.

mod common;

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
    assert_eq!(names, ["grpc.health.v1.Health", "woori.payment.v1.CardSpendingService"]);
}
