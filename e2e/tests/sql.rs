//! SQL over the mesh as analysts run it, against a real mesh: `mesh sql`
//! in the CLI, and `mesh sql serve` reached with the ADBC Flight SQL driver
//! (Python), with pandas, Polars and DuckDB reading its results. Each
//! caller gets what its agreements give it and nothing more: the owner the
//! rows as stored, an analyst its pseudonyms (the same as `mesh query`
//! gives, and the same across products, so joins work) without the
//! withheld columns, a caller without an agreement the domain's refusal;
//! no SQL (`OR`, joins, subqueries, unions) widens a row scope; a
//! statement handle is good for its caller only.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use common::{Mesh, records, sqlite_rows as sqlite, stderr, stdout, tool};
use mesh_contracts::catalog::RequestAccessRequest;
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_e2e::Running;

const JOIN: &str = r#"SELECT c.life_stage, count(*) AS customers
    FROM "customer.profiles" c JOIN "payment.card_spending" p USING (bas_yh, seq)
    WHERE p.bas_yh = '2024Q1' GROUP BY 1 ORDER BY 1"#;

/// pyarrow reading an Arrow IPC stream or a Parquet file (`argv[1]`, of
/// kind `argv[2]`) and printing it as CSV.
const READ_BACK: &str = "import sys, pyarrow.csv, pyarrow.ipc, pyarrow.parquet
path, kind = sys.argv[1], sys.argv[2]
if kind == 'parquet':
    table = pyarrow.parquet.read_table(path)
else:
    table = pyarrow.ipc.open_stream(open(path, 'rb')).read_all()
pyarrow.csv.write_csv(table, sys.stdout.buffer)
";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python-arrow/sql.py")
}

/// `mesh sql serve` beside `mesh`, accepting the mesh's tokens.
fn serve_sql(mesh: &Mesh) -> (Running, String) {
    let mut command = Command::new(mesh_e2e::workspace_binary("mesh"));
    command
        .args(["--registry", &mesh.registry, "sql", "serve", "--addr", "127.0.0.1:0"])
        .arg("--auth-jwks")
        .arg(mesh.jwks_file())
        .args(["--auth-issuer", "mesh-local"]);
    let (running, addr) = mesh_e2e::serve(command);
    (running, format!("http://{addr}"))
}

/// `sql.py` (ADBC) running `query` at `url` with `token`, then `then`.
fn adbc(url: &str, token: &str, query: &str, then: &str) -> std::process::Output {
    Command::new(tool("arrow-venv/bin/python"))
        .arg(example())
        .arg(query)
        .args(["--sql", url, "--then", then])
        .env("MESH_TOKEN", token)
        .output()
        .unwrap()
}

/// The CSV rows `sql.py` printed, header left out, as text.
fn adbc_rows(url: &str, token: &str, query: &str) -> Vec<Vec<String>> {
    let output = adbc(url, token, query, "csv");
    assert!(output.status.success(), "{query}: {}", stderr(&output));
    records(&stdout(&output))[1..].to_vec()
}

/// The rows of `query` at `url` as pandas, Polars and DuckDB each hold
/// them after ADBC: all three, by library.
fn frames(url: &str, token: &str, query: &str) -> BTreeMap<String, Vec<Vec<String>>> {
    common::frames("sql", url, token, query)
}

/// Asks for `columns` of `product` as `subject` (an analyst), with `scope`.
async fn grant(mesh: &Mesh, subject: &str, product: &str, columns: &[&str], scope: &str) {
    let request = RequestAccessRequest {
        product: product.into(),
        purpose: "sql test".into(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        row_scope: scope.into(),
        ..Default::default()
    };
    AccessServiceClient::new(mesh.channel_as(&mesh.registry, subject, &["analyst"]))
        .request_access(request)
        .await
        .unwrap();
}

/// Runs `query` until it succeeds (the agreements reached the domains).
async fn until_ok(url: &str, token: &str, query: &str) -> Vec<Vec<String>> {
    let started = Instant::now();
    loop {
        let output = adbc(url, token, query, "csv");
        if output.status.success() {
            return records(&stdout(&output))[1..].to_vec();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{}", stderr(&output));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adbc_clients_get_what_their_agreements_give() {
    let mesh = Mesh::start(400, false).await;
    let (_sql, url) = serve_sql(&mesh);

    // The owner (an admin) reads the rows as stored, through ADBC.
    let stored = sqlite(
        &mesh.payment_db(),
        "SELECT bas_yh, seq, tot_use_am FROM card_spending WHERE bas_yh = '2024Q1' ORDER BY seq",
    );
    let owner = adbc_rows(
        &url,
        &mesh.token,
        r#"SELECT bas_yh, seq, tot_use_am FROM "payment.card_spending" WHERE bas_yh = '2024Q1' ORDER BY seq"#,
    );
    assert_eq!(owner, stored, "row for row as SQLite holds them");
    // pandas, Polars and DuckDB take the ADBC result: row for row what
    // SQLite holds, and the join as the mesh answers it.
    let quarter =
        r#"SELECT bas_yh, seq, tot_use_am FROM "payment.card_spending" WHERE bas_yh = '2024Q1' ORDER BY seq"#;
    for (query, expected) in [(quarter, stored), (JOIN, adbc_rows(&url, &mesh.token, JOIN))] {
        for (library, rows) in frames(&url, &mesh.token, query) {
            assert_eq!(rows, expected, "{library}: {query}");
        }
    }
    let counted = adbc(&url, &mesh.token, r#"SELECT * FROM payment.card_spending"#, "duckdb");
    assert_eq!(stdout(&counted).trim(), "800", "{}", stderr(&counted));

    // Without an agreement: the domain's refusal, word for word.
    let bo = mesh.token_as("bo", &["analyst"]);
    let refused = adbc(&url, &bo, r#"SELECT count(*) FROM "payment.card_spending""#, "csv");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("`bo` has no agreement in force for payment.card_spending"),
        "{}",
        stderr(&refused)
    );
    // ADBC names the gRPC code it got after the message.
    assert!(stderr(&refused).contains("(PermissionDenied;"), "the domain's code: {}", stderr(&refused));

    // An analyst's pseudonyms: as `mesh query` gives them, the same in both
    // products (the join finds every customer the owner's join finds).
    grant(&mesh, "ana", "payment.card_spending", &["bas_yh", "seq"], "").await;
    grant(&mesh, "ana", "customer.profiles", &["bas_yh", "seq", "life_stage"], "").await;
    let ana = mesh.token_as("ana", &["analyst"]);
    let mut by_sql =
        until_ok(&url, &ana, r#"SELECT * FROM "payment.card_spending" WHERE bas_yh = '2024Q1'"#).await;
    let by_query = mesh
        .mesh()
        .env("MESH_TOKEN", &ana)
        .args(["query", "payment.card_spending", "--filter", r#"bas_yh = "2024Q1""#, "--format", "csv"])
        .output()
        .unwrap();
    assert!(by_query.status.success(), "{}", stderr(&by_query));
    let mut by_query = records(&stdout(&by_query));
    assert_eq!(by_query.remove(0), ["bas_yh", "seq"], "the amounts are withheld");
    by_sql.sort();
    by_query.sort();
    assert_eq!(by_sql, by_query, "the same pseudonyms");
    let real = sqlite(&mesh.payment_db(), "SELECT bas_yh, seq FROM card_spending WHERE bas_yh = '2024Q1'");
    assert!(by_sql.iter().all(|row| !real.contains(row)), "no real customer number is delivered");
    let _ = until_ok(&url, &ana, r#"SELECT count(*) FROM "customer.profiles""#).await;
    assert_eq!(adbc_rows(&url, &ana, JOIN), adbc_rows(&url, &mesh.token, JOIN), "joins work on pseudonyms");

    // The catalog a BI tool asks for first (GetSqlInfo, GetCatalogs,
    // GetDbSchemas, GetTables): each product under its id and under its
    // domain, with the columns the caller gets, the withheld left out.
    let output = Command::new(tool("arrow-venv/bin/python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/adbc_catalog.py"))
        .arg(&url)
        .env("MESH_TOKEN", &ana)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let catalog: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(catalog["vendor_name"], "mesh sql");
    assert_eq!(catalog["card_spending"], serde_json::json!(["bas_yh", "seq"]), "the amounts are withheld");
    let tables = catalog["tables"].as_array().unwrap();
    for (schema, table) in
        [("public", "payment.card_spending"), ("payment", "card_spending"), ("customer", "profiles")]
    {
        let found = tables.iter().find(|t| t[0] == "mesh" && t[1] == schema && t[2] == table);
        assert!(found.is_some(), "mesh.{schema}.{table} in {tables:?}");
    }
    let spending = tables.iter().find(|t| t[1] == "public" && t[2] == "payment.card_spending").unwrap();
    assert_eq!(spending[3], serde_json::json!(["bas_yh", "seq"]), "GetTables gives the caller's columns");
    let withheld = adbc(&url, &ana, r#"SELECT sum(tot_use_am) FROM "payment.card_spending""#, "csv");
    assert!(
        stderr(&withheld).contains(
            "column `tot_use_am` of payment.card_spending is withheld by your agreement with its owners; leave \
             it out, or ask for an agreement that grants it: mesh access request payment.card_spending --columns \
             ...,tot_use_am"
        ),
        "a withheld column is named with the agreement that leaves it out: {}",
        stderr(&withheld)
    );
    assert!(stderr(&withheld).contains("(PermissionDenied;"), "{}", stderr(&withheld));
    // A qualified column is looked for in the table its qualifier names: the
    // amounts are withheld in `p`, and no column of `c` at all.
    let join = |column: &str| {
        format!(
            r#"SELECT {column} FROM "customer.profiles" c JOIN "payment.card_spending" p USING (bas_yh, seq)"#
        )
    };
    let reused = r#"SELECT p.seq FROM "customer.profiles" p UNION ALL SELECT p.tot_use_am FROM "payment.card_spending" p"#;
    for query in [join("sum(p.tot_use_am)"), reused.to_owned()] {
        let qualified = adbc(&url, &ana, &query, "csv");
        assert!(
            stderr(&qualified)
                .contains("column `tot_use_am` of payment.card_spending is withheld by your agreement"),
            "{query}: {}",
            stderr(&qualified)
        );
    }
    let elsewhere = adbc(&url, &ana, &join("sum(c.tot_use_am)"), "csv");
    assert!(!elsewhere.status.success());
    assert!(
        !stderr(&elsewhere).contains("withheld by your agreement"),
        "customer.profiles has no tot_use_am to withhold: {}",
        stderr(&elsewhere)
    );

    // A condition nesting hundreds deep is answered; thousands deep is
    // refused before it is planned, and the service lives on.
    let chain = |terms: i64| {
        let terms: Vec<String> = (0..terms).map(|n| format!("tot_use_am = {n}")).collect();
        format!(r#"SELECT count(*) FROM "payment.card_spending" WHERE {}"#, terms.join(" OR "))
    };
    let few = sqlite(&mesh.payment_db(), "SELECT count(*) FROM card_spending WHERE tot_use_am < 495");
    assert_eq!(adbc_rows(&url, &mesh.token, &chain(495)), few);
    let refused = adbc(&url, &mesh.token, &chain(2500), "csv");
    assert!(
        stderr(&refused)
            .contains("the query holds 5000 operators, more than 1000; write long lists of values"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(adbc_rows(&url, &mesh.token, r#"SELECT count(*) FROM "payment.card_spending""#), [["800"]]);

    // The SQL service's own metrics, and the Arrow reads it made on the domain.
    let metrics = crate::metrics::scrape(&url, &mesh.token_as("prometheus", &["metrics"]), true).await;
    crate::metrics::promtool_accepts("sql", &metrics);
    let flight = r#"service="arrow.flight.protocol.FlightService""#;
    for method in ["GetFlightInfo", "DoGet"] {
        let called = format!(r#"mesh_calls_total{{code="OK",method="{method}",{flight}}}"#);
        assert!(crate::metrics::value(&metrics, &called) >= 1.0, "{called}");
    }
    let payment = crate::metrics::scrape(
        &mesh.payment_url,
        &mesh.domain_token_as("payment", "prometheus", &["metrics"]),
        true,
    )
    .await;
    let arrow = r#"mesh_rows_served_total{format="arrow",product="payment.card_spending"}"#;
    assert!(crate::metrics::value(&payment, arrow) >= 800.0, "{arrow}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_sql_widens_a_row_scope() {
    let mesh = Mesh::start(400, false).await;
    let (_sql, url) = serve_sql(&mesh);
    grant(&mesh, "carol", "payment.card_spending", &["bas_yh", "seq"], r#"bas_yh = "2024Q1""#).await;
    let carol = mesh.token_as("carol", &["analyst"]);
    assert_eq!(until_ok(&url, &carol, r#"SELECT count(*) FROM "payment.card_spending""#).await, [["400"]]);
    for (query, expected) in [
        (r#"SELECT DISTINCT bas_yh FROM "payment.card_spending""#, "2024Q1"),
        (r#"SELECT count(*) FROM "payment.card_spending" WHERE bas_yh = '2024Q2' OR seq IS NOT NULL"#, "400"),
        (r#"SELECT count(*) FROM "payment.card_spending" WHERE NOT (bas_yh = '2024Q1')"#, "0"),
        (r#"SELECT count(*) FROM "payment.card_spending" WHERE bas_yh IN (SELECT '2024Q2')"#, "0"),
        (
            r#"SELECT count(*) FROM (SELECT * FROM "payment.card_spending" UNION ALL
               SELECT * FROM payment.card_spending WHERE bas_yh <> '2024Q1')"#,
            "400",
        ),
        (
            r#"SELECT count(DISTINCT p.bas_yh) FROM "payment.card_spending" p
               JOIN "payment.card_spending" q ON p.seq = q.seq OR p.bas_yh <> q.bas_yh"#,
            "1",
        ),
    ] {
        assert_eq!(adbc_rows(&url, &carol, query), [[expected]], "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_handle_is_good_for_its_caller_only() {
    let mesh = Mesh::start(100, false).await;
    let (_sql, url) = serve_sql(&mesh);
    let client = |subject: &str| FlightSqlServiceClient::new(mesh.channel_as(&url, subject, &["admin"]));
    let mut ana = client("ana");
    let info =
        ana.execute(r#"SELECT count(*) AS n FROM "payment.card_spending""#.into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut rows = ana.do_get(ticket.clone()).await.unwrap();
    let mut counted = 0;
    while let Some(batch) = futures_util::StreamExt::next(&mut rows).await {
        counted += batch.unwrap().num_rows();
    }
    assert_eq!(counted, 1);
    let Err(replayed) = client("mallory").do_get(ticket).await else {
        panic!("another caller redeemed the ticket")
    };
    assert!(replayed.to_string().contains("is not yours"), "{replayed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mesh_sql_joins_products_and_says_what_it_pushed() {
    let mesh = Mesh::start(400, false).await;
    let sql = |args: &[&str]| mesh.mesh().arg("sql").args(args).output().unwrap();

    // The issue's join, checked against SQLite over both domains' files.
    let joined = sql(&["--format", "csv", JOIN]);
    assert!(joined.status.success(), "{}", stderr(&joined));
    let conn = rusqlite::Connection::open(mesh.customer_db()).unwrap();
    conn.execute("ATTACH DATABASE ?1 AS payment", [mesh.payment_db().to_str().unwrap()]).unwrap();
    let mut statement = conn
        .prepare(
            "SELECT c.life_stage, count(*) FROM profiles c JOIN payment.card_spending p USING (bas_yh, seq)
             WHERE p.bas_yh = '2024Q1' GROUP BY 1 ORDER BY 1",
        )
        .unwrap();
    let expected: BTreeMap<String, i64> =
        statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    let got: BTreeMap<String, i64> =
        records(&stdout(&joined))[1..].iter().map(|r| (r[0].clone(), r[1].parse().unwrap())).collect();
    assert_eq!(got, expected);

    // Every other format holds the same rows (Arrow and Parquet read back
    // by pyarrow).
    let dir = tempfile::tempdir().unwrap();
    let pair = |row: &serde_json::Value| {
        let count = &row["customers"];
        let count = count.as_i64().or_else(|| count.as_str().and_then(|c| c.parse().ok()));
        (row["life_stage"].as_str().unwrap().to_owned(), count.unwrap())
    };
    for format in ["json", "ndjson", "arrow", "parquet"] {
        let output = sql(&["--format", format, JOIN]);
        assert!(output.status.success(), "{format}: {}", stderr(&output));
        let rows: BTreeMap<String, i64> = match format {
            "json" => serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout)
                .unwrap()
                .iter()
                .map(pair)
                .collect(),
            "ndjson" => {
                stdout(&output).lines().map(|line| pair(&serde_json::from_str(line).unwrap())).collect()
            }
            _ => {
                let file = dir.path().join(format);
                std::fs::write(&file, &output.stdout).unwrap();
                let read = Command::new(tool("arrow-venv/bin/python"))
                    .args(["-c", READ_BACK])
                    .arg(&file)
                    .arg(format)
                    .output()
                    .unwrap();
                assert!(read.status.success(), "{format}: {}", stderr(&read));
                records(&stdout(&read))[1..].iter().map(|r| (r[0].clone(), r[1].parse().unwrap())).collect()
            }
        };
        assert_eq!(rows, expected, "--format {format}");
    }

    // A limit over filters the domain takes whole goes to the domain too.
    let limited =
        sql(&["--explain", r#"SELECT seq FROM "payment.card_spending" WHERE tot_use_am > 1000000 LIMIT 3"#]);
    assert!(
        stdout(&limited).contains("select=[seq] filter=tot_use_am > 1000000 limit=3"),
        "{}{}",
        stdout(&limited),
        stderr(&limited)
    );
    // --explain names what each domain was asked.
    let explained = sql(&[
        "--explain",
        r#"SELECT seq FROM "payment.card_spending" WHERE tot_use_am > 1000000 AND upper(seq) <> 'X' LIMIT 3"#,
    ]);
    let plan = stdout(&explained);
    assert!(
        plan.contains(&format!(
            "MeshScan: product=payment.card_spending domain_endpoint={} select=[seq] filter=tot_use_am > 1000000",
            mesh.payment_url
        )),
        "{plan}{}",
        stderr(&explained)
    );

    // Errors say what is wrong and what to do.
    for (query, message) in [
        (
            r#"SELECT * FROM "payment.card_spendin""#,
            "no product `payment.card_spendin` in the catalog; did you mean \"payment.card_spending\"?",
        ),
        (
            "CREATE TABLE t AS SELECT 1",
            "only queries (SELECT, WITH, VALUES, EXPLAIN) are run; `CREATE TABLE t AS SELECT 1` is not one",
        ),
        ("SELECT 1; SELECT 2", "give one query; this SQL holds 2 statements"),
        (
            r#"SELECT * FROM "payment.card_spending" WHERE"#,
            "the SQL does not parse: Expected: an expression, found: EOF",
        ),
    ] {
        let output = sql(&[query]);
        assert!(!output.status.success(), "{query}");
        assert!(stderr(&output).contains(message), "{query}: {}", stderr(&output));
    }
    let bo = mesh
        .mesh()
        .env("MESH_TOKEN", mesh.token_as("bo", &["analyst"]))
        .args(["sql", "SELECT count(*) FROM \"payment.card_spending\""])
        .output()
        .unwrap();
    assert!(
        stderr(&bo).contains("`bo` has no agreement in force for payment.card_spending"),
        "{}",
        stderr(&bo)
    );
}
