//! The insight domain against a real registry and real customer and payment
//! domains: aggregates recomputed independently from the source databases,
//! suppression of small segments, lineage in the catalog.

use std::collections::BTreeMap;
use std::time::Duration;

use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{DataStatus, GetProductRequest, RenewLeaseRequest};
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::insight::v1::RefreshRequest;
use mesh_contracts::woori::insight::v1::segment_spending_service_client::SegmentSpendingServiceClient;
use mesh_local::{LocalMesh, MeshConfig, Ports};
use woori_data::Generator;

fn channel(url: &str, credentials: &mesh_grpc::Credentials) -> mesh_grpc::MeshChannel {
    mesh_grpc::client::channel(url, Duration::from_secs(10), credentials).unwrap()
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
    let min_customers = 4;
    let config = MeshConfig {
        ports: Ports::Ephemeral,
        generator: Generator { seed: 11, customers: 400, quarters: 2 },
        min_customers,
        ready_timeout: Duration::from_secs(60),
        ..MeshConfig::new(dir.path())
    };
    let mesh = LocalMesh::start(config).await.unwrap();
    let customer_db = dir.path().join("customer").join("customer.sqlite");
    let payment_db = dir.path().join("payment").join("payment.sqlite");
    let product = mesh.product("insight.segment_spending").unwrap();
    let insight_url = mesh.insight_url.clone().unwrap();
    let owner = mesh.domain_credentials("insight", "insight-owner", &["owner:insight"]).unwrap();
    let mut client = SegmentSpendingServiceClient::new(channel(&insight_url, &owner));

    // Only the domain's owners and admins may rebuild.
    let analyst = mesh.domain_credentials("insight", "kim", &["analyst"]).unwrap();
    let mut reader = SegmentSpendingServiceClient::new(channel(&insight_url, &analyst));
    let denied = reader.refresh(RefreshRequest {}).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "`kim` may not rebuild insight.segment_spending: that needs the role `owner:insight` or `admin` \
         (mesh whoami shows your roles)"
    );

    // One rebuild at a time: of two at once, one is refused.
    let (mut first, mut second) = (client.clone(), client.clone());
    let (a, b) = tokio::join!(first.refresh(RefreshRequest {}), second.refresh(RefreshRequest {}));
    let aborted: Vec<_> = [&a, &b].into_iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(aborted.len(), 1, "{a:?} {b:?}");
    assert_eq!(aborted[0].code(), tonic::Code::Aborted);

    // The mesh is up: both sources serve, so a refresh goes through at once.
    let refreshed = client.refresh(RefreshRequest {}).await.unwrap().into_inner();
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
    let at_registry = mesh.credentials("kim", &["analyst"]).unwrap();
    let mut catalog = CatalogServiceClient::new(channel(&mesh.registry_url, &at_registry));
    let entry = catalog
        .get_product(GetProductRequest { name: "insight.segment_spending".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    let ports: Vec<(String, i32)> = entry.input_ports.iter().map(|p| (p.product.clone(), p.status)).collect();
    let serving = mesh_contracts::catalog::ServingStatus::Serving as i32;
    assert_eq!(
        ports,
        [("customer.profiles".to_owned(), serving), ("payment.card_spending".to_owned(), serving)]
    );
    let described = product.describe().unwrap();
    assert!(described.quality_results.iter().all(|q| q.passed), "{:?}", described.quality_results);

    // An input reports a new load (as its domain does after loading): insight
    // rebuilds on the event, once the inputs' loads have settled.
    // Quiet inputs: no rebuild (the start's loads settle first).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let built = product.describe().unwrap().last_loaded_time;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(product.describe().unwrap().last_loaded_time, built, "rebuilt with no input loaded");
    let payment = mesh.credentials("payment", &["service:payment"]).unwrap();
    let mut registry = CatalogServiceClient::new(channel(&mesh.registry_url, &payment));
    let data = DataStatus {
        row_count: 400,
        load_id: 1_000_000,
        last_loaded_time: Some(mesh_contracts::time::timestamp(mesh_contracts::time::now_ms())),
        ..Default::default()
    };
    let endpoint = mesh.payment_url.clone();
    let renew = RenewLeaseRequest { name: "payment.card_spending".into(), endpoint, data: Some(data) };
    registry.renew_lease(renew).await.unwrap();
    for _ in 0..200 {
        if product.describe().unwrap().last_loaded_time != built {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("insight did not rebuild after its input loaded");
}
