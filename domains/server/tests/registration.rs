//! A domain serves whether or not the registry is up, and registers once it is.

use crate::common;

use std::time::Duration;

use catalog_registry::RegistryConfig;
use mesh_contracts::catalog::GetProductRequest;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::product::QueryRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_without_a_registry_and_registers_when_it_comes_up() {
    let registry_url = common::nowhere();
    let mut domain = common::start(100, &registry_url).await;

    // No registry: queries work.
    let (rows, _) =
        common::query_all(&mut domain.client, QueryRequest { limit: 5, ..Default::default() }).await.unwrap();
    assert_eq!(rows.len(), 5);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The registry comes up on the address the domain was given.
    let addr: std::net::SocketAddr = registry_url.trim_start_matches("http://").parse().unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = RegistryConfig {
        addr,
        data_dir: dir.path().to_path_buf(),
        db: None,
        database: Default::default(),
        lease_ttl: Duration::from_secs(30),
        events: Default::default(),
        webhooks: Default::default(),
        tls: Default::default(),
        client_tls: Default::default(),
        web: Default::default(),
        token_exchange_issuer_dir: None,
        service_tokens: Vec::new(),
        insecure_plaintext_endpoints: false,
        auth: mesh_grpc::AuthArgs::local(common::issuer(domain.dir.path()).jwks_file().to_owned()),
    };
    tokio::spawn(async move { catalog_registry::serve(&config, listener, std::future::pending()).await });

    let channel = common::connect(addr, common::registry_credentials(domain.dir.path(), "reader", &[])).await;
    let mut catalog = CatalogServiceClient::new(channel);
    let started = std::time::Instant::now();
    let product = loop {
        let found = catalog
            .get_product(GetProductRequest {
                name: "payment.card_spending".into(),
                version: 0,
                known_fingerprint: String::new(),
                ..Default::default()
            })
            .await;
        if let Ok(found) = found {
            break found.into_inner().product.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the domain never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(product.endpoints[0].uri, format!("http://{}", domain.addr));
    assert_eq!(product.metadata.unwrap().owner_team, "Payment Data Team");
    assert_eq!(product.columns.len(), 47);
    let total = product.columns.iter().find(|c| c.name == "tot_use_am").unwrap();
    assert_eq!((total.source_column.as_str(), total.unit.as_str()), ("TOT_USE_AM", "KRW"));
    // The domain reports its data: size, last load and quality results.
    let data = product.data.clone().expect("the domain reports its data status");
    assert_eq!(data.row_count, 200);
    assert!(data.last_loaded_time.is_some());
    assert_eq!(data.quality_results.len(), 14);
    assert!(
        data.quality_results.iter().all(|q| q.passed && q.checked_rows == 200),
        "{:?}",
        data.quality_results
    );
    let seq = product.columns.iter().find(|c| c.name == "seq").unwrap();
    assert_eq!(seq.classification(), mesh_contracts::product::Classification::PiiIdentifier);
}
