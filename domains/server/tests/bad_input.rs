//! Bad queries get INVALID_ARGUMENT naming the problem; none changes data.

use crate::common;

use common::{query_all, rows_in_file, start};
use mesh_contracts::product::QueryRequest;
use mesh_grpc::bad_request::field_problem;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_are_refused_precisely() {
    let mut domain = start(200, &common::nowhere()).await;
    let before = rows_in_file(&domain.db);
    let mask = |paths: &[&str]| {
        Some(prost_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() })
    };
    let cases: Vec<(QueryRequest, &str)> = vec![
        (
            common::filter("tot_use = 5"),
            "filter: unknown field `tot_use` at column 1; valid fields: bas_yh, seq, tot_use_am",
        ),
        (
            common::filter("tot_use_am > \"lots\""),
            "filter: field `tot_use_am` is an integer; compare it with a number",
        ),
        (
            common::filter("bas_yh = 2024"),
            "filter: field `bas_yh` is a string; quote the value: bas_yh = \"2024\"",
        ),
        (common::filter("tot_use_am >"), "filter: the filter ends early; expected a value at column 13"),
        (common::filter("(bas_yh = \"2024Q1\""), "expected `)`"),
        (
            common::filter("bas_yh = \"2024Q1\" seq = \"1\""),
            "unexpected `seq`; expected AND, OR or the end at column 19",
        ),
        (common::filter("bas_yh = \"open"), "unterminated string"),
        (common::filter("bas_yh ~ \"x\""), "unexpected character `~` at column 8"),
        (common::filter("tot_use_am > 5*"), "unexpected character `*` at column 15"),
        (common::filter("tot_use_am > 5x"), "`5x` is not a number at column 14"),
        (common::filter("bas_yh > \"2024*\""), "a prefix match (trailing *) works only with = or !="),
        (common::filter(&"(".repeat(200)), "nesting deeper than 64"),
        (
            common::filter(&vec!["seq=\"\""; 1500].join(" or ")),
            "filter: more than 256 comparisons; compare one field with many values as `field IN (...)`, or split the query at column 2561",
        ),
        (QueryRequest { limit: -1, ..Default::default() }, "limit: -1 is negative"),
        (
            QueryRequest { read_mask: mask(&["seq", "nope"]), ..Default::default() },
            "read_mask: unknown field `nope`; valid fields: bas_yh",
        ),
        (
            QueryRequest { order_by: "tot_use_am sideways".into(), ..Default::default() },
            "order_by: `sideways` after `tot_use_am` is not a direction",
        ),
        (QueryRequest { order_by: "nope".into(), ..Default::default() }, "order_by: unknown field `nope`"),
        (QueryRequest { order_by: "seq, seq".into(), ..Default::default() }, "order_by: `seq` appears twice"),
        (
            QueryRequest { resume_token: "not-a-token".into(), ..Default::default() },
            "resume_token: the token is not one this domain issued",
        ),
    ];
    for (request, needle) in cases {
        let status = query_all(&mut domain.client, request.clone()).await.expect_err(needle);
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}: {}", status.message());
        assert!(status.message().contains(needle), "`{needle}` missing from: {}", status.message());
        // The field and the place are structured details too, so a client
        // marks the place without reading the English.
        let problem = field_problem(&status).expect("a google.rpc.BadRequest detail");
        assert!(status.message().starts_with(&format!("{}: ", problem.field)), "{}", status.message());
        let stated = status.message().split("at column ").nth(1).map(|rest| {
            rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<usize>().unwrap()
        });
        assert_eq!(problem.column, stated, "{}", status.message());
    }

    // A real token, altered by one character or reused with another query.
    let mut stream =
        domain.client.query(QueryRequest { limit: 10, ..Default::default() }).await.unwrap().into_inner();
    let token = stream.message().await.unwrap().unwrap().resume_token;
    drop(stream);
    let mut altered = token.clone().into_bytes();
    altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for (request, needle) in [
        (
            QueryRequest { limit: 10, resume_token: altered, ..Default::default() },
            "not one this domain issued",
        ),
        (
            QueryRequest { limit: 11, resume_token: token, ..Default::default() },
            "belongs to a query with another",
        ),
    ] {
        let status = query_all(&mut domain.client, request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(needle), "{}", status.message());
    }

    // An injection attempt is just a value.
    for expr in [
        "seq = \"x' OR 1=1 --\"",
        "seq = \"x\\\" OR 1=1 --\"",
        "bas_yh = \"2024Q1'; DROP TABLE card_spending; --\"",
    ] {
        let (rows, _) = query_all(&mut domain.client, common::filter(expr)).await.unwrap();
        assert!(rows.is_empty(), "`{expr}` matched rows");
    }
    assert_eq!(rows_in_file(&domain.db), before, "bad input changed the data");
}
