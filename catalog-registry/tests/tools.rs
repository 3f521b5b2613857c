//! What people exploring with standard tools see: grpcurl listing and
//! describing the catalog (reflection v1alpha), reflection v1, and gRPC health.

use crate::common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Fixture, TestRegistry};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// grpcurl as installed by `scripts/install-tools.sh`, or from PATH.
fn grpcurl() -> PathBuf {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/grpcurl");
    if local.exists() {
        return local;
    }
    let on_path = Command::new("grpcurl").arg("--version").output();
    assert!(on_path.is_ok(), "grpcurl not found: run scripts/install-tools.sh (scripts/test.sh does)");
    PathBuf::from("grpcurl")
}

fn run_grpcurl(args: &[&str]) -> String {
    let output = Command::new(grpcurl()).args(args).output().expect("grpcurl runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "grpcurl {args:?} failed: {text}");
    text
}

// grpcurl runs as a blocking child process: the server needs a thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_and_describes_the_catalog_with_docs() {
    let dir = tempfile::tempdir().unwrap();
    let registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let addr = registry.addr.to_string();

    let services = run_grpcurl(&["-plaintext", &addr, "list"]);
    for service in ["mesh.catalog.v1.CatalogService", "grpc.health.v1.Health"] {
        assert!(services.lines().any(|l| l == service), "{service} not listed: {services}");
    }
    // Only what this process serves is advertised, not every contract it knows.
    assert!(!services.contains("woori."), "{services}");
    let described = run_grpcurl(&["-plaintext", &addr, "describe", "mesh.catalog.v1.CatalogService"]);
    assert!(
        described.contains("// Registers data products and answers discovery queries about them."),
        "{described}"
    );
    assert!(described.contains("rpc GetProduct ( .mesh.catalog.v1.GetProductRequest )"), "{described}");
    let message = run_grpcurl(&["-plaintext", &addr, "describe", "mesh.catalog.v1.RegisterProductRequest"]);
    assert!(message.contains("// The owning domain; must be the prefix of `product_id`."), "{message}");

    let health = run_grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"service":"mesh.catalog.v1.CatalogService"}"#,
        &addr,
        "grpc.health.v1.Health/Check",
    ]);
    assert!(health.contains("\"SERVING\""), "{health}");
}

// grpcurl runs as a blocking child process: the server needs a thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_reads_a_registered_product_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    registry
        .client
        .register_product(Fixture::default().register("shop.orders", "http://127.0.0.1:6001"))
        .await
        .unwrap();
    let addr = registry.addr.to_string();
    let authorization = format!("authorization: Bearer {}", registry.token("kim", &[]));
    let listed = run_grpcurl(&[
        "-plaintext",
        "-H",
        &authorization,
        "-d",
        r#"{"domain":"shop"}"#,
        &addr,
        "mesh.catalog.v1.CatalogService/ListProducts",
    ]);
    let json: serde_json::Value = serde_json::from_str(&listed).expect("grpcurl prints JSON");
    let product = &json["products"][0];
    assert_eq!(product["productId"], "shop.orders");
    assert_eq!(product["metadata"]["ownerTeam"], "Shop Data Team");
    assert_eq!(product["status"], "SERVING_STATUS_SERVING");
    assert_eq!(product["columns"][0]["classification"], "CLASSIFICATION_PII_IDENTIFIER");
}

#[tokio::test]
async fn reflection_v1_and_health_answer_generated_clients() {
    let dir = tempfile::tempdir().unwrap();
    let registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let channel = common::channel(registry.addr, mesh_grpc::Credentials::none()).await;

    let mut health = HealthClient::new(channel.clone());
    let status = health
        .check(HealthCheckRequest { service: "mesh.catalog.v1.CatalogService".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status(), ServingStatus::Serving);

    let names = mesh_grpc::reflection::reflected_services(channel).await.unwrap();
    assert!(names.iter().any(|n| n == "mesh.catalog.v1.CatalogService"), "{names:?}");
    assert!(names.iter().any(|n| n == "grpc.health.v1.Health"), "{names:?}");
}
