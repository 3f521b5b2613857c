//! Prometheus metrics of a running mesh: every service's `/metrics` passes
//! Debian's `promtool check metrics` and counts what the test did (reads by
//! format and outcome, rows, refusals by reason, registrations, leases, the
//! catalog by status); the number of series does not grow with the callers,
//! their filters or invented paths; and Debian's `prometheus`, started by
//! the test with a token file, scrapes the mesh and answers PromQL over its
//! HTTP API with the rate of served queries and the refusals by reason.

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::Mesh;
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;

/// `/metrics` of the service at `url` with `token`, over HTTP/2 when `h2`.
pub(crate) async fn scrape(url: &str, token: &str, h2: bool) -> String {
    let client = if h2 {
        reqwest::Client::builder().http2_prior_knowledge().build().unwrap()
    } else {
        reqwest::Client::builder().http1_only().build().unwrap()
    };
    let response = client.get(format!("{url}/metrics")).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{url}/metrics: {text}");
    text
}

/// The value of `series` (its name and labels exactly as rendered).
pub(crate) fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
}

/// The series (name and labels) of `text`, values left out.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}

/// `promtool check metrics` accepts `text`.
pub(crate) fn promtool_accepts(what: &str, text: &str) {
    if let Err(complaints) = mesh_grpc::metrics::promtool::check(text) {
        panic!("promtool on {what}: {complaints}");
    }
}

/// Reads `payment.card_spending` as `subject` (an admin when `admin`, else
/// an analyst with no agreement, refused) with `filter`, `limit` rows.
async fn read(
    mesh: &Mesh,
    subject: &str,
    admin: bool,
    filter: &str,
    limit: i64,
) -> Result<u64, tonic::Status> {
    let roles: &[&str] = if admin { &["admin"] } else { &["analyst"] };
    let mut client = CardSpendingServiceClient::new(mesh.channel_as(&mesh.payment_url, subject, roles));
    let request = QueryRequest { filter: filter.to_owned(), limit, ..Default::default() };
    let mut stream = client.query(request).await?.into_inner();
    let mut rows = 0;
    while let Some(batch) = stream.message().await? {
        rows += batch.rows.len() as u64;
    }
    Ok(rows)
}

#[tokio::test]
async fn every_service_serves_metrics_promtool_accepts_counting_what_happened() {
    let mesh = Mesh::start(200, false).await;
    for _ in 0..3 {
        assert_eq!(read(&mesh, "e2e-admin", true, "", 10).await.unwrap(), 10);
    }
    let refused = read(&mesh, "kim", false, "", 10).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    // A REST read in CSV.
    let csv = reqwest::Client::new()
        .get(format!("{}/v1/products/payment.card_spending/rows?limit=5", mesh.payment_url))
        .header("accept", "text/csv")
        .bearer_auth(mesh.domain_token("payment"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200, "{}", csv.text().await.unwrap());
    csv.bytes().await.unwrap();
    // A token for another service, refused for its audience.
    let wrong = reqwest::Client::new()
        .get(format!("{}/v1/products/payment.card_spending/rows?limit=5", mesh.payment_url))
        .bearer_auth(mesh.domain_token("customer"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let payment =
        scrape(&mesh.payment_url, &mesh.domain_token_as("payment", "prometheus", &["metrics"]), true).await;
    promtool_accepts("payment", &payment);
    let product = r#"product="payment.card_spending""#;
    assert_eq!(
        value(&payment, &format!(r#"mesh_reads_total{{format="grpc",outcome="served",{product}}}"#)),
        3.0
    );
    assert_eq!(value(&payment, &format!(r#"mesh_rows_served_total{{format="grpc",{product}}}"#)), 30.0);
    assert_eq!(
        value(&payment, &format!(r#"mesh_reads_total{{format="csv",outcome="served",{product}}}"#)),
        1.0
    );
    assert_eq!(value(&payment, &format!(r#"mesh_rows_served_total{{format="csv",{product}}}"#)), 5.0);
    assert_eq!(
        value(&payment, &format!(r#"mesh_read_refusals_total{{{product},reason="PERMISSION_DENIED"}}"#)),
        1.0
    );
    assert_eq!(value(&payment, r#"mesh_auth_refusals_total{reason="audience"}"#), 1.0);
    let query = r#"method="Query",service="woori.payment.v1.CardSpendingService""#;
    assert_eq!(value(&payment, &format!(r#"mesh_calls_total{{code="OK",{query}}}"#)), 3.0);
    assert_eq!(value(&payment, &format!(r#"mesh_authorization_denials_total{{{query}}}"#)), 1.0);
    assert_eq!(value(&payment, "mesh_scans_running"), 0.0);
    assert!(value(&payment, r#"mesh_lease_renewals_total{outcome="ok"}"#) >= 1.0);
    assert_eq!(value(&payment, "mesh_registry_reachable"), 1.0);
    assert_eq!(value(&payment, &format!(r#"mesh_loads_total{{outcome="ok",{product}}}"#)), 1.0);
    assert!(value(&payment, &format!(r#"mesh_data_age_seconds{{{product}}}"#)) >= 0.0);
    assert!(value(&payment, "mesh_process_resident_memory_bytes") > 0.0);

    let registry = scrape(&mesh.registry, &mesh.token_as("prometheus", &["metrics"]), false).await;
    promtool_accepts("registry", &registry);
    assert_eq!(value(&registry, r#"mesh_registry_products{status="serving"}"#), 2.0);
    assert!(value(&registry, r#"mesh_registry_registrations_total{outcome="registered",reason=""}"#) >= 2.0);
    assert!(registry.contains("mesh_registry_db_connections_in_use"), "{registry}");

    let customer =
        scrape(&mesh.customer_url, &mesh.domain_token_as("customer", "prometheus", &["admin"]), false).await;
    promtool_accepts("customer", &customer);
    // Nothing names a principal or a filter.
    for text in [&payment, &registry, &customer] {
        assert!(!text.contains("kim") && !text.contains("e2e-admin"), "{text}");
    }
}

#[tokio::test]
async fn a_thousand_callers_with_a_thousand_filters_add_no_series() {
    let mesh = Mesh::start(200, false).await;
    let token = mesh.domain_token_as("payment", "prometheus", &["metrics"]);
    let calls = |from: usize, to: usize| {
        let mesh = &mesh;
        async move {
            for i in from..to {
                let filter = format!("tot_use_am > {i} AND seq != 'no-{i}'");
                // Half are admins served, half analysts refused; each a new principal.
                let _ = read(mesh, &format!("caller-{i}"), i % 2 == 0, &filter, 1).await;
            }
        }
    };
    calls(0, 10).await;
    // A first scrape counts itself: the series after ten are those of the second.
    scrape(&mesh.payment_url, &token, false).await;
    let after_ten = series(&scrape(&mesh.payment_url, &token, false).await);
    let started = Instant::now();
    calls(10, 1000).await;
    let after_thousand = scrape(&mesh.payment_url, &token, false).await;
    assert_eq!(
        series(&after_thousand),
        after_ten,
        "series after 1,000 callers ({:?} of calls)",
        started.elapsed()
    );
    let served = r#"mesh_reads_total{format="grpc",outcome="served",product="payment.card_spending"}"#;
    assert_eq!(value(&after_thousand, served), 500.0);
}

/// A free port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The result vector of PromQL `query` at the Prometheus at `url`.
async fn promql(url: &str, query: &str) -> Vec<serde_json::Value> {
    let answer: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/api/v1/query"))
        .query(&[("query", query)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "success", "{answer}");
    answer["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Debian's Prometheus, scraping `targets` (job, host:port, token) every second.
struct Prometheus {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(targets: &[(&str, &str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n");
        for (job, target, token) in targets {
            let token_file = dir.path().join(format!("{job}.token"));
            std::fs::write(&token_file, token).unwrap();
            config.push_str(&format!(
                "  - job_name: {job}\n    authorization:\n      type: Bearer\n      credentials_file: {}\n    \
                 static_configs:\n      - targets: ['{target}']\n",
                token_file.display()
            ));
        }
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let port = free_port();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus (Debian's package; scripts/install-tools.sh installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while reqwest::get(format!("{url}/-/ready")).await.map(|r| r.status() != 200).unwrap_or(true) {
            assert!(started.elapsed() < Duration::from_secs(30), "prometheus did not become ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Prometheus { child, url, _dir: dir }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn prometheus_scrapes_the_mesh_with_a_token_file_and_promql_sees_the_reads() {
    let mesh = Mesh::start(200, false).await;
    let host = |url: &str| url.trim_start_matches("http://").to_owned();
    let targets = [
        ("payment", host(&mesh.payment_url), mesh.domain_token_as("payment", "prometheus", &["metrics"])),
        ("registry", host(&mesh.registry), mesh.token_as("prometheus", &["metrics"])),
    ];
    let targets: Vec<(&str, &str, String)> =
        targets.iter().map(|(job, target, token)| (*job, target.as_str(), token.clone())).collect();
    let prometheus = Prometheus::start(&targets).await;
    // Both targets up: scraped with their token files.
    let started = Instant::now();
    loop {
        let up = promql(&prometheus.url, "sum(up)").await;
        if up.first().and_then(|r| r["value"][1].as_str()) == Some("2") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "targets not up: {up:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Reads and refusals for a few seconds, while it scrapes.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        read(&mesh, "e2e-admin", true, "", 5).await.unwrap();
        read(&mesh, "kim", false, "", 5).await.unwrap_err();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let served = promql(
        &prometheus.url,
        r#"sum(rate(mesh_reads_total{job="payment",product="payment.card_spending",outcome="served"}[30s]))"#,
    )
    .await;
    let rate: f64 = served[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(rate > 0.0, "rate of served queries: {served:?}");
    let refusals = promql(
        &prometheus.url,
        r#"sum by (reason) (rate(mesh_read_refusals_total{product="payment.card_spending"}[30s]))"#,
    )
    .await;
    let reasons: Vec<&str> = refusals.iter().filter_map(|r| r["metric"]["reason"].as_str()).collect();
    assert_eq!(reasons, ["PERMISSION_DENIED"], "{refusals:?}");
    let serving = promql(&prometheus.url, r#"mesh_registry_products{job="registry",status="serving"}"#).await;
    assert_eq!(serving[0]["value"][1], "2", "{serving:?}");
}
