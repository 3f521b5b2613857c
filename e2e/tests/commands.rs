//! Every subcommand and format through the real `mesh` binary against a
//! real mesh; CSV output checked against rows read straight from SQLite.

use crate::common;

use common::{Mesh, stderr, stdout};

/// (bas_yh, seq, tot_use_am) of every row over 30,000,000 KRW, from the payment database itself.
fn big_spenders(mesh: &Mesh) -> Vec<(String, String, i64)> {
    let conn = rusqlite::Connection::open(mesh.payment_db()).unwrap();
    let mut statement = conn
        .prepare("SELECT bas_yh, seq, tot_use_am FROM card_spending WHERE tot_use_am > 30000000 ORDER BY bas_yh, seq")
        .unwrap();
    statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discovery_commands_show_the_catalog() {
    let mesh = Mesh::start(300, true).await;

    let output = mesh.mesh().arg("domains").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for needle in ["customer", "payment", "insight", "Payment Data Team", "1/1"] {
        assert!(text.contains(needle), "`{needle}` missing from domains:\n{text}");
    }

    let output = mesh.mesh().args(["products", "--search", "spending"]).output().unwrap();
    let text = stdout(&output);
    assert!(text.contains("payment.card_spending") && text.contains("insight.segment_spending"), "{text}");
    assert!(text.contains("serving") && text.contains("v1 (major 1)"), "{text}");
    let output = mesh.mesh().args(["products", "--domain", "customer"]).output().unwrap();
    let text = stdout(&output);
    assert!(text.contains("customer.profiles") && !text.contains("payment.card_spending"), "{text}");

    let output = mesh.mesh().args(["describe", "insight.segment_spending"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for needle in [
        "Insight Analytics Team <insight@wooricard.example>",
        "built from customer.profiles (serving), payment.card_spending (serving)",
        "pass: every published segment has at least 5 customers",
        "v1 (major 1)",
        "customer_count",
        "avg_use_am",
        "KRW",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from describe:\n{text}");
    }
    let output = mesh.mesh().args(["describe", "customer.profiles"]).output().unwrap();
    let text = stdout(&output);
    assert!(
        text.contains("PII identifier") && text.contains("quasi-identifier") && text.contains("HOUS_SIDO_NM"),
        "{text}"
    );

    let output = mesh.mesh().arg("health").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).matches("serving ┆ serving").count(), 3, "{}", stdout(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn query_writes_every_format() {
    let mesh = Mesh::start(2000, false).await;
    let expected = big_spenders(&mesh);
    assert!(expected.len() > 10, "test data has {} big spenders", expected.len());
    let query = |format: &str| {
        let mut command = mesh.mesh();
        command.args([
            "query",
            "payment.card_spending",
            "--filter",
            "tot_use_am > 30000000",
            "--select",
            "bas_yh,seq,tot_use_am",
            "--format",
            format,
        ]);
        command.output().unwrap()
    };

    let output = query("csv");
    assert!(output.status.success(), "{}", stderr(&output));
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    assert_eq!(reader.headers().unwrap(), vec!["bas_yh", "seq", "tot_use_am"]);
    let rows: Vec<(String, String, i64)> = reader.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows, expected);

    let output = query("json");
    let json: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json.len(), expected.len());
    assert_eq!(json[0]["seq"], expected[0].1.as_str());
    assert_eq!(json[0]["tot_use_am"], expected[0].2);

    let output = query("ndjson");
    let lines: Vec<serde_json::Value> =
        stdout(&output).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), expected.len());
    assert_eq!(lines.last().unwrap()["seq"], expected.last().unwrap().1.as_str());

    // A table shows its cap and says how much was left out.
    let output = mesh
        .mesh()
        .args(["query", "payment.card_spending", "--format", "table", "--max-rows", "5"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).matches("2024Q").count(), 5, "{}", stdout(&output));
    assert!(stderr(&output).contains("5 rows shown; more match"), "{}", stderr(&output));
    let output = mesh
        .mesh()
        .args(["query", "payment.card_spending", "--format", "table", "--max-rows", "5", "--limit", "12"])
        .output()
        .unwrap();
    assert!(stderr(&output).contains("5 rows shown, 7 more left out"), "{}", stderr(&output));

    // Without --format a pipe gets CSV; ordering and limit are the domain's.
    let output = mesh
        .mesh()
        .args([
            "query",
            "payment.card_spending",
            "--select",
            "seq,tot_use_am",
            "--order-by",
            "tot_use_am desc",
            "--limit",
            "3",
        ])
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(text.starts_with("seq,tot_use_am\n"), "{text}");
    let totals: Vec<i64> =
        text.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(totals.len(), 3);
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mistakes_get_advice_and_exit_codes() {
    let mesh = Mesh::start(100, false).await;

    let output = mesh.mesh().args(["query", "payment.card_spend"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("unknown product `payment.card_spend`; did you mean payment.card_spending?"),
        "{}",
        stderr(&output)
    );

    let output = mesh
        .mesh()
        .args(["query", "payment.card_spending", "--filter", "tot_use_am > 5 AND sido = 1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("unknown field `sido` at column 20"), "{text}");
    assert!(text.contains("  tot_use_am > 5 AND sido = 1\n                     ^"), "{text}");

    let output =
        mesh.mesh().args(["query", "payment.card_spending", "--select", "seq,nope"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--select: unknown column `nope`"), "{}", stderr(&output));

    let output = mesh.mesh().args(["query"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "usage errors exit 2");
    let output = mesh.mesh().args(["query", "x.y", "--format", "xml"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn generate_and_completions_work_offline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("EDU_DATA_F.csv");
    let mut command = assert_cmd::Command::new(mesh_e2e::workspace_binary("mesh"));
    let output = command
        .args(["generate", "--customers", "20", "--quarters", "2", "--seed", "4", "--output"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().next().unwrap().split(',').count(), 55);
    assert_eq!(text.matches("\r\n").count(), 41);

    // The same seed writes the same bytes, to standard output too.
    let output = assert_cmd::Command::new(mesh_e2e::workspace_binary("mesh"))
        .args(["generate", "--customers", "20", "--quarters", "2", "--seed", "4"])
        .output()
        .unwrap();
    assert_eq!(output.stdout, text.as_bytes());

    let output = assert_cmd::Command::new(mesh_e2e::workspace_binary("mesh"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(stdout(&output).contains("_mesh()"), "{}", stdout(&output));
}
