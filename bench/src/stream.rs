//! Streaming throughput: the in-process scan (ceiling), a typed Rust client,
//! and `mesh query --format csv` (dynamic decoding).

use crate::Run;
use crate::report::{Figure, per_second};
use mesh_grpc::Credentials;

use crate::mesh::connect;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, ensure};
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_runtime::Product;
use mesh_runtime::output::RowFormat;

use crate::mesh::sibling_binary;

/// Rows per second of a run of `rows` rows taking `seconds`.
pub(crate) fn rate(rows: u64, seconds: f64) -> f64 {
    rows as f64 / seconds.max(1e-9)
}

/// The ceiling: the domain's own scan and row encoding, drained in process.
pub(crate) async fn in_process_scan(product: &Arc<Product>) -> Result<(u64, f64)> {
    let started = Instant::now();
    let admission = mesh_runtime::Admission::default();
    let grant = mesh_runtime::Grant::full(&product.schema);
    let reader = mesh_runtime::product::Reader {
        caller: "bench",
        peer: None,
        admission: &admission,
        audit: Default::default(),
    };
    let mut stream =
        product.query(&QueryRequest::default(), RowFormat::Protobuf, &grant, reader, None).await?.rows;
    let mut bytes = 0u64;
    while let Some(batch) = tokio_stream::StreamExt::next(&mut stream).await {
        bytes += batch?.len() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    ensure!(bytes > 0, "the scan returned nothing");
    Ok((product.data_status()?.row_count as u64, seconds))
}

/// A typed client (generated Rust types) streaming every row.
pub(crate) async fn typed_client(url: &str, credentials: &Credentials) -> Result<(u64, f64)> {
    let mut client =
        CardSpendingServiceClient::new(connect(url, credentials).await?).max_decoding_message_size(64 << 20);
    let started = Instant::now();
    let mut stream = client.query(QueryRequest::default()).await?.into_inner();
    let mut rows = 0u64;
    while let Some(batch) = stream.message().await? {
        rows += batch.rows.len() as u64;
    }
    Ok((rows, started.elapsed().as_secs_f64()))
}

/// `mesh query payment.card_spending --format csv > /dev/null`.
pub(crate) fn cli_csv(registry: &str, token: &str, rows: u64) -> Result<(u64, f64)> {
    let mesh = sibling_binary("mesh")?;
    let cache = std::env::temp_dir().join(format!("mesh-bench-cache-{}", std::process::id()));
    let started = Instant::now();
    let status = std::process::Command::new(mesh)
        .args(["--registry", registry, "query", "payment.card_spending", "--format", "csv"])
        .env("MESH_CACHE_DIR", &cache)
        .env("MESH_TOKEN", token)
        .stdout(Stdio::null())
        .status()?;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(status.success(), "mesh query failed");
    Ok((rows, seconds))
}

/// The figures of this group (`--only stream`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let (rows, ceiling_s) = in_process_scan(&run.mesh.payment).await?;
    let (typed_rows, typed_s) = typed_client(&run.mesh.payment_url, &run.mesh.at("payment")?).await?;
    anyhow::ensure!(typed_rows == rows, "typed client got {typed_rows} of {rows} rows");
    let (ceiling, typed) = (rate(rows, ceiling_s), rate(typed_rows, typed_s));
    figures.push(Figure {
        name: "full stream of payment.card_spending, typed Rust client",
        measured: per_second(typed),
        baseline: per_second(ceiling),
        ratio: Some(typed / ceiling),
        target: ">= 0.75",
        met: Some(typed / ceiling >= 0.75),
    });
    let (_, cli_s) = cli_csv(&run.mesh.registry, &run.mesh.token, rows)?;
    let cli = rate(rows, cli_s);
    figures.push(Figure {
        name: "mesh query --format csv > /dev/null (dynamic decoding)",
        measured: per_second(cli),
        baseline: per_second(typed),
        ratio: Some(cli / typed),
        target: ">= 0.6",
        met: Some(cli / typed >= 0.6),
    });
    Ok(figures)
}
