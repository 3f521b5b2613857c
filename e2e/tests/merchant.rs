//! A domain published by files alone: a `merchant` team writes contracts,
//! a CSV, a TSV and product files, and runs `mesh domain serve`. Its two
//! products are registered and read with `mesh query`, REST and grpcurl
//! (reflection over contracts compiled at start) and the Go and Python
//! examples (no stubs: the registry's descriptor set); an analyst gets
//! pseudonyms and no sensitive column; a derived product joins merchant
//! sales with payment.card_spending in SQL under the merchant domain's own
//! agreement (asked for by the server, approved by payment's owner); a
//! breaking change is caught by `mesh product check` and refused by the
//! registry; a product file with bad SQL is refused naming its place.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Mesh, run_ok, stderr, stdout, tool};
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{
    AgreementState, ApproveAgreementRequest, ListAgreementsRequest, RegisterProductRequest,
};

const SHOPS_PROTO: &str = r#"syntax = "proto3";
package merchant.shops.v1;
import "mesh/product/v1/options.proto";
import "mesh/product/v1/query.proto";

// One shop.
message Shop {
  // The shop's number.
  string shop_id = 1 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PUBLIC, source_column: "SHOP_ID" }];
  // The province it is in.
  string region = 2 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PUBLIC, source_column: "REGION" }];
  // Its owner's customer number.
  string owner_id = 3 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PII_IDENTIFIER, source_column: "OWNER_ID" }];
  // Its owner's phone number.
  string owner_phone = 4 [(mesh.product.v1.column) = { classification: CLASSIFICATION_SENSITIVE, source_column: "OWNER_PHONE" }];
}

// A batch of shops.
message QueryResponse {
  repeated Shop rows = 1;
  string resume_token = 2;
}

// The shops taking Woori cards.
service ShopsService {
  option (mesh.product.v1.product) = {
    title: "Shops" owner_team: "Merchant Data Team" owner_contact: "merchant@example.com"
    purpose: "Which shops take the card, where" source: "Merchant system" policy: "Internal use" freshness: "daily"
    access_mode: ACCESS_MODE_BY_AGREEMENT
    auto_approvals: [{ role: "analyst" classifications: [CLASSIFICATION_PUBLIC, CLASSIFICATION_PII_IDENTIFIER] max_days: 90 }]
  };
  // Streams shops.
  rpc Query(mesh.product.v1.QueryRequest) returns (stream QueryResponse);
  // Describes the product.
  rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse);
}
"#;

const SALES_PROTO: &str = r#"syntax = "proto3";
package merchant.sales.v1;
import "mesh/product/v1/options.proto";
import "mesh/product/v1/query.proto";

// What one shop sold in one quarter.
message Sale {
  // The quarter.
  string bas_yh = 1 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PUBLIC, source_column: "QUARTER" }];
  // The shop.
  string shop_id = 2 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PUBLIC, source_column: "SHOP_ID" }];
  // Card sales.
  int64 sales = 3 [(mesh.product.v1.column) = { classification: CLASSIFICATION_INTERNAL, source_column: "SALES", unit: "KRW" }];
}

// A batch of sales.
message QueryResponse {
  repeated Sale rows = 1;
  string resume_token = 2;
}

// Card sales per shop and quarter.
service SalesService {
  option (mesh.product.v1.product) = {
    title: "Shop sales" owner_team: "Merchant Data Team" owner_contact: "merchant@example.com"
    purpose: "Card sales per shop and quarter" source: "Merchant system" policy: "Internal use" freshness: "quarterly"
  };
  // Streams sales.
  rpc Query(mesh.product.v1.QueryRequest) returns (stream QueryResponse);
  // Describes the product.
  rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse);
}
"#;

const QUARTERS_PROTO: &str = r#"syntax = "proto3";
package merchant.quarters.v1;
import "mesh/product/v1/options.proto";
import "mesh/product/v1/query.proto";

// Merchant sales beside all card spending, per quarter.
message Quarter {
  // The quarter.
  string bas_yh = 1 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PUBLIC }];
  // What the merchant's shops sold.
  int64 merchant_sales = 2 [(mesh.product.v1.column) = { classification: CLASSIFICATION_INTERNAL, unit: "KRW" }];
  // What all card customers spent.
  int64 card_spending = 3 [(mesh.product.v1.column) = { classification: CLASSIFICATION_INTERNAL, unit: "KRW" }];
}

// A batch of quarters.
message QueryResponse {
  repeated Quarter rows = 1;
  string resume_token = 2;
}

// Merchant sales against card spending.
service QuartersService {
  option (mesh.product.v1.product) = {
    title: "Merchant share per quarter" owner_team: "Merchant Data Team" owner_contact: "merchant@example.com"
    purpose: "How the merchant's card sales compare with all card spending" source: "merchant.sales, payment.card_spending"
    policy: "Internal use" freshness: "when its inputs load"
  };
  // Streams quarters.
  rpc Query(mesh.product.v1.QueryRequest) returns (stream QueryResponse);
  // Describes the product.
  rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse);
}
"#;

const SHOPS_FILE: &str = "\
product: merchant.shops
contract: { proto: shops.proto, service: merchant.shops.v1.ShopsService }
key: [shop_id]
indexes: [region]
source: { csv: shops.csv }
quality:
  - { name: region_given, description: every shop has a region, holds: \"region != ''\" }
";

const SALES_FILE: &str = "\
product: merchant.sales
contract: { proto: sales.proto, service: merchant.sales.v1.SalesService }
key: [bas_yh, shop_id]
amounts: [sales]
source: { tsv: sales.tsv }
refresh: { when_source_changes: true }
";

const QUARTERS_FILE: &str = r#"product: merchant.quarters
contract: { proto: quarters.proto, service: merchant.quarters.v1.QuartersService }
key: [bas_yh]
amounts: [merchant_sales, card_spending]
source:
  sql:
    inputs: [merchant.sales, payment.card_spending]
    query: |
      SELECT s.bas_yh AS bas_yh, s.total AS merchant_sales, p.total AS card_spending
      FROM (SELECT bas_yh, sum(sales) AS total FROM "merchant.sales" GROUP BY bas_yh) s
      JOIN (SELECT bas_yh, sum(tot_use_am) AS total FROM "payment.card_spending" GROUP BY bas_yh) p
        ON s.bas_yh = p.bas_yh
refresh: { when_inputs_load: true }
"#;

/// Writes the merchant team's folder: contracts, sources, product files.
fn write_domain(dir: &Path, quarters: &[String]) -> Vec<PathBuf> {
    std::fs::write(dir.join("shops.proto"), SHOPS_PROTO).unwrap();
    std::fs::write(dir.join("sales.proto"), SALES_PROTO).unwrap();
    std::fs::write(dir.join("quarters.proto"), QUARTERS_PROTO).unwrap();
    let mut shops = String::from("SHOP_ID,REGION,OWNER_ID,OWNER_PHONE\n");
    let mut sales = String::from("QUARTER\tSHOP_ID\tSALES\n");
    for shop in 1..=20 {
        shops.push_str(&format!(
            "s{shop:02},{},{},010-0000-{shop:04}\n",
            ["Seoul", "Busan"][shop % 2],
            1000 + shop
        ));
        for (q, quarter) in quarters.iter().enumerate() {
            sales.push_str(&format!("{quarter}\ts{shop:02}\t{}\n", shop * 1000 + q));
        }
    }
    std::fs::write(dir.join("shops.csv"), shops).unwrap();
    std::fs::write(dir.join("sales.tsv"), sales).unwrap();
    [("shops", SHOPS_FILE), ("sales", SALES_FILE), ("quarters", QUARTERS_FILE)]
        .iter()
        .map(|(name, text)| {
            let file = dir.join(format!("{name}.product.yaml"));
            std::fs::write(&file, text).unwrap();
            file
        })
        .collect()
}

/// `mesh domain serve` for the merchant domain beside `mesh`.
fn domain_server(mesh: &Mesh, files: &[PathBuf], data: &Path) -> Command {
    let mut command = Command::new(mesh_e2e::workspace_binary("mesh"));
    command
        .args(["domain", "serve", "--addr", "127.0.0.1:0", "--registry", &mesh.registry])
        .arg("--auth-jwks")
        .arg(mesh.jwks_file())
        .args(["--auth-issuer", mesh_grpc::auth::issuer::LOCAL_ISSUER])
        .arg("--issuer-dir")
        .arg(mesh.dir.path().join("issuer"))
        .arg("--pseudonym-key")
        .arg(mesh.dir.path().join("pseudonym.key"))
        .arg("--data-dir")
        .arg(data);
    for file in files {
        command.arg("--product").arg(file);
    }
    command
}

/// Runs `mesh` with `token` until it prints rows below its header (a
/// domain learns of an agreement, a product gets built) or `within`
/// passes; its last output.
fn until_ok(mesh: &Mesh, token: &str, args: &[&str], within: Duration) -> (bool, String, String) {
    let started = Instant::now();
    loop {
        let output = mesh.mesh().env("MESH_TOKEN", token).args(args).output().unwrap();
        let done = output.status.success() && stdout(&output).lines().count() > 1;
        if done || started.elapsed() > within {
            return (done, stdout(&output), stderr(&output));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines().skip(1).map(|line| line.split(',').map(str::to_owned).collect()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_domain_published_by_files_alone_is_served_governed_and_derived() {
    let mesh = Mesh::start(200, false).await;
    let payment = rusqlite::Connection::open(mesh.payment_db()).unwrap();
    let mut statement = payment
        .prepare("SELECT bas_yh, sum(tot_use_am) FROM card_spending GROUP BY bas_yh ORDER BY 1")
        .unwrap();
    let spending: Vec<(String, i64)> =
        statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap().map(Result::unwrap).collect();
    let quarters: Vec<String> = spending.iter().map(|(q, _)| q.clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    let files = write_domain(dir.path(), &quarters);

    // The team's CI: every file checks.
    for file in &files {
        let output = mesh.mesh().args(["product", "check"]).arg(file).output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }

    let (_server, addr) = mesh_e2e::serve(domain_server(&mesh, &files, &dir.path().join("data")));

    // Registered and read with mesh query, as the admin: the file's rows.
    let (ok, out, err) = until_ok(
        &mesh,
        &mesh.token,
        &["query", "merchant.shops", "--format", "csv"],
        Duration::from_secs(20),
    );
    assert!(ok, "{err}");
    let shops = csv_rows(&out);
    assert_eq!(shops.len(), 20, "{out}");
    assert_eq!(shops[0], ["s01", "Busan", "1001", "010-0000-0001"]);
    let (ok, out, err) = until_ok(
        &mesh,
        &mesh.token,
        &["query", "merchant.sales", "--format", "csv"],
        Duration::from_secs(10),
    );
    assert!(ok, "{err}");
    assert_eq!(csv_rows(&out).len(), 20 * quarters.len(), "{out}");

    // An analyst: pseudonyms for owner_id, no owner_phone.
    let analyst = mesh.token_as("ana", &["analyst"]);
    let output = mesh
        .mesh()
        .env("MESH_TOKEN", &analyst)
        .args([
            "access",
            "request",
            "merchant.shops",
            "--purpose",
            "shop map",
            "--columns",
            "shop_id,region,owner_id",
        ])
        .output()
        .unwrap();
    assert!(stdout(&output).contains("approved at once"), "{}{}", stdout(&output), stderr(&output));
    let (ok, out, err) = until_ok(
        &mesh,
        &analyst,
        &["query", "merchant.shops", "--format", "csv", "--limit", "3"],
        Duration::from_secs(10),
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().next(), Some("shop_id,region,owner_id"), "{out}");
    let first = &csv_rows(&out)[0];
    assert_eq!(first[..2], ["s01", "Busan"]);
    assert_ne!(first[2], "1001", "the analyst gets a pseudonym, not the owner's number");
    assert!(!out.contains("010-0000"), "no phone number reaches the analyst: {out}");
    let output = mesh
        .mesh()
        .env("MESH_TOKEN", &analyst)
        .args(["query", "merchant.shops", "--select", "owner_phone"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("owner_phone"), "{}", stderr(&output));

    // REST and grpcurl on the server's own port.
    let domain_token = mesh.domain_token("merchant");
    let rows: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{addr}/v1/products/merchant.sales/rows?filter=shop_id%3D%27s03%27"))
        .bearer_auth(&domain_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows["rows"].as_array().map(Vec::len), Some(quarters.len()), "{rows}");
    let grpcurl = tool("bin/grpcurl");
    let authorization = format!("authorization: Bearer {domain_token}");
    let listed = run_ok(Command::new(&grpcurl).args(["-plaintext", "-H", &authorization, &addr, "list"]));
    for service in [
        "merchant.shops.v1.ShopsService",
        "merchant.sales.v1.SalesService",
        "merchant.quarters.v1.QuartersService",
    ] {
        assert!(listed.contains(service), "{listed}");
    }
    let described = run_ok(Command::new(&grpcurl).args([
        "-plaintext",
        "-H",
        &authorization,
        &addr,
        "describe",
        "merchant.shops.v1.Shop",
    ]));
    assert!(
        described.contains("owner_phone") && described.contains("CLASSIFICATION_SENSITIVE"),
        "{described}"
    );
    let queried = run_ok(Command::new(&grpcurl).args([
        "-plaintext",
        "-H",
        &authorization,
        "-d",
        r#"{"filter": "region = 'Seoul'"}"#,
        &addr,
        "merchant.shops.v1.ShopsService/Query",
    ]));
    assert_eq!(queried.matches("\"shopId\"").count(), 10, "{queried}");

    // The Go and Python examples read it too, with no stubs for it: its rows
    // decoded with the descriptor set the registry holds.
    let output = mesh
        .mesh()
        .args(["query", "merchant.shops", "--format", "csv", "--filter", "region = 'Seoul'"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let seoul = stdout(&output);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let go = dir.path().join("go-client");
    run_ok(Command::new("bash").arg(root.join("examples/go-client/build.sh")).arg(&go));
    let example_args =
        ["--registry", &mesh.registry, "--product", "merchant.shops", "--filter", "region = 'Seoul'"];
    let from_go = run_ok(Command::new(&go).args(example_args).env("MESH_TOKEN", &mesh.token));
    assert_eq!(from_go, seoul);
    let python = tool("venv/bin/python");
    let generated = dir.path().join("python-gen");
    run_ok(
        Command::new("bash")
            .arg(root.join("examples/python-client/generate.sh"))
            .arg(&python)
            .arg(&generated),
    );
    let from_python = run_ok(
        Command::new(&python)
            .arg(root.join("examples/python-client/client.py"))
            .args(example_args)
            .env("MESH_PY_GEN", &generated)
            .env("MESH_TOKEN", &mesh.token),
    );
    assert_eq!(from_python, seoul);

    // The derived product: the server asked payment for an agreement of its
    // own, for the columns its SQL names; payment's owner approves it.
    let mut access = AccessServiceClient::new(mesh.channel_as(&mesh.registry, "pat", &["owner:payment"]));
    let started = Instant::now();
    let asked = loop {
        let request = ListAgreementsRequest { product: "payment.card_spending".into(), ..Default::default() };
        let listed = access.list_agreements(request).await.unwrap().into_inner().agreements;
        if let Some(asked) = listed.into_iter().find(|a| a.principal == "merchant-domain") {
            break asked;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the merchant domain asked for no agreement");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(asked.state(), AgreementState::Pending);
    assert_eq!(asked.columns, ["bas_yh", "tot_use_am"], "only the columns its SQL names");
    assert!(asked.raw_columns.is_empty() && asked.purpose.starts_with("merchant.quarters: "), "{asked:?}");
    access
        .approve_agreement(ApproveAgreementRequest { name: asked.name.clone(), note: "ok".into() })
        .await
        .unwrap();
    let (ok, out, err) = until_ok(
        &mesh,
        &mesh.token,
        &["query", "merchant.quarters", "--format", "csv"],
        Duration::from_secs(40),
    );
    assert!(ok, "the derived product was built: {err}");
    let expected: Vec<Vec<String>> = spending
        .iter()
        .enumerate()
        .map(|(q, (quarter, total))| {
            let merchant: usize = (1..=20).map(|shop| shop * 1000 + q).sum();
            vec![quarter.clone(), merchant.to_string(), total.to_string()]
        })
        .collect();
    assert_eq!(csv_rows(&out), expected);

    // A breaking change: caught by mesh product check, refused by the registry.
    let broken = SHOPS_PROTO.replace(
        "  // Its owner's phone number.\n  string owner_phone = 4 [(mesh.product.v1.column) = { classification: CLASSIFICATION_SENSITIVE, source_column: \"OWNER_PHONE\" }];\n",
        "",
    );
    let changed = tempfile::tempdir().unwrap();
    std::fs::write(changed.path().join("shops.proto"), &broken).unwrap();
    std::fs::write(changed.path().join("shops.csv"), "SHOP_ID,REGION,OWNER_ID\ns1,Seoul,1\n").unwrap();
    std::fs::write(changed.path().join("shops.product.yaml"), SHOPS_FILE).unwrap();
    let output = mesh
        .mesh()
        .args(["product", "check"])
        .arg(changed.path().join("shops.product.yaml"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("breaking changes against version 1 in force"), "{}", stderr(&output));
    let compiled = mesh_contracts::compile::contract(
        &changed.path().join("shops.proto"),
        "merchant.shops.v1.ShopsService",
    )
    .unwrap();
    let register = RegisterProductRequest {
        product_id: "merchant.shops".into(),
        domain: "merchant".into(),
        service: "merchant.shops.v1.ShopsService".into(),
        endpoint: format!("http://{addr}"),
        descriptor_set: compiled.descriptor_set,
        major_version: 1,
        ..Default::default()
    };
    let refused =
        CatalogServiceClient::new(mesh.channel_as(&mesh.registry, "merchant-domain", &["service:merchant"]))
            .register_product(register)
            .await
            .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("owner_phone"), "{}", refused.message());
}

/// A product file whose SQL does not parse, one that is its own input, two
/// products sharing a table, and SQL returning other columns than its
/// contract's: each refused naming the place.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn derived_sql_that_cannot_serve_the_contract_is_refused_where_it_is_written() {
    let mesh = Mesh::start(50, false).await;
    let dir = tempfile::tempdir().unwrap();
    let files = write_domain(dir.path(), &["2023Q1".to_owned()]);
    let quarters = &files[2];

    std::fs::write(quarters, QUARTERS_FILE.replace("SELECT s.bas_yh", "SELEC s.bas_yh")).unwrap();
    let output = domain_server(&mesh, &files, &dir.path().join("data")).output().unwrap();
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(said.contains("quarters.product.yaml:8:5: source.sql.query: the SQL does not parse"), "{said}");

    // A product that is its own input, and two products sharing a table.
    let refused = |files: &[PathBuf]| {
        let output = domain_server(&mesh, files, &dir.path().join("data")).output().unwrap();
        assert!(!output.status.success());
        stderr(&output)
    };
    std::fs::write(
        quarters,
        QUARTERS_FILE.replace("[merchant.sales, payment.card_spending]", "[merchant.quarters]"),
    )
    .unwrap();
    let said = refused(&files);
    assert!(
        said.contains(
            "quarters.product.yaml:7:14: source.sql.inputs: merchant.quarters cannot be an input of itself"
        ),
        "{said}"
    );
    std::fs::write(quarters, QUARTERS_FILE).unwrap();
    std::fs::write(
        &files[1],
        SALES_FILE.replace("key: [bas_yh, shop_id]", "table: shops\nkey: [bas_yh, shop_id]"),
    )
    .unwrap();
    let said = refused(&files);
    assert!(
        said.contains("keeps its rows in table `shops`, as another product of the domain does: give it `table:` of its own"),
        "{said}"
    );
    std::fs::write(&files[1], SALES_FILE).unwrap();

    let own_only = QUARTERS_FILE
        .replace("[merchant.sales, payment.card_spending]", "[merchant.sales]")
        .replace(
            "      SELECT s.bas_yh AS bas_yh, s.total AS merchant_sales, p.total AS card_spending\n      FROM (SELECT bas_yh, sum(sales) AS total FROM \"merchant.sales\" GROUP BY bas_yh) s\n      JOIN (SELECT bas_yh, sum(tot_use_am) AS total FROM \"payment.card_spending\" GROUP BY bas_yh) p\n        ON s.bas_yh = p.bas_yh\n",
            "      SELECT bas_yh, sum(sales) AS merchant_sales, sum(sales) AS card_total FROM \"merchant.sales\" GROUP BY bas_yh\n",
        );
    assert!(own_only.contains("card_total"));
    std::fs::write(quarters, own_only).unwrap();
    let mut server = domain_server(&mesh, &files, &dir.path().join("data"));
    server
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = mesh_e2e::Running(server.spawn().unwrap());
    let stderr_pipe = child.0.stderr.take().unwrap();
    let said = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr_pipe)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.contains("cannot be built"))
    })
    .await
    .unwrap()
    .unwrap_or_default();
    assert!(
        said.contains("quarters.product.yaml:8:5: source.sql.query: it returns `card_total` that the contract lacks; it returns no `card_spending`"),
        "{said}"
    );
    drop(child);
}
