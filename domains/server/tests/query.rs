//! Queries against a real payment domain, on each storage backend: every
//! filter operator checked against rows read independently from its
//! database, prefix matches with the pattern characters of SQL, projection,
//! ordering, streaming, resume and cancellation.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{filter, query_all, start_on};
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::CardSpending;

/// A filter and the predicate it must match, checked in Rust.
type Case = (&'static str, Box<dyn Fn(&CardSpending) -> bool>);

fn keys(rows: &[CardSpending]) -> BTreeSet<(String, String)> {
    rows.iter().map(|r| (r.bas_yh.clone(), r.seq.clone())).collect()
}

mesh_postgres::on_both_backends!(
    every_filter_operator_matches_an_independent_check,
    projection_ordering_and_limit,
    a_large_result_streams_in_many_batches_and_resumes_exactly_once,
    a_cancelled_stream_stops_the_scan,
);

async fn every_filter_operator_matches_an_independent_check() {
    let backend = common::backend();
    let mut domain = start_on(backend, 600, &common::nowhere()).await;
    let all = domain.stored_rows().await;
    assert_eq!(all.len(), 1200);
    let cases: Vec<Case> = vec![
        ("tot_use_am > 3000000", Box::new(|r| r.tot_use_am > 3_000_000)),
        ("tot_use_am >= 3000000", Box::new(|r| r.tot_use_am >= 3_000_000)),
        ("tot_use_am < 500000", Box::new(|r| r.tot_use_am < 500_000)),
        ("tot_use_am <= 0", Box::new(|r| r.tot_use_am <= 0)),
        ("bas_yh = \"2024Q2\"", Box::new(|r| r.bas_yh == "2024Q2")),
        ("bas_yh != '2024Q2'", Box::new(|r| r.bas_yh != "2024Q2")),
        (
            "seq IN (\"0000000003\", \"0000000010\", \"0000000599\")",
            Box::new(|r| ["0000000003", "0000000010", "0000000599"].contains(&r.seq.as_str())),
        ),
        ("seq = \"000000001*\"", Box::new(|r| r.seq.starts_with("000000001"))),
        ("seq != \"00000000*\"", Box::new(|r| !r.seq.starts_with("00000000"))),
        // The pattern characters of SQL's LIKE match themselves only.
        ("seq = \"0000000_*\"", Box::new(|r| r.seq.starts_with("0000000_"))),
        ("seq = \"%*\"", Box::new(|r| r.seq.starts_with('%'))),
        ("seq != \"000000000\\\\*\"", Box::new(|r| !r.seq.starts_with("000000000\\"))),
        (
            "tot_use_am > 1000000 AND bas_yh = \"2024Q1\"",
            Box::new(|r| r.tot_use_am > 1_000_000 && r.bas_yh == "2024Q1"),
        ),
        (
            "auto_am > 500000 OR cnf_use_am > 2000000",
            Box::new(|r| r.auto_am > 500_000 || r.cnf_use_am > 2_000_000),
        ),
        ("NOT bas_yh = \"2024Q1\"", Box::new(|r| r.bas_yh != "2024Q1")),
        (
            "(auto_am > 0 OR tot_use_am = 0) AND NOT (bas_yh = \"2024Q2\" AND crdsl_use_am < 100000)",
            Box::new(|r| {
                (r.auto_am > 0 || r.tot_use_am == 0) && !(r.bas_yh == "2024Q2" && r.crdsl_use_am < 100_000)
            }),
        ),
        ("crdsl_use_am > cnf_use_am", Box::new(|_| unreachable!())),
    ];
    for (expr, expected) in cases {
        if expr == "crdsl_use_am > cnf_use_am" {
            // Comparing two fields is not part of the language: a clear error.
            let status = query_all(&mut domain.client, filter(expr)).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(
                status.message().contains("expected a value but found `cnf_use_am`"),
                "{}",
                status.message()
            );
            continue;
        }
        let (rows, _) = query_all(&mut domain.client, filter(expr)).await.unwrap();
        let want: Vec<CardSpending> = all.iter().filter(|r| expected(r)).cloned().collect();
        assert!(
            !want.is_empty() || expr == "tot_use_am <= 0" || expr.contains('_') || expr.contains('%'),
            "case `{expr}` selects nothing; make it meaningful"
        );
        assert_eq!(keys(&rows), keys(&want), "filter `{expr}`");
        assert_eq!(rows.len(), want.len(), "filter `{expr}` returned duplicates");
    }
}

async fn projection_ordering_and_limit() {
    let backend = common::backend();
    let mut domain = start_on(backend, 300, &common::nowhere()).await;
    let request = QueryRequest {
        read_mask: Some(prost_types::FieldMask { paths: vec!["seq".into(), "tot_use_am".into()] }),
        order_by: "tot_use_am desc, seq".into(),
        limit: 25,
        filter: "bas_yh = \"2024Q1\"".into(),
        ..Default::default()
    };
    let (rows, _) = query_all(&mut domain.client, request).await.unwrap();
    assert_eq!(rows.len(), 25);
    // Only the projected columns are sent.
    assert!(rows.iter().all(|r| r.bas_yh.is_empty() && r.crdsl_use_am == 0 && r.auto_am == 0));
    let mut expected: Vec<CardSpending> =
        domain.stored_rows().await.into_iter().filter(|r| r.bas_yh == "2024Q1").collect();
    expected.sort_by(|a, b| b.tot_use_am.cmp(&a.tot_use_am).then(a.seq.cmp(&b.seq)));
    let got: Vec<(String, i64)> = rows.iter().map(|r| (r.seq.clone(), r.tot_use_am)).collect();
    let want: Vec<(String, i64)> = expected.iter().take(25).map(|r| (r.seq.clone(), r.tot_use_am)).collect();
    assert_eq!(got, want);
}

async fn a_large_result_streams_in_many_batches_and_resumes_exactly_once() {
    let backend = common::backend();
    let mut domain = start_on(backend, 4000, &common::nowhere()).await;
    let all = domain.stored_rows().await;
    let (rows, batches) = query_all(&mut domain.client, QueryRequest::default()).await.unwrap();
    assert_eq!(rows.len(), all.len());
    assert!(batches > 3, "8000 rows came in {batches} batches");
    assert_eq!(keys(&rows), keys(&all));

    // Read two batches, drop the stream, resume from the second batch's token.
    for order_by in ["", "tot_use_am desc", "cnf_use_am, seq desc"] {
        let request = QueryRequest { order_by: order_by.into(), ..Default::default() };
        let mut stream = domain.client.query(request.clone()).await.unwrap().into_inner();
        let mut seen: Vec<CardSpending> = Vec::new();
        let mut token = String::new();
        for _ in 0..2 {
            let batch = stream.message().await.unwrap().unwrap();
            seen.extend(batch.rows);
            token = batch.resume_token;
        }
        drop(stream);
        let resumed = QueryRequest { resume_token: token, ..request };
        let (rest, _) = query_all(&mut domain.client, resumed).await.unwrap();
        seen.extend(rest);
        assert_eq!(seen.len(), all.len(), "order `{order_by}`: rows delivered more than once or lost");
        assert_eq!(keys(&seen), keys(&all), "order `{order_by}`");
    }

    // A limit counts rows across the resume.
    let limited = QueryRequest { limit: 5000, ..Default::default() };
    let mut stream = domain.client.query(limited.clone()).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    drop(stream);
    let (rest, _) =
        query_all(&mut domain.client, QueryRequest { resume_token: first.resume_token, ..limited })
            .await
            .unwrap();
    assert_eq!(first.rows.len() + rest.len(), 5000);
}

async fn a_cancelled_stream_stops_the_scan() {
    let backend = common::backend();
    let mut domain = start_on(backend, 6000, &common::nowhere()).await;
    let mut stream = domain.client.query(QueryRequest::default()).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(!first.rows.is_empty());
    assert_eq!(domain.product.active_scans(), 1, "the scan waits on the slow reader");
    drop(stream);
    let started = std::time::Instant::now();
    while domain.product.active_scans() > 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "scan still running after the client left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The domain serves on.
    let (rows, _) =
        query_all(&mut domain.client, QueryRequest { limit: 3, ..Default::default() }).await.unwrap();
    assert_eq!(rows.len(), 3);
}
