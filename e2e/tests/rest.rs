//! The REST face of the domains against a real mesh, with a real HTTP
//! client: the same rows as gRPC in JSON pages, NDJSON and CSV; the same
//! agreements, pseudonyms and audit; Google-style JSON errors with the
//! matching status; CORS for the web catalog's origin only; and
//! schemathesis run against the live OpenAPI document.

use crate::common;

use std::time::{Duration, Instant};

use common::Mesh;
use mesh_contracts::catalog::RequestAccessRequest;
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::product::audit_service_client::AuditServiceClient;
use mesh_contracts::product::{ListReadsRequest, QueryRequest, ReadOutcome};
use mesh_contracts::woori::payment::v1::CardSpending;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use serde_json::Value;

const Q1: &str = r#"bas_yh = "2024Q1""#;

/// A GET of `path` on `base` with `token` and `accept`.
async fn get(base: &str, path: &str, token: Option<&str>, accept: &str) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{base}{path}")).header("accept", accept);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The JSON body of `response`, checking its status and that it is JSON.
async fn json(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "{:?}", response.headers());
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    response.json().await.unwrap()
}

/// Checks that `body` is a Google-style error of `status` whose message starts with `start`.
fn assert_error(body: &Value, code: u16, status: &str, start: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["status"], status, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with(start), "{message}");
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every row of `query` over gRPC, as `subject` with `roles`.
async fn grpc_rows(mesh: &Mesh, subject: &str, roles: &[&str], query: QueryRequest) -> Vec<CardSpending> {
    let mut client = CardSpendingServiceClient::new(mesh.channel_as(&mesh.payment_url, subject, roles));
    let mut stream = client.query(query).await.unwrap().into_inner();
    let mut rows = Vec::new();
    while let Some(batch) = stream.message().await.unwrap() {
        rows.extend(batch.rows);
    }
    rows
}

/// Every page of `path` (a rows path with its parameters), following
/// `next_page_token`: the rows and the number of pages.
async fn all_pages(base: &str, path: &str, token: &str) -> (Vec<Value>, usize) {
    let (mut rows, mut pages, mut page_token) = (Vec::new(), 0, String::new());
    loop {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = if page_token.is_empty() {
            path.to_owned()
        } else {
            format!("{path}{separator}page_token={}", url_encode(&page_token))
        };
        let page = json(get(base, &url, Some(token), "application/json").await, 200).await;
        pages += 1;
        rows.extend(page["rows"].as_array().unwrap().iter().cloned());
        page_token = page["next_page_token"].as_str().unwrap().to_owned();
        if page_token.is_empty() {
            return (rows, pages);
        }
        assert!(pages < 1000, "pages never end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rest_reads_are_the_grpc_reads() {
    let mesh = Mesh::start(300, false).await;
    let base = mesh.payment_url.clone();
    let admin = mesh.domain_token("payment");

    // The sign-in token, good at the registry, is refused here.
    let sign_in = json(get(&base, "/v1/products", Some(&mesh.token), "application/json").await, 401).await;
    assert_error(&sign_in, 401, "UNAUTHENTICATED", "the token is for another audience");

    // No token: 401 with the way to get one, as JSON.
    let response = get(&base, "/v1/products", None, "application/json").await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body = json(response, 401).await;
    assert_error(&body, 401, "UNAUTHENTICATED", "the call carries no bearer token");

    // The products served and one's description.
    let list = json(get(&base, "/v1/products", Some(&admin), "*/*").await, 200).await;
    let product = &list["products"][0];
    assert_eq!(product["id"], "payment.card_spending");
    assert_eq!(product["row_count"], 600);
    assert_eq!(product["access_mode"], "ACCESS_MODE_BY_AGREEMENT");
    let described = json(get(&base, "/v1/products/payment.card_spending", Some(&admin), "").await, 200).await;
    assert_eq!(described["product"], "payment.card_spending");
    assert_eq!(described["row_count"], "600", "int64 in protobuf's JSON mapping");
    assert_eq!(described["options"]["owner_team"], "Payment Data Team");
    assert!(described["quality_results"].as_array().is_some_and(|r| !r.is_empty()));

    // JSON pages, NDJSON and CSV give the gRPC rows, in the same order.
    let expected =
        grpc_rows(&mesh, "e2e-admin", &["admin"], QueryRequest { filter: Q1.into(), ..Default::default() })
            .await;
    assert_eq!(expected.len(), 300);
    let rows_path = format!("/v1/products/payment.card_spending/rows?filter={}", url_encode(Q1));
    let (paged, pages) = all_pages(&base, &format!("{rows_path}&page_size=70"), &admin).await;
    assert_eq!(pages, 5, "300 rows in pages of 70");
    let seqs =
        |rows: &[Value]| rows.iter().map(|r| r["seq"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(seqs(&paged), expected.iter().map(|r| r.seq.clone()).collect::<Vec<_>>());
    assert!(paged.iter().zip(&expected).all(|(json, row)| json["tot_use_am"] == row.tot_use_am));
    assert_eq!(paged[0].as_object().unwrap().len(), 47, "every column");

    let response = get(&base, &rows_path, Some(&admin), "application/x-ndjson").await;
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, paged, "NDJSON holds the same rows as the pages");

    let response =
        get(&base, &format!("{rows_path}&select=seq,tot_use_am,bas_yh"), Some(&admin), "text/csv").await;
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(reader.headers().unwrap(), vec!["seq", "tot_use_am", "bas_yh"]);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 300);
    assert!(records.iter().zip(&expected).all(|(record, row)| record[0] == row.seq
        && record[1] == row.tot_use_am.to_string()
        && record[2] == row.bas_yh));

    // CSV and NDJSON are byte for byte what `mesh query` writes (one
    // writer, mesh-rows, on both sides).
    for (format, accept) in [("csv", "text/csv"), ("ndjson", "application/x-ndjson")] {
        let cli = mesh
            .mesh()
            .args(["query", "payment.card_spending", "--format", format, "--filter", Q1])
            .output()
            .unwrap();
        assert!(cli.status.success(), "{}", common::stderr(&cli));
        let rest = get(&base, &rows_path, Some(&admin), accept).await.text().await.unwrap();
        assert_eq!(rest, common::stdout(&cli), "{format}");
    }

    // The limit holds across pages; an empty result is an empty page.
    let (limited, pages) =
        all_pages(&base, &format!("{rows_path}&limit=150&page_size=100&order_by=tot_use_am%20desc"), &admin)
            .await;
    assert_eq!((limited.len(), pages), (150, 2));
    let amounts: Vec<i64> = limited.iter().map(|r| r["tot_use_am"].as_i64().unwrap()).collect();
    assert!(amounts.windows(2).all(|w| w[0] >= w[1]), "ordered");
    let empty = json(
        get(&base, "/v1/products/payment.card_spending/rows?filter=tot_use_am%20%3C%200", Some(&admin), "")
            .await,
        200,
    )
    .await;
    assert_eq!(empty, serde_json::json!({"rows": [], "next_page_token": ""}));
    let response = get(
        &base,
        "/v1/products/payment.card_spending/rows?filter=tot_use_am%20%3C%200&select=seq",
        Some(&admin),
        "text/csv",
    )
    .await;
    assert_eq!(response.text().await.unwrap(), "seq\n", "a CSV header even without rows");

    // Bad input: the gRPC message, the matching status, never a 500.
    let cases = [
        (
            "/v1/products/payment.card_spending/rows?filter=tot_use_am%20%3E",
            "application/json",
            400,
            "INVALID_ARGUMENT",
            "filter",
        ),
        (
            "/v1/products/payment.card_spending/rows?limit=-1",
            "application/json",
            400,
            "INVALID_ARGUMENT",
            "limit: -1 is negative",
        ),
        (
            "/v1/products/payment.card_spending/rows?page_token=abc",
            "application/json",
            400,
            "INVALID_ARGUMENT",
            "resume_token",
        ),
        (
            "/v1/products/payment.card_spending/rows?select=nope",
            "application/json",
            400,
            "INVALID_ARGUMENT",
            "read_mask",
        ),
        (
            "/v1/products/payment.card_spending/rows?page_size=5000",
            "application/json",
            400,
            "INVALID_ARGUMENT",
            "page_size",
        ),
        (
            "/v1/products/payment.card_spending/rows?colour=red",
            "application/json",
            400,
            "INVALID_ARGUMENT",
            "unknown query parameter `colour`",
        ),
        (
            "/v1/products/payment.card_spending/rows",
            "text/html",
            406,
            "INVALID_ARGUMENT",
            "Accept: none of `text/html`",
        ),
        (
            "/v1/products/shop.orders/rows",
            "application/json",
            404,
            "NOT_FOUND",
            "product `shop.orders` is not served here",
        ),
        ("/v1/products/shop.orders", "application/json", 404, "NOT_FOUND", "product `shop.orders`"),
        ("/v1/nothing", "application/json", 404, "NOT_FOUND", "nothing is served at /v1/nothing"),
    ];
    for (path, accept, code, status, start) in cases {
        let body = json(get(&base, path, Some(&admin), accept).await, code).await;
        assert_eq!(body["error"]["status"], status, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(start), "{path}: {message}");
    }

    // An analyst without an agreement is refused as over gRPC; with one,
    // the rows come pseudonymized exactly as over gRPC, amounts withheld.
    let ana = mesh.domain_token_as("payment", "ana", &["analyst"]);
    let refused = json(get(&base, &rows_path, Some(&ana), "").await, 403).await;
    assert_error(
        &refused,
        403,
        "PERMISSION_DENIED",
        "`ana` has no agreement in force for payment.card_spending",
    );
    let mut access = AccessServiceClient::new(mesh.channel_as(&mesh.registry, "ana", &["analyst"]));
    access
        .request_access(RequestAccessRequest {
            product: "payment.card_spending".into(),
            purpose: "rest test".into(),
            columns: vec!["seq".into(), "bas_yh".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let started = Instant::now();
    let response = loop {
        let response = get(&base, &format!("{rows_path}&page_size=1000"), Some(&ana), "").await;
        if response.status() == 200 {
            break response;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the agreement did not reach the domain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let withheld = response.headers()["mesh-withheld-columns"].to_str().unwrap().to_owned();
    assert!(withheld.split(',').any(|c| c == "tot_use_am"), "{withheld}");
    let page = json(response, 200).await;
    let ana_rest = seqs(page["rows"].as_array().unwrap());
    let ana_grpc =
        grpc_rows(&mesh, "ana", &["analyst"], QueryRequest { filter: Q1.into(), ..Default::default() }).await;
    assert_eq!(ana_rest, ana_grpc.iter().map(|r| r.seq.clone()).collect::<Vec<_>>(), "the same pseudonyms");
    assert!(ana_rest.iter().all(|s| s.len() == 32) && ana_rest != seqs(&paged));
    assert_eq!(page["rows"][0].as_object().unwrap().len(), 2, "only the granted columns");
    let masked =
        json(get(&base, &format!("{rows_path}&select=seq,tot_use_am"), Some(&ana), "").await, 403).await;
    assert_error(&masked, 403, "PERMISSION_DENIED", "read_mask names `tot_use_am` not in your agreement");

    // REST reads are in the product's read log like any other.
    let mut audit = AuditServiceClient::new(mesh.channel_as(&base, "lee", &["owner:payment"]));
    let started = Instant::now();
    let reads = loop {
        let request = ListReadsRequest {
            product: "payment.card_spending".into(),
            principal: "ana".into(),
            page_size: 100,
            ..Default::default()
        };
        let reads = audit.list_reads(request).await.unwrap().into_inner().reads;
        // The log is written in batches: wait for the last reads to land.
        if reads.iter().any(|r| r.outcome() == ReadOutcome::Served)
            || started.elapsed() > Duration::from_secs(5)
        {
            break reads;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reads.iter().any(|r| r.outcome() == ReadOutcome::Refused));
    assert!(
        reads.iter().any(|r| r.outcome() == ReadOutcome::Served && r.rows == 300 && r.filter == Q1),
        "{reads:?}"
    );

    // CORS: the web catalog's origin may read from a browser, no other.
    let client = reqwest::Client::new();
    let preflight = |origin: &str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{base}/v1/products/payment.card_spending/rows"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight(&mesh.registry).await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], mesh.registry.as_str());
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let response = client
        .get(format!("{base}{rows_path}"))
        .bearer_auth(&ana)
        .header("origin", &mesh.registry)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], mesh.registry.as_str());
    let exposed = response.headers()["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("mesh-withheld-columns"), "{exposed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let mesh = Mesh::start(200, false).await;
    let document = json(get(&mesh.payment_url, "/openapi.json", None, "").await, 200).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert!(
        document["components"]["schemas"]["Row.payment.card_spending"]["properties"]["tot_use_am"]
            .is_object()
    );
    common::schemathesis(&format!("{}/openapi.json", mesh.payment_url), &mesh.domain_token("payment"));
}
