//! The insight domain against a real registry and real customer and payment
//! domains: aggregates recomputed independently from the source databases,
//! suppression of small segments, lineage in the catalog.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use catalog_registry::RegistryConfig;
use mesh_contracts::catalog::GetProductRequest;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::insight::v1::RefreshRequest;
use mesh_contracts::woori::insight::v1::segment_spending_service_client::SegmentSpendingServiceClient;
use mesh_domain_runtime::hosting::run_domain;
use mesh_domain_runtime::{DomainArgs, ProductService};
use tonic::transport::Channel;
use woori_data::source_domain::{SourceArgs, SourceDomain};

async fn connect(addr: std::net::SocketAddr) -> Channel {
    for _ in 0..200 {
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{addr} did not come up");
}

fn domain_args(dir: &std::path::Path, registry: &str) -> DomainArgs {
    DomainArgs {
        addr: None,
        data_dir: Some(dir.to_path_buf()),
        registry: registry.to_owned(),
        advertise_url: None,
    }
}

/// Starts a source domain with generated data; returns its database path.
async fn start_source(domain: SourceDomain, dir: &std::path::Path, registry: &str) -> std::path::PathBuf {
    let args = SourceArgs {
        domain: domain_args(dir, registry),
        source: None,
        customers: 400,
        quarters: 2,
        seed: 11,
        reload: false,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn(async move { domain.run(args, listener, std::future::pending()).await.unwrap() });
    dir.join(format!("{}.sqlite", domain.name))
}

type Expected = BTreeMap<(String, String, String, String), (i64, i64, i64)>;

/// Segments computed straight from the two source databases, in Rust.
fn expected_segments(customer_db: &std::path::Path, payment_db: &std::path::Path) -> Expected {
    let customers = rusqlite::Connection::open(customer_db).unwrap();
    let mut profiles = BTreeMap::new();
    let mut statement =
        customers.prepare("SELECT bas_yh, seq, life_stage, hous_sido_nm, mbr_rk FROM profiles").unwrap();
    let rows = statement
        .query_map([], |r| {
            Ok(((r.get::<_, String>(0)?, r.get::<_, String>(1)?), (r.get(2)?, r.get(3)?, r.get(4)?)))
        })
        .unwrap();
    for row in rows {
        let (key, value): ((String, String), (String, String, String)) = row.unwrap();
        profiles.insert(key, value);
    }
    let payments = rusqlite::Connection::open(payment_db).unwrap();
    let mut statement =
        payments.prepare("SELECT bas_yh, seq, tot_use_am, auto_am FROM card_spending").unwrap();
    let mut segments: Expected = BTreeMap::new();
    let rows = statement
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
        })
        .unwrap();
    for row in rows {
        let (quarter, seq, total, auto) = row.unwrap();
        let (stage, province, grade) = profiles[&(quarter.clone(), seq)].clone();
        let entry = segments.entry((quarter, stage, province, grade)).or_default();
        entry.0 += 1;
        entry.1 += total;
        entry.2 += auto;
    }
    segments
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_match_an_independent_aggregate_and_small_ones_are_suppressed() {
    let dir = tempfile::tempdir().unwrap();
    let registry_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry_addr = registry_listener.local_addr().unwrap();
    let registry = format!("http://{registry_addr}");
    let config = RegistryConfig {
        addr: registry_addr,
        data_dir: dir.path().join("registry"),
        db: None,
        lease_ttl: Duration::from_secs(30),
    };
    tokio::spawn(
        async move { catalog_registry::serve(&config, registry_listener, std::future::pending()).await },
    );

    let customer_db = start_source(customer::DOMAIN, &dir.path().join("customer"), &registry).await;
    let payment_db = start_source(payment::DOMAIN, &dir.path().join("payment"), &registry).await;

    let min_customers = 4;
    let args =
        insight::InsightArgs { domain: domain_args(&dir.path().join("insight"), &registry), min_customers };
    let product = insight::open(&args).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service: ProductService = insight::service(Arc::clone(&product), registry.clone(), min_customers);
    tokio::spawn(run_domain(
        listener,
        vec![service],
        registry.clone(),
        format!("http://{addr}"),
        std::future::pending(),
    ));
    let mut client = SegmentSpendingServiceClient::new(connect(addr).await);

    // Refresh once both sources are registered and serving.
    let started = std::time::Instant::now();
    let refreshed = loop {
        match client.refresh(RefreshRequest {}).await {
            Ok(response) => break response.into_inner(),
            Err(status) => {
                assert!(started.elapsed() < Duration::from_secs(30), "refresh never succeeded: {status}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(refreshed.joined_rows, 800);

    let expected = expected_segments(&customer_db, &payment_db);
    let kept: Expected =
        expected.iter().filter(|(_, v)| v.0 >= min_customers).map(|(k, v)| (k.clone(), *v)).collect();
    assert!(kept.len() < expected.len(), "the data should have small segments to suppress");
    assert_eq!(refreshed.segments as usize, kept.len());
    assert_eq!(refreshed.suppressed_segments as usize, expected.len() - kept.len());

    let mut stream = client.query(QueryRequest::default()).await.unwrap().into_inner();
    let mut got: Expected = BTreeMap::new();
    while let Some(batch) = stream.message().await.unwrap() {
        for row in batch.rows {
            assert!(row.customer_count >= min_customers);
            assert_eq!(row.avg_use_am, (row.tot_use_am as f64 / row.customer_count as f64).round() as i64);
            got.insert(
                (row.bas_yh, row.life_stage, row.hous_sido_nm, row.mbr_rk),
                (row.customer_count, row.tot_use_am, row.auto_am),
            );
        }
    }
    assert_eq!(got, kept);

    // The catalog shows the lineage, with both inputs serving.
    let mut catalog = CatalogServiceClient::new(connect(registry_addr).await);
    let started = std::time::Instant::now();
    let entry = loop {
        if let Ok(found) = catalog
            .get_product(GetProductRequest {
                name: "insight.segment_spending".into(),
                version: 0,
                known_fingerprint: String::new(),
                ..Default::default()
            })
            .await
        {
            break found.into_inner().product.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "insight never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ports: Vec<(String, i32)> = entry.input_ports.iter().map(|p| (p.product.clone(), p.status)).collect();
    let serving = mesh_contracts::catalog::ServingStatus::Serving as i32;
    assert_eq!(
        ports,
        [("customer.profiles".to_owned(), serving), ("payment.card_spending".to_owned(), serving)]
    );
    let described = product.describe().unwrap();
    assert!(described.quality_results.iter().all(|q| q.passed), "{:?}", described.quality_results);
}
