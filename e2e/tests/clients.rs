//! The clients people already use, against a real mesh: grpcurl (reflection
//! v1alpha), buf curl (reflection v1), and the Go and Python examples built
//! from proto/ — each checked against rows read independently from SQLite.

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::{Mesh, run_ok, tool};

const QUARTER: &str = "2024Q2";
const PROVINCE: &str = "서울";

/// The top 10 customers by spend in QUARTER living in PROVINCE, computed
/// from the two domains' SQLite files: `rank,seq,tot_use_am` lines.
fn expected_top(mesh: &Mesh) -> String {
    let customers = rusqlite::Connection::open(mesh.customer_db()).unwrap();
    let mut statement =
        customers.prepare("SELECT seq, hous_sido_nm FROM profiles WHERE bas_yh = ?1").unwrap();
    let province: HashMap<String, String> =
        statement.query_map([QUARTER], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    let payments = rusqlite::Connection::open(mesh.payment_db()).unwrap();
    let mut statement =
        payments.prepare("SELECT seq, tot_use_am FROM card_spending WHERE bas_yh = ?1").unwrap();
    let mut rows: Vec<(String, i64)> = statement
        .query_map([QUARTER], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .filter(|(seq, _)| province.get(seq).is_some_and(|p| p == PROVINCE))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out = String::from("rank,seq,tot_use_am\n");
    for (rank, (seq, total)) in rows.iter().take(10).enumerate() {
        out.push_str(&format!("{},{seq},{total}\n", rank + 1));
    }
    out
}

fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpcurl_lists_describes_queries_and_checks_health() {
    let mesh = Mesh::start(500, true).await;
    let grpcurl = tool("bin/grpcurl");
    let payment = host_port(&mesh.payment_url);
    // Each domain is called with a token for it alone, as the README shows.
    let authorizations: std::collections::HashMap<String, String> = ["customer", "payment", "insight"]
        .iter()
        .map(|d| (d.to_string(), format!("authorization: Bearer {}", mesh.printed_token(d))))
        .collect();
    let authorization = authorizations["payment"].clone();
    let grpcurl_run = |args: &[&str]| {
        let addr = args.iter().find(|a| a.starts_with("127.0.0.1:")).expect("an address");
        let domain = mesh.domain_at(&format!("http://{addr}")).expect("a domain's address");
        run_ok(Command::new(&grpcurl).args(["-plaintext", "-H", &authorizations[domain]]).args(args))
    };
    // The sign-in token itself is refused there.
    let sign_in = Command::new(&grpcurl)
        .args(["-plaintext", "-H", &format!("authorization: Bearer {}", mesh.token)])
        .args(["-d", "{}", payment, "woori.payment.v1.CardSpendingService/Describe"])
        .output()
        .unwrap();
    assert!(!sign_in.status.success());
    let text = common::stderr(&sign_in);
    assert!(text.contains("Unauthenticated") && text.contains("mesh token print --for payment"), "{text}");

    // Every domain: its one product service, described with docs, healthy, queryable.
    let insight_url = mesh.insight_url.clone().unwrap();
    for (url, service, row, doc) in [
        (
            &mesh.customer_url,
            "woori.customer.v1.CustomerProfileService",
            "woori.customer.v1.CustomerProfile",
            "// Age band",
        ),
        (
            &mesh.payment_url,
            "woori.payment.v1.CardSpendingService",
            "woori.payment.v1.CardSpending",
            "// Credit card spend",
        ),
        (
            &insight_url,
            "woori.insight.v1.SegmentSpendingService",
            "woori.insight.v1.SegmentSpending",
            "// Number of customers in the segment",
        ),
    ] {
        let addr = host_port(url);
        assert_eq!(
            grpcurl_run(&[addr, "list"]).lines().collect::<Vec<_>>(),
            ["grpc.health.v1.Health", "mesh.product.v1.AuditService", service]
        );
        assert!(grpcurl_run(&[addr, "describe", service]).contains("rpc Describe"), "{service}");
        assert!(grpcurl_run(&[addr, "describe", row]).contains(doc), "{row}");
        let health = grpcurl_run(&[
            "-d",
            &format!(r#"{{"service": "{service}"}}"#),
            addr,
            "grpc.health.v1.Health/Check",
        ]);
        assert!(health.contains("\"SERVING\""), "{health}");
        let rows = grpcurl_run(&[
            "-d",
            r#"{"filter": "bas_yh = \"2024Q1\"", "limit": 2}"#,
            addr,
            &format!("{service}/Query"),
        ]);
        let rows: serde_json::Value = serde_json::from_str(&rows).unwrap();
        assert_eq!(rows["rows"].as_array().unwrap().len(), 2, "{service}");
    }

    let services = grpcurl_run(&[payment, "list"]);
    assert_eq!(
        services.lines().collect::<Vec<_>>(),
        ["grpc.health.v1.Health", "mesh.product.v1.AuditService", "woori.payment.v1.CardSpendingService"]
    );
    let service = grpcurl_run(&[payment, "describe", "woori.payment.v1.CardSpendingService"]);
    assert!(
        service.contains(
            "rpc Query ( .mesh.product.v1.QueryRequest ) returns ( stream .woori.payment.v1.QueryResponse )"
        ),
        "{service}"
    );
    assert!(service.contains("// Card spending: total, credit/check split"), "{service}");
    let row = grpcurl_run(&[payment, "describe", "woori.payment.v1.CardSpending"]);
    assert!(row.contains("// Customer number: identifies one customer directly."), "{row}");
    assert!(row.contains("int64 tot_use_am = 3"), "{row}");

    let body = r#"{"filter": "bas_yh = \"2024Q2\" AND tot_use_am > 10000000", "limit": 5, "order_by": "seq", "read_mask": {"paths": ["seq", "tot_use_am"]}}"#;
    let json = grpcurl_run(&["-d", body, payment, "woori.payment.v1.CardSpendingService/Query"]);
    let response: serde_json::Value = serde_json::from_str(&json).unwrap();
    let got: Vec<(String, i64)> = response["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["seq"].as_str().unwrap().to_owned(), r["totUseAm"].as_str().unwrap().parse().unwrap()))
        .collect();
    let conn = rusqlite::Connection::open(mesh.payment_db()).unwrap();
    let mut statement = conn
        .prepare("SELECT seq, tot_use_am FROM card_spending WHERE bas_yh = '2024Q2' AND tot_use_am > 10000000 ORDER BY seq LIMIT 5")
        .unwrap();
    let want: Vec<(String, i64)> =
        statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, want);
    assert!(response["resumeToken"].as_str().is_some_and(|t| !t.is_empty()));

    let health = grpcurl_run(&[
        "-d",
        r#"{"service": "woori.payment.v1.CardSpendingService"}"#,
        payment,
        "grpc.health.v1.Health/Check",
    ]);
    assert!(health.contains("\"SERVING\""), "{health}");

    let bad = Command::new(&grpcurl)
        .args([
            "-plaintext",
            "-H",
            &authorization,
            "-d",
            r#"{"filter": "tot_use_am > \"lots\""}"#,
            payment,
            "woori.payment.v1.CardSpendingService/Query",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let text = common::stderr(&bad);
    assert!(text.contains("Code: InvalidArgument"), "{text}");
    assert!(text.contains("filter: field `tot_use_am` is an integer"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn buf_curl_uses_reflection_v1() {
    let mesh = Mesh::start(500, false).await;
    let buf = tool("bin/buf");
    let customer_token = mesh.printed_token("customer");
    let curl = |args: &[&str]| {
        let mut command = Command::new(&buf);
        // The registry takes the sign-in token; the customer domain its own.
        let to_customer = args.iter().any(|a| a.starts_with(&mesh.customer_url));
        let token = if to_customer { &customer_token } else { &mesh.token };
        let authorization = format!("authorization: Bearer {token}");
        command
            .args(["curl", "--protocol", "grpc", "--http2-prior-knowledge", "-H", &authorization])
            .args(args);
        command
    };
    let registry_methods = run_ok(&mut curl(&["--list-methods", &mesh.registry]));
    assert!(registry_methods.contains("mesh.catalog.v1.CatalogService/GetProduct"), "{registry_methods}");
    let listed = run_ok(&mut curl(&[
        "--data",
        r#"{"domain": "customer"}"#,
        &format!("{}/mesh.catalog.v1.CatalogService/ListProducts", mesh.registry),
    ]));
    assert!(listed.contains("\"productId\": \"customer.profiles\""), "{listed}");
    let methods = run_ok(&mut curl(&["--list-methods", &mesh.customer_url]));
    assert!(methods.contains("woori.customer.v1.CustomerProfileService/Query"), "{methods}");
    assert!(methods.contains("woori.customer.v1.CustomerProfileService/Describe"), "{methods}");

    let url = format!("{}/woori.customer.v1.CustomerProfileService/Query", mesh.customer_url);
    let body = r#"{"filter": "bas_yh = \"2024Q2\" AND hous_sido_nm = \"서울\"", "limit": 3}"#;
    let json = run_ok(&mut curl(&["--data", body, &url]));
    let response: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = response["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["basYh"] == QUARTER && r["housSidoNm"] == PROVINCE), "{json}");

    let described = run_ok(&mut curl(&[&format!(
        "{}/woori.customer.v1.CustomerProfileService/Describe",
        mesh.customer_url
    )]));
    assert!(described.contains("\"rowCount\": \"1000\""), "{described}");

    let health =
        run_ok(&mut curl(&["--data", "{}", &format!("{}/grpc.health.v1.Health/Check", mesh.customer_url)]));
    assert!(health.contains("SERVING"), "{health}");

    let bad = curl(&["--data", r#"{"filter": "nope = 1"}"#, &url]).output().unwrap();
    assert!(!bad.status.success());
    let text = common::stdout(&bad) + &common::stderr(&bad);
    assert!(text.contains("invalid_argument") && text.contains("unknown field `nope` at column 1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_go_client_prints_the_top_customers_over_tls() {
    let mesh = Mesh::start_with(2000, false, true).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let binary = mesh.dir.path().join("go-client");
    run_ok(Command::new("bash").arg(root.join("examples/go-client/build.sh")).arg(&binary));
    assert!(mesh.registry.starts_with("https://"));
    let output = run_ok(
        Command::new(&binary)
            .args(["--registry", &mesh.registry, "--quarter", QUARTER, "--province", PROVINCE])
            .env("MESH_CA_FILE", mesh.ca_file().unwrap())
            .env("MESH_TOKEN", &mesh.token),
    );
    assert_eq!(output, expected_top(&mesh));
    // Without the CA, the services' certificates are not trusted.
    let untrusted = Command::new(&binary)
        .args(["--registry", &mesh.registry, "--quarter", QUARTER, "--connect-timeout", "2s"])
        .env_remove("MESH_CA_FILE")
        .env("MESH_TOKEN", &mesh.token)
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_client_prints_the_top_customers_over_tls() {
    let mesh = Mesh::start_with(2000, false, true).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = tool("venv/bin/python");
    let generated = mesh.dir.path().join("python-gen");
    run_ok(
        Command::new("bash")
            .arg(root.join("examples/python-client/generate.sh"))
            .arg(&python)
            .arg(&generated),
    );
    let output = run_ok(
        Command::new(&python)
            .arg(root.join("examples/python-client/client.py"))
            .args(["--registry", &mesh.registry, "--quarter", QUARTER, "--province", PROVINCE])
            .env("MESH_PY_GEN", &generated)
            .env("MESH_CA_FILE", mesh.ca_file().unwrap())
            .env("MESH_TOKEN", &mesh.token),
    );
    assert_eq!(output, expected_top(&mesh));
    // A token is not sent in plaintext to another host.
    let refused = Command::new(&python)
        .arg(root.join("examples/python-client/client.py"))
        .args(["--registry", "http://192.0.2.1:50050"])
        .env("MESH_PY_GEN", &generated)
        .env("MESH_TOKEN", &mesh.token)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(common::stderr(&refused).contains("refusing to send the token in plaintext to 192.0.2.1:50050"));
}
