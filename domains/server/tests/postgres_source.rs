//! A product loaded from a PostgreSQL view of the domain's own database (a
//! real server): its rows served, its quality rules run, loaded again when
//! asked; a view with a column the contract lacks, and one that does not
//! exist, refused naming the place.

use std::sync::Arc;

use mesh_domain_server::ServeArgs;
use mesh_postgres::testing::TestDatabase;
use mesh_runtime::DomainArgs;

const CONTRACT: &str = r#"syntax = "proto3";
package shop.sales.v1;
import "mesh/product/v1/options.proto";
import "mesh/product/v1/query.proto";
// A day's sales of one shop.
message Sale {
  // The day.
  string day = 1 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PUBLIC }];
  // The shop.
  string shop_id = 2 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PUBLIC, source_column: "SHOP" }];
  // Card sales.
  int64 sales = 3 [(mesh.product.v1.column) = { classification: CLASSIFICATION_INTERNAL, unit: "KRW" }];
}
// A batch.
message QueryResponse {
  repeated Sale rows = 1;
  string resume_token = 2;
}
// Daily sales.
service SalesService {
  option (mesh.product.v1.product) = { title: "Daily sales" owner_team: "Shop" };
  // Streams sales.
  rpc Query(mesh.product.v1.QueryRequest) returns (stream QueryResponse);
  // Describes the product.
  rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse);
}
"#;

const PRODUCT: &str = "\
product: shop.daily_sales
contract: { proto: sales.proto, service: shop.sales.v1.SalesService }
key: [day, shop_id]
amounts: [sales]
source: { postgres: till.daily_sales }
quality:
  - { name: some_sales, holds: sales > 0 }
";

async fn sql(url: &str, statements: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(statements).await.unwrap();
}

fn args(dir: &std::path::Path, url: &str, product: &str) -> ServeArgs {
    std::fs::write(dir.join("sales.proto"), CONTRACT).unwrap();
    std::fs::write(dir.join("sales.product.yaml"), product).unwrap();
    ServeArgs {
        products: vec![dir.join("sales.product.yaml")],
        domain: DomainArgs {
            data_dir: Some(dir.to_path_buf()),
            database: mesh_postgres::DatabaseArgs::for_url(url),
            ..DomainArgs::default()
        },
        reload: false,
        allow_shrink: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_loads_from_a_view_of_the_domains_database() {
    let database = TestDatabase::create();
    let url = database.url().to_owned();
    sql(
        &url,
        "CREATE SCHEMA till;
         CREATE TABLE till.sales (day text, shop text, amount bigint, cashier text);
         INSERT INTO till.sales VALUES ('2024-01-01', 's1', 100, 'kim'), ('2024-01-01', 's2', 0, 'lee'),
                                      ('2024-01-02', 's1', 50, 'kim');
         CREATE VIEW till.daily_sales AS SELECT day, shop, sum(amount)::bigint AS sales FROM till.sales GROUP BY 1, 2;
         CREATE VIEW till.with_cashier AS SELECT day, shop, amount AS sales, cashier FROM till.sales;",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let prepared = mesh_domain_server::prepare(args(dir.path(), &url, PRODUCT)).await.unwrap();
    let published = Arc::clone(&prepared.published()[0]);
    let described = published.product.describe().unwrap();
    assert_eq!(described.row_count, 3);
    let rule = described.quality_results.iter().find(|q| q.rule == "some_sales").unwrap();
    assert_eq!((rule.passed, rule.failed_rows), (false, 1), "{rule:?}");

    // New rows in the table: the next load reads them.
    sql(&url, "INSERT INTO till.sales VALUES ('2024-01-03', 's3', 70, 'park')").await;
    let reloaded = published.clone();
    let summary = tokio::task::spawn_blocking(move || {
        mesh_domain_server::load::load_source(&reloaded, false, mesh_runtime::ingest::Shrink::Any)
    })
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(summary.rows, 4);

    // A view with a column the contract lacks, and one that is not there.
    let other = tempfile::tempdir().unwrap();
    let wider = PRODUCT.replace("till.daily_sales", "till.with_cashier");
    let error =
        mesh_domain_server::prepare(args(other.path(), &url, &wider)).await.err().unwrap().to_string();
    assert!(
        error.contains("sales.product.yaml:5:11: source.postgres: till.with_cashier has columns the contract lacks: cashier"),
        "{error}"
    );
    let missing = PRODUCT.replace("till.daily_sales", "till.nowhere");
    let error =
        mesh_domain_server::prepare(args(other.path(), &url, &missing)).await.err().unwrap().to_string();
    assert!(error.contains("till.nowhere") && error.contains("does not exist"), "{error}");
}
