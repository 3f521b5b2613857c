//! Agreements enforced by the owning domains, against a real mesh and real
//! tokens, with delivered rows checked against SQLite directly: no
//! agreement (refused with advice; the OPEN product served); withheld
//! columns left out, named, and refused when asked for; pseudonyms equal
//! across customer and payment for one consumer and different for two;
//! filtering on a pseudonym's real value refused; the raw value only with
//! its grant; a row scope no filter can widen; resume tokens of another
//! caller refused; revocation within the bound; the registry down:
//! agreements still enforced, data flowing, nothing new granted.

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::Mesh;
use mesh_contracts::catalog::GetProductRequest;
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{
    AgreementState, ApproveAgreementRequest, ListAgreementsRequest, RequestAccessRequest,
    RevokeAgreementRequest,
};
use mesh_contracts::product::audit_service_client::AuditServiceClient;
use mesh_contracts::product::{ListReadsRequest, QueryRequest, ReadOutcome};
use mesh_contracts::woori::customer::v1::customer_profile_service_client::CustomerProfileServiceClient;
use mesh_contracts::woori::insight::v1::segment_spending_service_client::SegmentSpendingServiceClient;
use mesh_contracts::woori::payment::v1::CardSpending;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_grpc::MeshChannel;
use tonic::Code;

/// How long a domain may take to learn of a new or revoked agreement.
const SYNC_BOUND: Duration = Duration::from_secs(5);

fn payments(mesh: &Mesh, subject: &str, roles: &[&str]) -> CardSpendingServiceClient<MeshChannel> {
    CardSpendingServiceClient::new(mesh.channel_as(&mesh.payment_url, subject, roles))
}

fn access(mesh: &Mesh, subject: &str, roles: &[&str]) -> AccessServiceClient<MeshChannel> {
    AccessServiceClient::new(mesh.channel_as(&mesh.registry, subject, roles))
}

fn ask(product: &str, columns: &[&str]) -> RequestAccessRequest {
    RequestAccessRequest {
        product: product.into(),
        purpose: "governance test".into(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        ..Default::default()
    }
}

/// Every row `request` returns, or its refusal.
async fn rows(
    client: &mut CardSpendingServiceClient<MeshChannel>,
    request: QueryRequest,
) -> Result<Vec<CardSpending>, tonic::Status> {
    let mut stream = client.query(request).await?.into_inner();
    let mut rows = Vec::new();
    while let Some(batch) = stream.message().await? {
        rows.extend(batch.rows);
    }
    Ok(rows)
}

/// Waits until `request` is served to `client` (a new agreement reaching
/// the domain); how long that took.
async fn until_served(
    client: &mut CardSpendingServiceClient<MeshChannel>,
    request: &QueryRequest,
) -> Duration {
    let started = Instant::now();
    loop {
        match rows(client, request.clone()).await {
            Ok(_) => return started.elapsed(),
            Err(status) => {
                assert!(started.elapsed() < SYNC_BOUND, "not served within {SYNC_BOUND:?}: {status:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn sqlite(mesh: &Mesh, sql: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(mesh.payment_db()).unwrap();
    let mut statement = conn.prepare(sql).unwrap();
    statement.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_domains_enforce_each_agreement() {
    let mesh = Mesh::start(400, true).await;
    let q1 = QueryRequest { filter: r#"bas_yh = "2024Q1""#.into(), ..Default::default() };

    // No agreement: refused with advice; the OPEN product is served.
    let mut ana = payments(&mesh, "ana", &["analyst"]);
    let refused = rows(&mut ana, q1.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("`ana` has no agreement in force for payment.card_spending"),
        "{refused:?}"
    );
    assert!(refused.message().contains("mesh access request payment.card_spending"), "{refused:?}");
    let insight_url = mesh.insight_url.clone().unwrap();
    let mut open = SegmentSpendingServiceClient::new(mesh.channel_as(&insight_url, "ana", &["analyst"]));
    let segments = open.query(QueryRequest::default()).await.unwrap().into_inner().message().await.unwrap();
    assert!(segments.is_some_and(|b| !b.rows.is_empty()), "insight is open to any signed-in caller");

    // The shipped rule grants the non-sensitive columns at once.
    let granted = access(&mesh, "ana", &["analyst"])
        .request_access(ask("payment.card_spending", &["bas_yh", "seq"]))
        .await
        .unwrap()
        .into_inner()
        .agreement
        .unwrap();
    assert_eq!(granted.state(), AgreementState::Approved);
    until_served(&mut ana, &q1).await;

    // Withheld columns are left out and named; asking for one is refused.
    let response = ana.query(q1.clone()).await.unwrap();
    let withheld = response.metadata().get("mesh-withheld-columns").unwrap().to_str().unwrap().to_owned();
    assert!(withheld.split(',').any(|c| c == "tot_use_am"), "{withheld}");
    let got = rows(&mut ana, q1.clone()).await.unwrap();
    assert_eq!(got.len(), sqlite(&mesh, "SELECT seq FROM card_spending WHERE bas_yh = '2024Q1'").len());
    assert!(got.iter().all(|r| r.tot_use_am == 0 && r.bas_yh == "2024Q1"), "amounts are withheld");
    let masked = QueryRequest {
        read_mask: Some(prost_types::FieldMask { paths: vec!["seq".into(), "tot_use_am".into()] }),
        ..q1.clone()
    };
    let status = rows(&mut ana, masked).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "read_mask names `tot_use_am` not in your agreement for payment.card_spending; ask for it with `mesh \
         access request payment.card_spending --purpose \"...\" --columns tot_use_am`"
    );
    for request in [
        QueryRequest { filter: "tot_use_am > 0".into(), ..Default::default() },
        QueryRequest { order_by: "tot_use_am desc".into(), ..Default::default() },
    ] {
        assert_eq!(rows(&mut ana, request).await.unwrap_err().code(), Code::PermissionDenied);
    }

    // Identifiers are pseudonyms: not the real ones, and no filter on their real value.
    let real: BTreeSet<String> =
        sqlite(&mesh, "SELECT seq FROM card_spending WHERE bas_yh = '2024Q1'").into_iter().collect();
    let ana_payment: BTreeSet<String> = got.iter().map(|r| r.seq.clone()).collect();
    assert_eq!(ana_payment.len(), real.len());
    assert!(ana_payment.is_disjoint(&real));
    assert!(ana_payment.iter().all(|p| p.len() == 32));
    let by_real = QueryRequest { filter: r#"seq = "0000000001""#.into(), ..Default::default() };
    let status = rows(&mut ana, by_real).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("`seq`, which you receive as a pseudonym"), "{}", status.message());

    // The same consumer's pseudonyms join across products; another consumer's differ.
    access(&mesh, "ana", &["analyst"])
        .request_access(ask("customer.profiles", &["bas_yh", "seq"]))
        .await
        .unwrap();
    let mut ana_customers =
        CustomerProfileServiceClient::new(mesh.channel_as(&mesh.customer_url, "ana", &["analyst"]));
    let started = Instant::now();
    let ana_customer: BTreeSet<String> = loop {
        match ana_customers.query(q1.clone()).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                let mut seen = BTreeSet::new();
                while let Some(batch) = stream.message().await.unwrap() {
                    seen.extend(batch.rows.into_iter().map(|r| r.seq));
                }
                break seen;
            }
            Err(status) => {
                assert!(started.elapsed() < SYNC_BOUND, "{status:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(ana_customer, ana_payment, "one consumer's pseudonyms are the same in both products");
    // A quasi-identifier (age) is not in ana's customer agreement.
    let age = QueryRequest {
        read_mask: Some(prost_types::FieldMask { paths: vec!["seq".into(), "age".into()] }),
        ..q1.clone()
    };
    let status = ana_customers.query(age).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().starts_with("read_mask names `age` not in your agreement"),
        "{}",
        status.message()
    );
    access(&mesh, "bob", &["analyst"])
        .request_access(ask("payment.card_spending", &["bas_yh", "seq"]))
        .await
        .unwrap();
    let mut bob = payments(&mesh, "bob", &["analyst"]);
    until_served(&mut bob, &q1).await;
    let bob_payment: BTreeSet<String> =
        rows(&mut bob, q1.clone()).await.unwrap().into_iter().map(|r| r.seq).collect();
    assert!(bob_payment.is_disjoint(&ana_payment), "two consumers' extracts cannot be linked");

    // A resume token is bound to its caller.
    let mut stream = ana.query(QueryRequest { limit: 5, ..q1.clone() }).await.unwrap().into_inner();
    let token = stream.message().await.unwrap().unwrap().resume_token;
    let stolen = QueryRequest { limit: 5, resume_token: token, ..q1.clone() };
    assert_eq!(rows(&mut bob, stolen).await.unwrap_err().code(), Code::InvalidArgument);

    // Sensitive columns, raw identifiers and a row scope: an owner approves.
    let mut owner = access(&mesh, "lee", &["owner:payment"]);
    let scoped = RequestAccessRequest {
        raw_columns: vec!["seq".into()],
        row_scope: r#"bas_yh = "2024Q1""#.into(),
        ..ask("payment.card_spending", &["bas_yh", "seq", "tot_use_am"])
    };
    let pending = access(&mesh, "cho", &["analyst"]).request_access(scoped).await.unwrap().into_inner();
    let pending = pending.agreement.unwrap();
    assert_eq!(pending.state(), AgreementState::Pending);
    owner
        .approve_agreement(ApproveAgreementRequest { name: pending.name.clone(), note: "ok".into() })
        .await
        .unwrap();
    let mut cho = payments(&mesh, "cho", &["analyst"]);
    until_served(&mut cho, &QueryRequest::default()).await;
    // No filter widens the scope: ORs, NOTs and parentheses all stay inside it.
    for filter in [
        r#"bas_yh = "2024Q2" OR tot_use_am >= 0"#,
        r#"NOT (bas_yh = "2024Q1")"#,
        r#"(bas_yh != "x") OR (NOT tot_use_am < 0)"#,
    ] {
        let got = rows(
            &mut cho,
            QueryRequest { filter: filter.into(), order_by: "tot_use_am desc".into(), ..Default::default() },
        )
        .await
        .unwrap();
        assert!(got.iter().all(|r| r.bas_yh == "2024Q1"), "{filter} widened the scope");
    }
    let everything = rows(&mut cho, QueryRequest::default()).await.unwrap();
    let raw: BTreeSet<String> = everything.iter().map(|r| r.seq.clone()).collect();
    assert_eq!(raw, real, "the raw identifiers, and only the scope's rows");
    let totals: i64 = everything.iter().map(|r| r.tot_use_am).sum();
    let expected: i64 =
        sqlite(&mesh, "SELECT CAST(sum(tot_use_am) AS TEXT) FROM card_spending WHERE bas_yh = '2024Q1'")[0]
            .parse()
            .unwrap();
    assert_eq!(totals, expected);

    // Revocation takes effect within the bound.
    owner
        .revoke_agreement(RevokeAgreementRequest { name: pending.name.clone(), note: "project ended".into() })
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        match rows(&mut cho, QueryRequest::default()).await {
            Err(status) if status.code() == Code::PermissionDenied => break,
            _ => {
                assert!(
                    started.elapsed() < SYNC_BOUND,
                    "the revocation was not enforced within {SYNC_BOUND:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    eprintln!("revocation enforced after {:?}", started.elapsed());

    // An agreement ends on its date: the domain stops serving it by itself.
    let ends = std::time::SystemTime::now() + SYNC_BOUND + Duration::from_secs(1);
    let soon = RequestAccessRequest {
        end_time: Some(prost_types::Timestamp::from(ends)),
        ..ask("payment.card_spending", &["bas_yh"])
    };
    access(&mesh, "eve", &["analyst"]).request_access(soon).await.unwrap();
    let mut eve = payments(&mesh, "eve", &["analyst"]);
    until_served(&mut eve, &q1).await;
    tokio::time::sleep(ends.duration_since(std::time::SystemTime::now()).unwrap_or_default()).await;
    let expired = rows(&mut eve, q1.clone()).await.unwrap_err();
    assert_eq!(expired.code(), Code::PermissionDenied, "an expired agreement grants nothing");

    // Insight reads its sources under its own agreements, granted by the
    // sources' rule: the columns its SQL names, customer numbers as its
    // pseudonyms (they agree across the two sources, so the join holds).
    let listed = owner
        .list_agreements(ListAgreementsRequest {
            product: "payment.card_spending".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .agreements;
    let insight = listed.iter().find(|a| a.principal == "insight-domain").expect("insight's agreement");
    assert_eq!((insight.state(), insight.decided_by.as_str()), (AgreementState::Approved, "policy"));
    assert!(insight.raw_columns.is_empty(), "{insight:?}");
    let mut asked = vec!["bas_yh", "seq", "tot_use_am"];
    asked.extend(["interior_am", "insuhos_am", "offedu_am", "trvlec_am", "fsbz_am"]);
    asked.extend(["svcarc_am", "dist_am", "plsanit_am", "clothgds_am", "auto_am"]);
    assert_eq!(insight.columns, asked, "only what its SQL reads");

    // A request that does not decode is refused, and recorded too.
    let mut raw = tonic::client::Grpc::new(mesh.channel_as(&mesh.payment_url, "mallory", &["analyst"]));
    raw.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/woori.payment.v1.CardSpendingService/Query");
    let garbage = tonic::Request::new(bytes::Bytes::from_static(&[0xff, 0xff, 0xff]));
    let refused = raw.server_streaming(garbage, path, mesh_grpc::codec::RawCodec).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);

    // Every read is on record at the domain, for its owners only.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let audit = |subject: &str, roles: &[&str]| {
        AuditServiceClient::new(mesh.channel_as(&mesh.payment_url, subject, roles))
    };
    let request =
        ListReadsRequest { product: "payment.card_spending".into(), page_size: 1000, ..Default::default() };
    let reads =
        audit("lee", &["owner:payment"]).list_reads(request.clone()).await.unwrap().into_inner().reads;
    let of = |who: &str, outcome: ReadOutcome| {
        reads.iter().filter(|r| r.principal == who && r.outcome() == outcome).count()
    };
    assert!(of("ana", ReadOutcome::Refused) >= 4, "no agreement, a withheld column, a filter, an order");
    assert!(of("ana", ReadOutcome::Served) >= 2);
    assert!(of("cho", ReadOutcome::Served) >= 4 && of("cho", ReadOutcome::Refused) >= 1);
    let served = reads.iter().find(|r| r.principal == "ana" && r.outcome() == ReadOutcome::Served).unwrap();
    assert!(served.withheld_columns.iter().any(|c| c == "tot_use_am"), "{served:?}");
    assert_eq!(served.delivered_columns, ["bas_yh", "seq"]);
    assert_eq!(served.agreement, granted.name);
    assert_eq!(served.purpose, "governance test");
    let cho_read = reads.iter().find(|r| r.principal == "cho" && r.outcome() == ReadOutcome::Served).unwrap();
    assert_eq!(cho_read.rows as usize, real.len(), "rows recorded as delivered");
    assert!(cho_read.bytes > 0);
    assert_eq!(of("mallory", ReadOutcome::Refused), 1, "the undecodable request is on record");
    let elsewhere = ListReadsRequest { product: "customer.profiles".into(), ..Default::default() };
    let elsewhere = audit("lee", &["owner:payment"]).list_reads(elsewhere).await.unwrap_err();
    assert_eq!(
        (elsewhere.code(), elsewhere.message()),
        (
            Code::NotFound,
            "this domain serves no product `customer.profiles`; it serves payment.card_spending"
        )
    );
    let denied = audit("ana", &["analyst"]).list_reads(request).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "`ana` may not read who read payment.card_spending: only its owners may, which needs the role \
         `owner:payment` or `admin` (mesh whoami shows your roles)"
    );

    // The domain reports who really reads the product with its lease
    // renewals; the catalog and `mesh lineage` show them.
    let mut catalog = CatalogServiceClient::new(mesh.channel_as(&mesh.registry, "lee", &["owner:payment"]));
    let started = Instant::now();
    let consumers = loop {
        let request = GetProductRequest { name: "payment.card_spending".into(), ..Default::default() };
        let product = catalog.get_product(request).await.unwrap().into_inner().product.unwrap();
        let consumers = product.data.map(|d| d.consumers).unwrap_or_default();
        if consumers.iter().any(|c| c.principal == "ana") && consumers.iter().any(|c| c.principal == "cho") {
            break consumers;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "consumers not reported: {consumers:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let cho_reads = consumers.iter().find(|c| c.principal == "cho").unwrap();
    assert!(cho_reads.reads >= 4 && cho_reads.rows >= real.len() as i64, "{cho_reads:?}");
    let lineage = mesh.mesh().args(["lineage", "payment.card_spending"]).output().unwrap();
    let text = common::stdout(&lineage);
    assert!(text.contains("none: a source-aligned product"), "{text}");
    assert!(text.contains("product insight.segment_spending"), "{text}");
    assert!(text.contains("read by ana (") && text.contains("read by cho ("), "{text}");
    let lineage = mesh.mesh().args(["lineage", "insight.segment_spending"]).output().unwrap();
    let text = common::stdout(&lineage);
    assert!(
        text.contains("  customer.profiles [serving]") && text.contains("  payment.card_spending [serving]"),
        "{text}"
    );

    // The registry down: agreements still enforced, data flowing, nothing new granted.
    mesh.stop_registry().await;
    assert!(!rows(&mut ana, q1.clone()).await.unwrap().is_empty(), "data flows on existing agreements");
    assert_eq!(rows(&mut cho, QueryRequest::default()).await.unwrap_err().code(), Code::PermissionDenied);
    let offline =
        access(&mesh, "dan", &["analyst"]).request_access(ask("payment.card_spending", &["bas_yh"])).await;
    assert_eq!(offline.unwrap_err().code(), Code::Unavailable);
}
