//! Leases, deregistration, deprecation, deletion, lineage, and durability
//! across restarts and a kill -9.

use crate::common;

mesh_postgres::on_both_backends!(
    an_expired_lease_shows_stale_until_renewed,
    deregistration_deprecation_and_deletion,
    a_derived_product_shows_its_input_ports,
    the_catalog_shows_the_data_status_domains_report,
);

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Fixture, ORDER_OPTIONS, TestRegistry};
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{
    DeleteProductRequest, DeprecateProductRequest, DeregisterEndpointRequest, GetProductRequest,
    ListProductsRequest, RenewLeaseRequest, ServingStatus, UndeprecateProductRequest,
};
use mesh_grpc::auth::issuer::{DEFAULT_AUDIENCE, LocalIssuer};
use tonic::Code;

const ENDPOINT: &str = "http://127.0.0.1:6001";

fn get(name: &str) -> GetProductRequest {
    GetProductRequest { name: name.into(), ..Default::default() }
}

async fn an_expired_lease_shows_stale_until_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = catalog_registry::Clock::manual();
    let db = dir.path().join("r.sqlite");
    let mut registry = TestRegistry::start_with_clock(&db, Duration::from_millis(400), clock.clone()).await;
    let client = &mut registry.client;
    client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let product = client.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
    assert_eq!(product.status(), ServingStatus::Serving);

    // Just before the lease ends it still holds; just after, it has expired.
    clock.advance(Duration::from_millis(399));
    let product = client.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
    assert_eq!(product.status(), ServingStatus::Serving);
    clock.advance(Duration::from_millis(300));
    let product = client.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
    assert_eq!(product.status(), ServingStatus::Stale);
    assert_eq!(product.endpoints[0].status(), ServingStatus::Stale);

    let renewed = client
        .renew_lease(RenewLeaseRequest {
            name: "products/shop.orders".into(),
            endpoint: ENDPOINT.into(),
            data: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renewed.lease_ttl.unwrap().nanos, 400_000_000);
    let product = client.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
    assert_eq!(product.status(), ServingStatus::Serving);

    // Renewing an endpoint the registry does not know tells the domain to register.
    let status = client
        .renew_lease(RenewLeaseRequest {
            name: "shop.orders".into(),
            endpoint: "http://127.0.0.1:9".into(),
            data: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("register the product again"), "{}", status.message());
}

async fn deregistration_deprecation_and_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let client = &mut registry.client;
    client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();

    let product = client
        .deregister_endpoint(DeregisterEndpointRequest {
            name: "shop.orders".into(),
            endpoint: ENDPOINT.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert!(product.endpoints.is_empty());
    assert_eq!(product.status(), ServingStatus::Offline);

    let product = client
        .deprecate_product(DeprecateProductRequest {
            name: "shop.orders".into(),
            message: "use shop.orders_v2, which adds delivery dates".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    let deprecation = product.deprecation.unwrap();
    assert_eq!(deprecation.message, "use shop.orders_v2, which adds delivery dates");
    assert!(deprecation.deprecate_time.is_some());
    // Re-registering does not clear a deprecation.
    let product = client
        .register_product(Fixture::default().register("shop.orders", ENDPOINT))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert!(product.deprecation.is_some());

    let product = client
        .undeprecate_product(UndeprecateProductRequest { name: "shop.orders".into() })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert!(product.deprecation.is_none());

    client.delete_product(DeleteProductRequest { name: "products/shop.orders".into() }).await.unwrap();
    let status = client.get_product(get("shop.orders")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status =
        client.delete_product(DeleteProductRequest { name: "shop.orders".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

async fn a_derived_product_shows_its_input_ports() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let client = &mut registry.client;
    client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    let derived = Fixture {
        options: format!("{ORDER_OPTIONS}\n    input_products: [\"shop.orders\", \"shop.returns\"]"),
        ..Fixture::default()
    };
    let product = client
        .register_product(derived.register("insight.order_totals", "http://127.0.0.1:6003"))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    let ports: Vec<_> = product.input_ports.iter().map(|p| (p.product.as_str(), p.status())).collect();
    assert_eq!(
        ports,
        [("shop.orders", ServingStatus::Serving), ("shop.returns", ServingStatus::NotRegistered)]
    );
}

#[tokio::test]
async fn a_restarted_registry_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let mut registry = TestRegistry::start(&db, Duration::from_secs(30)).await;
    for id in ["shop.orders", "shop.returns", "card.spending"] {
        registry.client.register_product(Fixture::default().register(id, ENDPOINT)).await.unwrap();
    }
    registry
        .client
        .deprecate_product(DeprecateProductRequest {
            name: "shop.returns".into(),
            message: "gone soon".into(),
        })
        .await
        .unwrap();
    let page = registry
        .client
        .list_products(ListProductsRequest { page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let before = registry.client.get_product(get("shop.orders")).await.unwrap().into_inner();
    registry.stop().await;

    let mut registry = TestRegistry::start(&db, Duration::from_secs(30)).await;
    let after = registry.client.get_product(get("shop.orders")).await.unwrap().into_inner();
    assert_eq!(after, before);
    let returns = registry.client.get_product(get("shop.returns")).await.unwrap().into_inner();
    assert_eq!(returns.product.unwrap().deprecation.unwrap().message, "gone soon");
    // A page token issued before the restart still works after it.
    let next = registry
        .client
        .list_products(ListProductsRequest {
            page_size: 1,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.products[0].product_id, "shop.orders");
}

/// The registry binary as a child process, killed when dropped.
struct RegistryProcess(Child);

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The local issuer beside `db`, which [`spawn_registry`] trusts.
fn issuer(db: &std::path::Path) -> LocalIssuer {
    LocalIssuer::open_or_create(&db.parent().unwrap().join("issuer")).unwrap()
}

/// A client of the registry at `uri` calling as an admin.
async fn admin_client(db: &std::path::Path, uri: String) -> CatalogServiceClient<mesh_grpc::MeshChannel> {
    let token =
        issuer(db).issue("admin", &["admin".into()], Duration::from_secs(600), DEFAULT_AUDIENCE).unwrap();
    let channel = tonic::transport::Channel::from_shared(uri.clone()).unwrap().connect().await.unwrap();
    let credentials = mesh_grpc::Credentials::token(&token).unwrap();
    CatalogServiceClient::new(mesh_grpc::MeshChannel::new(&uri, channel, credentials).unwrap())
}

/// Starts the registry binary on a free port, trusting the issuer beside
/// `db`, and waits for it to serve. Its log pipe is closed once the address
/// is read: the registry must keep serving without anyone reading its logs.
fn spawn_registry(db: &std::path::Path) -> (RegistryProcess, String) {
    let jwks = issuer(db).jwks_file().to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_catalog-registry"))
        .args(["--addr", "127.0.0.1:0", "--db"])
        .arg(db)
        .arg("--auth-jwks")
        .arg(jwks)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let process = RegistryProcess(child);
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("addr=").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().to_owned();
            return (process, format!("http://{addr}"));
        }
    }
    panic!("registry exited before serving");
}

#[tokio::test]
async fn an_acknowledged_registration_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.sqlite");
    let (mut child, uri) = spawn_registry(&db);
    let mut client = admin_client(&db, uri).await;
    client.register_product(Fixture::default().register("shop.orders", ENDPOINT)).await.unwrap();
    client
        .deprecate_product(DeprecateProductRequest { name: "shop.orders".into(), message: "moving".into() })
        .await
        .unwrap();
    child.0.kill().unwrap(); // SIGKILL: no chance to flush or close anything
    child.0.wait().unwrap();

    let (child, uri) = spawn_registry(&db);
    let mut client = admin_client(&db, uri).await;
    let product = client.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
    assert_eq!(product.latest_version, 1);
    assert_eq!(product.deprecation.unwrap().message, "moving");
    drop(child);
}

#[test]
fn the_registry_refuses_to_start_without_authentication_unless_told_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_catalog-registry"))
        .args(["--addr", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("r.sqlite"))
        .env_remove("MESH_AUTH_JWKS")
        .env_remove("MESH_AUTH_OIDC_ISSUER")
        .env_remove("MESH_INSECURE_NO_AUTH")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "authentication is not configured: give --auth-jwks FILE (MESH_AUTH_JWKS) or --auth-oidc-issuer URL"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_and_sigint_stop_the_registry_cleanly() {
    for signal in ["-TERM", "-INT"] {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, uri) = spawn_registry(&dir.path().join("r.sqlite"));
        CatalogServiceClient::connect(uri).await.unwrap();
        let pid = child.0.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "registry ignored {signal}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "registry exited with {status} after {signal}");
    }
}

async fn the_catalog_shows_the_data_status_domains_report() {
    use mesh_contracts::catalog::DataStatus;
    use mesh_contracts::product::QualityResult;
    let dir = tempfile::tempdir().unwrap();
    let mut registry = TestRegistry::start(&dir.path().join("r.sqlite"), Duration::from_secs(30)).await;
    let client = &mut registry.client;
    let status = |rows: i64, failed: i64| DataStatus {
        row_count: rows,
        consumer_count: 1,
        last_loaded_time: Some(mesh_contracts::time::timestamp(1_700_000_000_000)),
        quality_results: vec![QualityResult {
            rule: "tot_equals_credit_plus_check".into(),
            description: "tot = credit + check".into(),
            passed: failed == 0,
            failed_rows: failed,
            checked_rows: rows,
        }],
        consumers: vec![mesh_contracts::catalog::Consumer {
            principal: "ana".into(),
            issuer: "mesh-local".into(),
            last_read_time: Some(mesh_contracts::time::timestamp(1_700_000_100_000)),
            reads: 3,
            rows: rows * 2,
        }],
        load_id: 1,
    };
    let mut request = Fixture::default().register("shop.orders", ENDPOINT);
    request.data = Some(status(100, 0));
    let product = client.register_product(request).await.unwrap().into_inner().product.unwrap();
    assert_eq!(product.data, Some(status(100, 0)));

    // A renewal carries the data after a reload.
    client
        .renew_lease(RenewLeaseRequest {
            name: "shop.orders".into(),
            endpoint: ENDPOINT.into(),
            data: Some(status(120, 3)),
        })
        .await
        .unwrap();
    let product = client.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
    let data = product.data.unwrap();
    assert_eq!(data.row_count, 120);
    assert!(!data.quality_results[0].passed);
    assert_eq!(data.quality_results[0].failed_rows, 3);
    assert_eq!(data.consumers.len(), 1, "the domain sees who reads its product");
    // Who reads a product is for its owners and admins; others see how many.
    for roles in [&["analyst"][..], &["owner:other"][..]] {
        let mut other = registry.client_as("eve", roles).await;
        let seen = other.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
        let data = seen.data.unwrap();
        assert_eq!((data.consumers.len(), data.consumer_count), (0, 1), "{roles:?}");
        let request = mesh_contracts::catalog::ListProductsRequest::default();
        let listed = other.list_products(request).await.unwrap().into_inner().products;
        assert!(listed.iter().all(|p| p.data.as_ref().is_none_or(|d| d.consumers.is_empty())), "{roles:?}");
    }
    let mut owner = registry.client_as("lee", &["owner:shop"]).await;
    let seen = owner.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
    assert_eq!(seen.data.unwrap().consumers[0].principal, "ana");
    let client = &mut registry.client;

    // A renewal without data keeps what was reported.
    client
        .renew_lease(RenewLeaseRequest { name: "shop.orders".into(), endpoint: ENDPOINT.into(), data: None })
        .await
        .unwrap();
    let product = client.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
    assert_eq!(product.data.unwrap().row_count, 120);

    // Nonsense is refused and changes nothing.
    for (bad, needle) in [
        (status(-1, 0), "data.row_count: -1 is negative"),
        (status(10, 11), "must be 0 <= failed <= checked"),
        (
            DataStatus {
                last_loaded_time: Some(prost_types::Timestamp { seconds: -1, nanos: 0 }),
                ..status(1, 0)
            },
            "data.last_loaded_time: -1 s since 1970 is not a time a load happened; report the load's time",
        ),
    ] {
        let result = client
            .renew_lease(RenewLeaseRequest {
                name: "shop.orders".into(),
                endpoint: ENDPOINT.into(),
                data: Some(bad),
            })
            .await;
        let error = result.unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
        assert!(error.message().contains(needle), "{}", error.message());
    }
    let product = client.get_product(get("shop.orders")).await.unwrap().into_inner().product.unwrap();
    assert_eq!(product.data.unwrap().row_count, 120);
}
