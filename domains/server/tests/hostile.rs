//! The payment domain under hostile use: clients that stop reading, hold
//! too many streams or leave mid-scan, queries that run too long, resumes
//! over reloaded data, a database removed while serving, and shutdown with
//! streams still open. Each refusal is checked by its exact message.

use crate::common;

use std::time::{Duration, Instant};

use common::{Backend, TestDomain, connect, query_all, start_with};
use mesh_contracts::product::{DescribeRequest, QueryRequest};
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_runtime::ServeLimits;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SERVICE: &str = "woori.payment.v1.CardSpendingService";

mesh_postgres::on_both_backends!(
    a_scan_that_finds_nothing_stops_when_its_client_goes_or_its_budget_ends,
    resuming_over_reloaded_data_is_aborted,
);

/// A payment domain of `customers` x 2 quarters serving under `limits`.
async fn domain(customers: u64, limits: ServeLimits) -> TestDomain {
    common::start_under(Backend::Sqlite, customers, limits).await
}

/// Waits until the domain runs no scan, for at most `within`.
async fn scans_end(domain: &TestDomain, within: Duration) -> Duration {
    let started = Instant::now();
    while domain.product.active_scans() > 0 {
        assert!(started.elapsed() < within, "a scan still runs after {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_is_cut_and_its_slot_freed() {
    let limits = ServeLimits { max_scans: 1, send_timeout: Duration::from_millis(300), ..Default::default() };
    let mut domain = domain(20_000, limits).await;
    let mut stalled = domain.client.query(QueryRequest::default()).await.unwrap().into_inner();
    stalled.message().await.unwrap().unwrap();
    scans_end(&domain, Duration::from_secs(5)).await;
    // The only slot is free again: another query runs to its end.
    let (rows, _) =
        query_all(&mut domain.client, QueryRequest { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(rows.len(), 10);
    // The stalled reader gets what was buffered, then the reason.
    let status = loop {
        match stalled.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a cut stream must not end as if complete"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Cancelled);
    assert!(
        status.message().starts_with(
            "the client read nothing for 300ms (the domain's --send-timeout); the stream was cut after "
        ),
        "{}",
        status.message()
    );
    assert!(
        status.message().ends_with(" rows; resume with the last resume_token received"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_limits_are_refused_at_once_and_describe_still_answers() {
    let limits = ServeLimits { max_scans: 1, scan_queue: 1, streams_per_connection: 2, ..Default::default() };
    let mut domain = domain(20_000, limits).await;
    let mut running = domain.client.query(QueryRequest::default()).await.unwrap().into_inner();
    running.message().await.unwrap().unwrap();
    let mut queued_client = domain.client.clone();
    let queued = tokio::spawn(async move { query_all(&mut queued_client, QueryRequest::default()).await });
    // Time for the queued call to reach the domain, even on a busy machine.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let started = Instant::now();
    let same_connection = domain.client.query(QueryRequest::default()).await.unwrap_err();
    assert_eq!(same_connection.code(), Code::ResourceExhausted);
    assert_eq!(
        same_connection.message(),
        "this connection already has 2 Query streams open, the most a domain allows \
         (--streams-per-connection); read or cancel one before starting another"
    );
    let mut other =
        CardSpendingServiceClient::new(connect(domain.addr, common::reader(domain.dir.path())).await);
    let queue_full = other.query(QueryRequest::default()).await.unwrap_err();
    assert_eq!(queue_full.code(), Code::ResourceExhausted);
    assert_eq!(
        queue_full.message(),
        "1 queries are running and 1 are waiting, the most this domain accepts (--max-scans, \
         --scan-queue); retry later with backoff"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "refusals must not wait");

    // Describe and health do not queue behind the data streams.
    let started = Instant::now();
    let described = other.describe(DescribeRequest::default()).await.unwrap().into_inner();
    assert!(described.row_count > 0);
    let mut health = HealthClient::new(connect(domain.addr, mesh_grpc::Credentials::none()).await);
    let status = health.check(HealthCheckRequest { service: SERVICE.into() }).await.unwrap().into_inner();
    assert_eq!(status.status(), ServingStatus::Serving);
    assert!(started.elapsed() < Duration::from_secs(1), "describe and health took {:?}", started.elapsed());

    // Once the running stream goes, the queued one runs to its end.
    drop(running);
    let (rows, _) = queued.await.unwrap().unwrap();
    assert_eq!(rows.len() as i64, described.row_count);
}

/// Grows the table to `copies` times its rows (new `seq`s), so that a scan
/// takes long enough to be stopped midway.
async fn multiply_rows(domain: &TestDomain, copies: u32) {
    let Some(database) = &domain.database else {
        let conn = rusqlite::Connection::open(&domain.db).unwrap();
        let columns = columns(&domain.product);
        let selected: Vec<String> = columns
            .iter()
            .map(|c| if c == "seq" { "seq || '-' || n".to_owned() } else { c.clone() })
            .collect();
        conn.execute_batch(&format!(
            "WITH RECURSIVE copy(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM copy WHERE n < {copies})
             INSERT INTO card_spending ({}) SELECT {} FROM card_spending, copy",
            columns.join(", "),
            selected.join(", ")
        ))
        .unwrap();
        return;
    };
    let (client, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let table: String = client
        .query_one("SELECT data_table FROM payment.mesh_tables WHERE product = 'payment.card_spending'", &[])
        .await
        .unwrap()
        .get(0);
    let mut columns = columns(&domain.product);
    let mut selected: Vec<String> =
        columns.iter().map(|c| if c == "seq" { "seq || '-' || n".to_owned() } else { c.clone() }).collect();
    columns.push("rowid".into());
    selected.push("rowid + n::bigint * 1000000000".into());
    client
        .batch_execute(&format!(
            "INSERT INTO payment.{table} ({}) SELECT {} FROM payment.{table}, generate_series(1, {copies}) AS n;
             ANALYZE payment.{table}",
            columns.join(", "),
            selected.join(", ")
        ))
        .await
        .unwrap();
}

/// The product's column names.
fn columns(product: &mesh_runtime::Product) -> Vec<String> {
    product.schema.columns.iter().map(|c| c.name.clone()).collect()
}

async fn a_scan_that_finds_nothing_stops_when_its_client_goes_or_its_budget_ends() {
    let backend = common::backend();
    let budget = Duration::from_millis(40);
    let mut domain =
        common::start_under(backend, 6000, ServeLimits { query_budget: Some(budget), ..Default::default() })
            .await;
    // PostgreSQL scans in parallel: it needs more rows to take long enough.
    multiply_rows(&domain, if backend == Backend::Postgres { 100 } else { 40 }).await;
    let nothing = QueryRequest { filter: "tot_use_am < 0".into(), ..Default::default() };

    // Over its budget: DEADLINE_EXCEEDED, though no row was ever sent.
    let started = Instant::now();
    let status = query_all(&mut domain.client, nothing.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.message(),
        "the query ran longer than its budget of 40ms (the domain's --query-budget) after 0 rows; resume \
         with the last resume_token received, or narrow the filter"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());

    // Without a budget, the whole scan takes far longer than a cancelled one.
    let unlimited = domain_over(&domain, ServeLimits::default()).await;
    let mut client =
        CardSpendingServiceClient::new(connect(unlimited.addr, common::reader(domain.dir.path())).await);
    let started = Instant::now();
    let (rows, _) = query_all(&mut client, nothing.clone()).await.unwrap();
    let full = started.elapsed();
    assert!(rows.is_empty());
    let stream = client.query(nothing).await.unwrap().into_inner();
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(stream);
    let stopped = scans_end(&unlimited, full).await;
    assert!(stopped * 4 < full, "the scan took {stopped:?} to stop; a full scan takes {full:?}");
}

/// A second domain over the data of `domain`, serving under `limits`.
async fn domain_over(domain: &TestDomain, limits: ServeLimits) -> TestDomain {
    let copy = tempfile::tempdir().unwrap();
    let registry = common::nowhere();
    let source = domain.dir.path().to_owned();
    let url = domain.database.as_ref().map(|d| d.url().to_owned());
    start_with(copy, move |_| {
        let mut args = common::on_database(common::args(&source, 6000, &registry), url.as_deref());
        args.domain.limits = limits;
        args
    })
    .await
}

async fn resuming_over_reloaded_data_is_aborted() {
    let backend = common::backend();
    let mut domain = common::start_under(backend, 6000, ServeLimits::default()).await;
    let mut stream = domain.client.query(QueryRequest::default()).await.unwrap().into_inner();
    let token = stream.message().await.unwrap().unwrap().resume_token;
    drop(stream);
    domain.reload(6000).await;
    let status = query_all(&mut domain.client, QueryRequest { resume_token: token, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(
        status.message(),
        "resume_token: the data of payment.card_spending changed since this token was issued (it was \
         reloaded or rebuilt); run the query again from the start, without a resume_token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_database_turns_health_not_serving() {
    let domain = domain(500, ServeLimits::default()).await;
    let mut health = HealthClient::new(connect(domain.addr, mesh_grpc::Credentials::none()).await);
    let check = HealthCheckRequest { service: SERVICE.into() };
    assert_eq!(health.check(check.clone()).await.unwrap().into_inner().status(), ServingStatus::Serving);
    std::fs::remove_file(&domain.db).unwrap();
    let started = Instant::now();
    loop {
        let status = health.check(check.clone()).await.unwrap().into_inner().status();
        if status == ServingStatus::NotServing {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_postgres_server_turns_health_not_serving_and_queries_unavailable() {
    let server = mesh_postgres::testing::TestServer::start();
    let url = server.url().to_owned();
    let registry = common::nowhere();
    let mut domain = start_with(tempfile::tempdir().unwrap(), move |dir| {
        common::on_database(common::args(dir, 300, &registry), Some(&url))
    })
    .await;
    let mut health = HealthClient::new(connect(domain.addr, mesh_grpc::Credentials::none()).await);
    let check = HealthCheckRequest { service: SERVICE.into() };
    assert_eq!(health.check(check.clone()).await.unwrap().into_inner().status(), ServingStatus::Serving);
    server.kill();
    let started = Instant::now();
    loop {
        let status = health.check(check.clone()).await.unwrap().into_inner().status();
        if status == ServingStatus::NotServing {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = query_all(&mut domain.client, QueryRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status.message(),
        "the domain's database cannot be reached; retry shortly, or on another replica"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_streams_still_open_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = common::args(dir.path(), 20_000, &common::nowhere());
    args.domain.limits.shutdown_grace = Duration::from_millis(300);
    let prepared = mesh_domain_server::prepare(args).await.unwrap();
    let product = prepared.products().remove(0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(prepared.serve(listener, async {
        let _ = stopped.await;
    }));
    let mut client = CardSpendingServiceClient::new(connect(addr, common::reader(dir.path())).await);
    let mut stalled = client.query(QueryRequest::default()).await.unwrap().into_inner();
    stalled.message().await.unwrap().unwrap();
    let started = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("shutdown waited past its grace")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    let ended = Instant::now();
    while product.active_scans() > 0 {
        assert!(ended.elapsed() < Duration::from_secs(2), "the scan outlived the shutdown");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_export_cut_after_its_first_rows_ends_with_its_error_and_a_cut_body() {
    let budget = Duration::from_millis(300);
    let domain = domain(6000, ServeLimits { query_budget: Some(budget), ..Default::default() }).await;
    multiply_rows(&domain, 40).await;
    let token = common::issuer(domain.dir.path())
        .issue(
            "payment-owner",
            &["owner:payment".to_owned()],
            Duration::from_secs(600),
            &mesh_grpc::auth::exchange::domain_audience("payment"),
        )
        .unwrap();
    let url = format!("http://{}/v1/products/payment.card_spending/rows", domain.addr);
    let get = |accept: &'static str| {
        reqwest::Client::new().get(url.clone()).bearer_auth(token.clone()).header("accept", accept).send()
    };

    // NDJSON: rows, then the error as the last line.
    let response = get("application/x-ndjson").await.unwrap();
    assert_eq!(response.status(), 200, "the first rows came within the budget");
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 2, "rows came first");
    let last: serde_json::Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    assert_eq!(last["error"]["status"], "DEADLINE_EXCEEDED", "{last}");
    assert_eq!(last["error"]["code"], 504);
    assert!(
        last["error"]["message"].as_str().unwrap().starts_with(
            "the query ran longer than its budget of 300ms (the domain's --query-budget) after "
        ),
        "{last}"
    );

    // CSV has no place for an error: the body is cut.
    let mut response = get("text/csv").await.unwrap();
    assert_eq!(response.status(), 200);
    let cut = loop {
        match response.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(cut, "a cut CSV export must not end like a complete one");
}
