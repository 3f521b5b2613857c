//! The CLI facing hostile servers and data: text that would drive the
//! terminal is shown escaped, and a domain that goes silent ends the query
//! with a clear error instead of a hang.

use crate::common;

use std::pin::Pin;

use common::{Mesh, stderr, stdout};
use mesh_contracts::product::{DescribeRequest, DescribeResponse, QueryRequest};
use mesh_contracts::woori::payment::v1::QueryResponse;
use mesh_contracts::woori::payment::v1::card_spending_service_server::{
    CardSpendingService, CardSpendingServiceServer,
};
use tonic::{Request, Response, Status};

/// A payment domain that accepts a query and then sends nothing, ever.
struct Silent;

#[tonic::async_trait]
impl CardSpendingService for Silent {
    type QueryStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<QueryResponse, Status>> + Send>>;

    async fn query(&self, _: Request<QueryRequest>) -> Result<Response<Self::QueryStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }

    async fn describe(&self, _: Request<DescribeRequest>) -> Result<Response<DescribeResponse>, Status> {
        Err(Status::unimplemented("silent"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_domain_that_goes_silent_ends_the_query_with_an_error() {
    let mesh = Mesh::start(50, false).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(CardSpendingServiceServer::new(Silent))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let started = std::time::Instant::now();
    let output = mesh
        .mesh()
        .args([
            "query",
            "payment.card_spending",
            "--format",
            "csv",
            "--idle-timeout",
            "1s",
            "--endpoint",
            &silent,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output).trim(),
        format!(
            "error: {silent} sent nothing for 1s (--idle-timeout) after 0 rows; the domain may be overloaded or \
             stalled: retry later, or allow longer with --idle-timeout"
        )
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn text_that_would_drive_the_terminal_is_shown_escaped() {
    let mesh = Mesh::start(50, false).await;
    // A row whose text holds an OSC title sequence, a screen clear and a
    // right-to-left override.
    let hostile = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{202e}gnp.exe";
    let conn = rusqlite::Connection::open(mesh.payment_db()).unwrap();
    conn.execute(
        "UPDATE card_spending SET seq = ?1 WHERE rowid = (SELECT min(rowid) FROM card_spending)",
        [hostile],
    )
    .unwrap();
    let filter = format!("seq = \"{hostile}\"");
    let output = mesh
        .mesh()
        .args(["query", "payment.card_spending", "--select", "seq", "--format", "table", "--filter", &filter])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let shown = stdout(&output);
    assert!(!shown.contains('\u{1b}') && !shown.contains('\u{202e}'), "{shown:?}");
    assert!(shown.contains("\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{202e}gnp.exe"), "{shown}");
    // CSV into a file keeps the data as it is.
    let csv = mesh
        .mesh()
        .args(["query", "payment.card_spending", "--select", "seq", "--format", "csv", "--filter", &filter])
        .output()
        .unwrap();
    assert_eq!(stdout(&csv).lines().nth(1), Some(hostile));

    // A server message echoing hostile input is escaped too.
    let refused =
        mesh.mesh().args(["query", "payment.card_spending", "--filter", "\u{1b}[31m = 1"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(!message.contains('\u{1b}'), "{message:?}");
    assert!(message.contains("\\u{1b}"), "{message}");
}
