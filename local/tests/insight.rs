//! Insight as its product file declares it, against a real registry and
//! real customer and payment domains: its SQL gives, row for row, the
//! segments computed independently from the two source databases (every
//! column, averages rounded as before, segments of fewer than 5 customers
//! left out); only its owners may reload it; the deprecated `Refresh`
//! names `Reload`; lineage shows in the catalog; an input's load rebuilds it.

use std::collections::BTreeMap;
use std::time::Duration;

use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{DataStatus, GetProductRequest, RenewLeaseRequest};
use mesh_contracts::product::{QueryRequest, ReloadRequest};
use mesh_contracts::woori::insight::v1::SegmentSpending;
use mesh_contracts::woori::insight::v1::segment_spending_service_client::SegmentSpendingServiceClient;
use mesh_local::{LocalMesh, MeshConfig, Ports};
use woori_data::Generator;
use woori_data::layout::BROAD_COLUMNS;

fn channel(url: &str, credentials: &mesh_grpc::Credentials) -> mesh_grpc::MeshChannel {
    mesh_grpc::client::channel(url, Duration::from_secs(10), credentials).unwrap()
}

/// A segment: quarter, life stage, province, grade.
type Key = (String, String, String, String);
/// Its customers, total, average, and broad categories in layout order.
type Totals = (i64, i64, i64, Vec<i64>);

/// Every segment computed straight from the two source databases, in Rust,
/// as insight computed them before it was declared in SQL.
fn expected_segments(customer_db: &std::path::Path, payment_db: &std::path::Path) -> BTreeMap<Key, Totals> {
    let customers = rusqlite::Connection::open(customer_db).unwrap();
    let mut statement =
        customers.prepare("SELECT bas_yh, seq, life_stage, hous_sido_nm, mbr_rk FROM profiles").unwrap();
    let profiles: BTreeMap<(String, String), (String, String, String)> = statement
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?, r.get(4)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let payments = rusqlite::Connection::open(payment_db).unwrap();
    let broad: Vec<String> = BROAD_COLUMNS.iter().map(|c| c.to_ascii_lowercase()).collect();
    let sql = format!("SELECT bas_yh, seq, tot_use_am, {} FROM card_spending", broad.join(", "));
    let mut statement = payments.prepare(&sql).unwrap();
    let mut sums: BTreeMap<Key, (i64, i64, Vec<i64>)> = BTreeMap::new();
    let rows = statement
        .query_map([], |r| {
            let amounts: Vec<i64> = (0..broad.len()).map(|i| r.get(3 + i)).collect::<Result<_, _>>()?;
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, amounts))
        })
        .unwrap();
    for row in rows {
        let (quarter, seq, total, amounts) = row.unwrap();
        let (stage, province, grade) = profiles[&(quarter.clone(), seq)].clone();
        let entry = sums.entry((quarter, stage, province, grade)).or_insert((0, 0, vec![0; broad.len()]));
        entry.0 += 1;
        entry.1 += total;
        entry.2.iter_mut().zip(amounts).for_each(|(sum, amount)| *sum += amount);
    }
    sums.into_iter()
        .map(|(key, (customers, total, broad))| {
            let average = (total as f64 / customers as f64).round() as i64;
            (key, (customers, total, average, broad))
        })
        .collect()
}

/// A served segment as the reference states it.
fn as_totals(row: &SegmentSpending) -> Totals {
    let broad = vec![
        row.interior_am,
        row.insuhos_am,
        row.offedu_am,
        row.trvlec_am,
        row.fsbz_am,
        row.svcarc_am,
        row.dist_am,
        row.plsanit_am,
        row.clothgds_am,
        row.auto_am,
    ];
    (row.customer_count, row.tot_use_am, row.avg_use_am, broad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insight_in_sql_gives_the_segments_row_for_row_and_suppresses_small_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = MeshConfig {
        ports: Ports::Ephemeral,
        generator: Generator { seed: 11, customers: 400, quarters: 2 },
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

    // Only the domain's owners and admins may reload.
    let analyst = mesh.domain_credentials("insight", "kim", &["analyst"]).unwrap();
    let mut reader = SegmentSpendingServiceClient::new(channel(&insight_url, &analyst));
    let denied = reader.reload(ReloadRequest {}).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "`kim` may not load insight.segment_spending again: that needs the role `owner:insight` or `admin` \
         (mesh whoami shows your roles)"
    );
    #[allow(deprecated)]
    let retired = client.refresh(mesh_contracts::woori::insight::v1::RefreshRequest {}).await.unwrap_err();
    assert_eq!(retired.code(), tonic::Code::Unimplemented);
    assert_eq!(
        retired.message(),
        "`Refresh` is declared by the contract but not served by this product's server; call Reload instead"
    );

    // Two reloads at once: one after the other, both answered.
    let (mut first, mut second) = (client.clone(), client.clone());
    let (a, b) = tokio::join!(first.reload(ReloadRequest {}), second.reload(ReloadRequest {}));
    let (a, b) = (a.unwrap().into_inner(), b.unwrap().into_inner());
    assert_eq!(a.rows, b.rows);

    let expected = expected_segments(&customer_db, &payment_db);
    let kept: BTreeMap<Key, Totals> =
        expected.iter().filter(|(_, v)| v.0 >= 5).map(|(k, v)| (k.clone(), v.clone())).collect();
    assert!(kept.len() < expected.len(), "the data should have small segments to suppress");
    assert_eq!(a.rows as usize, kept.len());

    let mut stream = client.query(QueryRequest::default()).await.unwrap().into_inner();
    let mut got: BTreeMap<Key, Totals> = BTreeMap::new();
    while let Some(batch) = stream.message().await.unwrap() {
        for row in batch.rows {
            let totals = as_totals(&row);
            got.insert((row.bas_yh, row.life_stage, row.hous_sido_nm, row.mbr_rk), totals);
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
    let rules: Vec<&str> = described.quality_results.iter().map(|q| q.rule.as_str()).collect();
    assert!(rules.contains(&"segments_meet_suppression_threshold"), "{rules:?}");

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
