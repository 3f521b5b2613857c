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

/// A team's contract, compiled when the domain starts (no generated code,
/// nothing in the mesh's own protos).
const SHOPS_PROTO: &str = r#"syntax = "proto3";
package merchant.shops.v1;
import "mesh/product/v1/options.proto";
import "mesh/product/v1/query.proto";

// One shop.
message Shop {
  // The shop's number.
  string shop_id = 1 [(mesh.product.v1.column) = {
    description: "Shop number", classification: CLASSIFICATION_PUBLIC, source_column: "SHOP_ID"
  }];
  // What it sold.
  int64 sales = 2 [(mesh.product.v1.column) = {
    description: "Sales", classification: CLASSIFICATION_PUBLIC, source_column: "SALES", unit: "KRW"
  }];
}

// A batch of shops.
message QueryResponse {
  repeated Shop rows = 1;
  string resume_token = 2;
}

// Shops and what they sold.
service ShopsService {
  option (mesh.product.v1.product) = {
    title: "Shops"
    owner_team: "Merchant Data Team"
    owner_contact: "merchant-data@example.com"
    purpose: "What each shop sold"
    source: "Shop system"
    policy: "Internal use"
    freshness: "daily"
  };
  // Streams shops.
  rpc Query(mesh.product.v1.QueryRequest) returns (stream QueryResponse);
  // Describes the product.
  rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse);
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_compiled_at_start_is_served_described_and_reflected() {
    use mesh_runtime::{DomainArgs, Product, ProductService, ProductSpec};
    use prost::Message;

    let dir = tempfile::tempdir().unwrap();
    let contract = dir.path().join("contracts").join("merchant").join("shops.proto");
    std::fs::create_dir_all(contract.parent().unwrap()).unwrap();
    std::fs::write(&contract, SHOPS_PROTO).unwrap();
    // Compiled alone: the mesh's own protos it imports are built in.
    let compiled = mesh_contracts::compile::contract(&contract, "merchant.shops.v1.ShopsService").unwrap();
    let pool = compiled.pool;

    let shops = ProductSpec::new("merchant.shops", "merchant.shops.v1.ShopsService", "shops")
        .key(&["shop_id"])
        .amounts(&["sales"]);
    let issuer = common::issuer(dir.path());
    let args = DomainArgs {
        data_dir: Some(dir.path().join("data")),
        registry: common::nowhere(),
        auth: mesh_grpc::AuthArgs::local(issuer.jwks_file().to_owned()),
        credentials: common::registry_credentials(dir.path(), "merchant-domain", &["service:merchant"]),
        pseudonym_key: Some(common::pseudonym_key(dir.path())),
        ..DomainArgs::default()
    };
    let product = Product::from_pool(shops, &pool, args.open_store("merchant").unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = ProductService::new(product, Default::default());
    let serving = tokio::spawn(async move {
        mesh_runtime::hosting::run_domain(listener, vec![service], &args, std::future::pending()).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!serving.is_finished(), "{:?}", serving.await);
    let audience = mesh_grpc::auth::exchange::domain_audience("merchant");
    let owner = mesh_grpc::Credentials::issued_for(
        issuer,
        "merchant-owner",
        &["owner:merchant"],
        std::time::Duration::from_secs(600),
        &audience,
    )
    .unwrap();
    let channel = common::connect(addr, owner).await;

    let mut names = mesh_grpc::reflection::reflected_services(channel.clone()).await.unwrap();
    names.sort_unstable();
    assert_eq!(
        names,
        ["grpc.health.v1.Health", "merchant.shops.v1.ShopsService", "mesh.product.v1.AuditService"]
    );
    // Reflection resolves it from the compiled contract (grpcurl describe does this).
    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "merchant.shops.v1.ShopsService".into(),
            )),
        };
        let mut client = ServerReflectionClient::new(channel.clone());
        let mut answers =
            client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
        let Some(MessageResponse::FileDescriptorResponse(files)) =
            answers.message().await.unwrap().unwrap().message_response
        else {
            panic!("no file holds the service");
        };
        let names: Vec<String> = files
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap().name().to_owned()
            })
            .collect();
        assert!(names.contains(&"shops.proto".to_owned()), "{names:?}");
    }
    // Its own contract describes it, options and all.
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/merchant.shops.v1.ShopsService/Describe");
    let request = mesh_contracts::product::DescribeRequest::default();
    let codec = tonic_prost::ProstCodec::<_, mesh_contracts::product::DescribeResponse>::default();
    let described = grpc.unary(tonic::Request::new(request), path, codec).await.unwrap().into_inner();
    assert_eq!(
        (described.product.as_str(), described.options.unwrap().title.as_str()),
        ("merchant.shops", "Shops")
    );
    let set = prost_types::FileDescriptorSet::decode(described.descriptor_set.as_slice()).unwrap();
    assert!(
        set.file.iter().any(|f| f.name() == "shops.proto"),
        "{:?}",
        set.file.iter().map(|f| f.name()).collect::<Vec<_>>()
    );
}
