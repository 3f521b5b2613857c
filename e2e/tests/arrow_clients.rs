//! The Arrow tools analysts use, against a real mesh: pyarrow's Flight
//! client reading a domain (the owner's rows as stored; an analyst's
//! pseudonyms and withheld columns as `mesh query` gives them; a refusal
//! word for word), and `mesh query --format arrow|parquet` read back by
//! pyarrow.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Mesh, records, run_ok, sqlite_rows, stderr, stdout, tool};
use mesh_contracts::catalog::RequestAccessRequest;
use mesh_contracts::catalog::access_service_client::AccessServiceClient;

/// Rows of `sql` over the payment domain's SQLite file.
fn sqlite(mesh: &Mesh, sql: &str) -> Vec<Vec<String>> {
    sqlite_rows(&mesh.payment_db(), sql)
}

const Q1: &str = r#"bas_yh = "2024Q1""#;

/// The Flight command for the whole product, three columns, in the load's
/// order (which may come in parts).
fn whole_command() -> String {
    serde_json::json!({"product": "payment.card_spending", "select": ["bas_yh", "seq", "tot_use_am"]})
        .to_string()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python-arrow/read.py")
}

/// `read.py` over the payment domain with `token` and `args`.
fn read_py(mesh: &Mesh, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(tool("arrow-venv/bin/python"))
        .arg(example())
        .args(["--domain", &mesh.payment_url, "--product", "payment.card_spending"])
        .args(args)
        .env("MESH_TOKEN", token)
        .output()
        .unwrap()
}

/// `subject` granted bas_yh and seq of payment.card_spending (the analyst
/// rule approves it): its token for the payment domain, and its first read
/// of a quarter once the domain has the agreement (or after 10 s).
async fn granted_analyst(mesh: &Mesh, subject: &str) -> (String, std::process::Output) {
    let request = RequestAccessRequest {
        product: "payment.card_spending".into(),
        purpose: "arrow test".into(),
        columns: vec!["bas_yh".into(), "seq".into()],
        ..Default::default()
    };
    AccessServiceClient::new(mesh.channel_as(&mesh.registry, subject, &["analyst"]))
        .request_access(request)
        .await
        .unwrap();
    let token = mesh.domain_token_as("payment", subject, &["analyst"]);
    let started = Instant::now();
    loop {
        let output = read_py(mesh, &token, &["--filter", Q1]);
        if output.status.success() || started.elapsed() > Duration::from_secs(10) {
            return (token, output);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pyarrow_reads_what_each_caller_may_read() {
    let mesh = Mesh::start(400, false).await;

    // The owner (an admin) reads the rows as stored.
    let admin = mesh.printed_token("payment");
    let owner = read_py(&mesh, &admin, &["--filter", Q1, "--select", "seq,tot_use_am", "--order-by", "seq"]);
    assert!(owner.status.success(), "{}", stderr(&owner));
    let got = records(&stdout(&owner));
    assert_eq!(got[0], ["seq", "tot_use_am"]);
    let stored =
        sqlite(&mesh, "SELECT seq, tot_use_am FROM card_spending WHERE bas_yh = '2024Q1' ORDER BY seq");
    assert_eq!(got[1..], stored[..], "row for row as SQLite holds them");
    // The table goes on to the libraries analysts use.
    let counted = read_py(&mesh, &admin, &["--filter", Q1, "--then", "duckdb"]);
    assert!(
        stdout(&counted).contains(&format!("{}", stored.len())),
        "{}{}",
        stdout(&counted),
        stderr(&counted)
    );
    for library in ["pandas", "polars"] {
        let summary = read_py(&mesh, &admin, &["--filter", Q1, "--select", "tot_use_am", "--then", library]);
        assert!(summary.status.success() && stdout(&summary).contains("tot_use_am"), "{}", stderr(&summary));
    }
    // pandas, Polars and DuckDB hold the Flight result row for row as SQLite
    // does: a quarter, and the whole product in its parts.
    let command = |filter: &str| {
        serde_json::json!({"product": "payment.card_spending", "filter": filter, "select": ["bas_yh", "seq", "tot_use_am"], "order_by": "seq"})
            .to_string()
    };
    let whole = sqlite(&mesh, "SELECT bas_yh, seq, tot_use_am FROM card_spending ORDER BY rowid");
    let quarter = sqlite(
        &mesh,
        "SELECT bas_yh, seq, tot_use_am FROM card_spending WHERE bas_yh = '2024Q1' ORDER BY seq",
    );
    for (request, expected) in [(command(Q1), quarter), (whole_command(), whole)] {
        for (library, rows) in common::frames("flight", &mesh.payment_url, &admin, &request) {
            assert_eq!(rows, expected, "{library}: {request}");
        }
    }

    // An analyst without an agreement: the domain's refusal, as Query gives it.
    let bo = mesh.domain_token_as("payment", "bo", &["analyst"]);
    let refused = read_py(&mesh, &bo, &[]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("`bo` has no agreement in force for payment.card_spending"),
        "{}",
        stderr(&refused)
    );

    // An analyst granted bas_yh and seq: pseudonyms as `mesh query` gives
    // them, the amounts withheld and named.
    let (ana, analyst) = granted_analyst(&mesh, "ana").await;
    assert!(analyst.status.success(), "{}", stderr(&analyst));
    assert!(stderr(&analyst).contains("does not cover") && stderr(&analyst).contains("tot_use_am"));
    let by_flight = records(&stdout(&analyst));
    assert_eq!(by_flight[0], ["bas_yh", "seq"], "withheld columns are left out");
    let by_query = mesh
        .mesh()
        .env("MESH_TOKEN", mesh.token_as("ana", &["analyst"]))
        .args(["query", "payment.card_spending", "--filter", Q1, "--format", "csv"])
        .output()
        .unwrap();
    assert!(by_query.status.success(), "{}", stderr(&by_query));
    assert_eq!(by_flight, records(&stdout(&by_query)), "the same pseudonyms, in the same order");
    let real: Vec<Vec<String>> =
        sqlite(&mesh, "SELECT bas_yh, seq FROM card_spending WHERE bas_yh = '2024Q1'");
    assert_eq!(by_flight.len() - 1, real.len());
    assert!(by_flight[1..].iter().all(|row| !real.contains(row)), "no real identifier is delivered");

    // The whole product twice (the second read is the one the domain kept):
    // the same rows in the same order, as `mesh query` gives them.
    let whole = |token: &str| {
        let output = read_py(&mesh, token, &[]);
        assert!(output.status.success(), "{}", stderr(&output));
        records(&stdout(&output))
    };
    let first = whole(&ana);
    let stored = sqlite(&mesh, "SELECT count(*) FROM card_spending");
    assert_eq!((first.len() - 1).to_string(), stored[0][0], "every row");
    assert_eq!(whole(&ana), first, "a read kept is read again as it was");
    let by_query = mesh
        .mesh()
        .env("MESH_TOKEN", mesh.token_as("ana", &["analyst"]))
        .args(["query", "payment.card_spending", "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(records(&stdout(&by_query)), first, "as the gRPC read gives them");
    // Another analyst with the same grant finds nothing of ana's kept: its
    // own pseudonyms, in its own order.
    let (cy, first_read) = granted_analyst(&mesh, "cy").await;
    assert!(first_read.status.success(), "cy's agreement never reached the domain: {}", stderr(&first_read));
    let theirs = whole(&cy);
    assert_eq!(theirs.len(), first.len());
    let seqs = |rows: &[Vec<String>]| {
        rows[1..].iter().map(|r| r[1].clone()).collect::<std::collections::HashSet<_>>()
    };
    assert!(seqs(&theirs).is_disjoint(&seqs(&first)), "no pseudonym of ana's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mesh_query_writes_arrow_and_parquet_that_pyarrow_reads() {
    let mesh = Mesh::start(400, false).await;
    let dir = tempfile::tempdir().unwrap();
    let python = tool("arrow-venv/bin/python");
    let stored = sqlite(&mesh, "SELECT count(*), sum(tot_use_am) FROM card_spending WHERE bas_yh = '2024Q1'");
    for (format, reader) in [
        ("arrow", "pyarrow.ipc.open_stream(pyarrow.OSFile(p)).read_all()"),
        ("parquet", "pyarrow.parquet.read_table(p)"),
    ] {
        let file = dir.path().join(format!("rows.{format}"));
        let output = mesh
            .mesh()
            .args(["query", "payment.card_spending", "--filter", Q1, "--format", format])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        std::fs::write(&file, &output.stdout).unwrap();
        let script = format!(
            "import sys, pyarrow, pyarrow.ipc, pyarrow.parquet, pyarrow.compute as pc\n\
             p = sys.argv[1]\nt = {reader}\n\
             print(t.num_rows, pc.sum(t['tot_use_am']).as_py(), t.schema.field('seq').metadata[b'mesh.classification'].decode())"
        );
        let read = run_ok(Command::new(&python).args(["-c", &script]).arg(&file));
        assert_eq!(
            read.trim(),
            format!("{} {} CLASSIFICATION_PII_IDENTIFIER", stored[0][0], stored[0][1]),
            "{format}"
        );
    }
    // An empty answer is still a file, with the schema.
    let empty = mesh
        .mesh()
        .args(["query", "payment.card_spending", "--filter", "tot_use_am < 0", "--format", "parquet"])
        .output()
        .unwrap();
    assert!(empty.status.success(), "{}", stderr(&empty));
    let file = dir.path().join("empty.parquet");
    std::fs::write(&file, &empty.stdout).unwrap();
    let read = run_ok(Command::new(&python).args(["-c", "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); print(t.num_rows, len(t.schema))"]).arg(&file));
    assert_eq!(read.trim(), "0 47");
}

#[test]
fn a_binary_format_is_not_written_to_a_terminal() {
    // `script` gives the command a terminal; nothing is asked of any registry.
    let mesh = mesh_e2e::workspace_binary("mesh");
    let command = format!(
        "{} --registry http://127.0.0.1:9 query payment.card_spending --format parquet",
        mesh.display()
    );
    let output = Command::new("script").args(["-qec", &command, "/dev/null"]).output().unwrap();
    let printed = stdout(&output);
    assert!(
        printed
            .contains("--format parquet: the output is binary; redirect it to a file, e.g. `> rows.parquet`"),
        "{printed}"
    );
    assert!(!printed.contains("registry"), "refused before the registry is asked: {printed}");
}
