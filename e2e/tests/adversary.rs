//! The agreement guarantee tried as an attacker would, against a real
//! mesh: a curious analyst asking for a row scope over what it may not see
//! (refused at request time, through the CLI too); an agreement stored with
//! such a scope before scopes were checked (refused at read time, with a
//! message for the owners); thousands of agreements in force, none of which
//! drops out of what the domain enforces.

use crate::common;

use std::time::{Duration, Instant};

use common::Mesh;
use mesh_contracts::catalog::RequestAccessRequest;
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use tonic::Code;

const PRODUCT: &str = "payment.card_spending";

/// Rows `subject` reads of the first quarter, or the refusal.
async fn read(mesh: &Mesh, subject: &str) -> Result<usize, tonic::Status> {
    let mut client =
        CardSpendingServiceClient::new(mesh.channel_as(&mesh.payment_url, subject, &["analyst"]));
    let request = QueryRequest { filter: r#"bas_yh = "2024Q1""#.into(), limit: 5, ..Default::default() };
    let mut stream = client.query(request).await?.into_inner();
    let mut rows = 0;
    while let Some(batch) = stream.message().await? {
        rows += batch.rows.len();
    }
    Ok(rows)
}

/// Waits until `subject` reads (its agreement reached the domain).
async fn until_read(mesh: &Mesh, subject: &str) -> usize {
    let started = Instant::now();
    loop {
        match read(mesh, subject).await {
            Ok(rows) => return rows,
            Err(status) => {
                assert!(started.elapsed() < Duration::from_secs(20), "{subject}: {status:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Stores agreements straight into the registry's database, as one made
/// before row scopes were checked would be, or as thousands of consumers
/// would have made them; each like `template`'s but for `principal` and
/// `row_scope`.
fn store_agreements(mesh: &Mesh, template: i64, agreements: &[(String, &str)]) {
    let db = mesh.dir.path().join("registry").join("registry.sqlite");
    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let tx = conn.transaction().unwrap();
    for (principal, scope) in agreements {
        tx.execute(
            "INSERT INTO agreements (product_id, principal, issuer, purpose, columns, raw_columns, row_scope,
                                     end_time, state, create_time, update_time, decided_by, decision_note)
             SELECT product_id, ?2, issuer, purpose, columns, raw_columns, ?3, end_time, state, create_time,
                    update_time, decided_by, decision_note FROM agreements WHERE id = ?1",
            rusqlite::params![template, principal, scope],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

fn ask(columns: &[&str], scope: &str) -> RequestAccessRequest {
    RequestAccessRequest {
        product: PRODUCT.into(),
        purpose: "adversary test".into(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        row_scope: scope.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scopes_are_checked_and_every_agreement_in_force_is_enforced() {
    let mesh = Mesh::start(400, false).await;

    // The analyst rule's columns, with a scope over a sensitive amount, a real
    // customer number and a quasi-identifier: each refused, naming the column.
    let mut ana = AccessServiceClient::new(mesh.channel_as(&mesh.registry, "ana", &["analyst"]));
    for (scope, column) in [
        ("tot_use_am > 50000000", "tot_use_am"),
        (r#"seq = "0000000001""#, "seq"),
        (r#"bas_yh = "2024Q1" OR crdsl_use_am > 0"#, "crdsl_use_am"),
    ] {
        let refused = ana.request_access(ask(&["bas_yh", "seq"], scope)).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{scope}");
        assert!(
            refused.message().starts_with(&format!(
                "row_scope: compares `{column}`, which the agreement would not deliver in the clear"
            )),
            "{scope}: {}",
            refused.message()
        );
    }
    // The same through the CLI, as the analyst would type it.
    let cli = mesh
        .mesh()
        .env("MESH_TOKEN", mesh.token_as("ana", &["analyst"]))
        .args(["access", "request", PRODUCT, "--purpose", "x", "--columns", "bas_yh,seq"])
        .args(["--scope", "tot_use_am > 50000000"])
        .output()
        .unwrap();
    assert!(!cli.status.success());
    assert!(common::stderr(&cli).contains("compares `tot_use_am`"), "{}", common::stderr(&cli));

    // A scope on what the agreement delivers in the clear is approved by the rule.
    let granted = ana.request_access(ask(&["bas_yh", "seq"], r#"bas_yh = "2024Q1""#)).await.unwrap();
    let template: i64 =
        granted.into_inner().agreement.unwrap().name.trim_start_matches("agreements/").parse().unwrap();
    assert_eq!(until_read(&mesh, "ana").await, 5);

    // Stored before scopes were checked: the domain refuses to read under it.
    store_agreements(&mesh, template, &[("mallory".to_owned(), "tot_use_am > 50000000")]);
    let started = Instant::now();
    let refused = loop {
        let status = read(&mesh, "mallory").await.unwrap_err();
        if status.message().contains("row scope") || started.elapsed() > Duration::from_secs(20) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(
        refused.message(),
        format!(
            "the row scope of agreements/{} compares `tot_use_am`, which the agreement does not deliver in the \
             clear, so nothing can be read under it; ask the product's owners to correct it",
            template + 1
        )
    );

    // 5,000 more consumers: the oldest agreement (ana's) and the newest are all enforced.
    let crowd: Vec<(String, &str)> = (0..5_000).map(|i| (format!("consumer-{i}"), "")).collect();
    store_agreements(&mesh, template, &crowd);
    assert_eq!(until_read(&mesh, "consumer-4999").await, 5);
    assert_eq!(until_read(&mesh, "consumer-0").await, 5);
    assert_eq!(read(&mesh, "ana").await.unwrap(), 5, "the oldest agreement is still enforced");
    assert_eq!(read(&mesh, "consumer-2500").await.unwrap(), 5);
    assert_eq!(read(&mesh, "nobody").await.unwrap_err().code(), Code::PermissionDenied);
}
