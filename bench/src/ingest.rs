//! Ingestion into the payment domain against a bare bulk insert of the same
//! parsed rows, and the insight rebuild against its two source streams.

use crate::Run;
use crate::latency::percentiles;
use crate::report::{Figure, per_second};
use crate::stream::rate;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::customer::v1::customer_profile_service_client::CustomerProfileServiceClient;
use mesh_contracts::woori::insight::v1::segment_spending_service_client::SegmentSpendingServiceClient;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_runtime::ingest::{CsvSource, RecordSource};
use mesh_runtime::{DomainStore, Product};
use woori_data::Generator;
use woori_data::layout::BROAD_COLUMNS;
use woori_data::shipped::Shipped;

/// The shipped product files with the customer-spending file at the
/// bench's scale, in `dir` (as the bench's mesh wrote them; made when
/// missing or of another scale).
pub(crate) fn shipped(dir: &Path, generator: Generator) -> Result<Shipped> {
    Ok(woori_data::shipped::write(dir, &generator)?)
}

/// Loads the shipped payment product's file into `store` as the domain
/// server does (parse, check, index, quality rules of its product file):
/// rows and seconds.
pub(crate) fn payment_load(store: DomainStore, shipped: &Shipped) -> Result<(u64, f64)> {
    let declared = mesh_product_file::declare(&shipped.payment).map_err(|m| anyhow::anyhow!("{m}"))?;
    let published = mesh_domain_server::published::Published::open(declared, store)?;
    let started = Instant::now();
    let summary = mesh_domain_server::load::load_source(&published, true, mesh_runtime::ingest::Shrink::Any)?
        .context("the file was loaded")?;
    Ok((summary.rows as u64, started.elapsed().as_secs_f64()))
}

/// Loads the shipped payment file into a fresh payment database in `dir`:
/// rows and seconds.
pub(crate) fn payment_ingest(dir: &Path, shipped: &Shipped) -> Result<(u64, f64)> {
    payment_load(DomainStore::open(&dir.join("payment").join("payment.sqlite"))?, shipped)
}

/// The baseline: the same rows of `file`, parsed beforehand (not timed),
/// inserted with a bare prepared statement in one transaction into a table
/// without any index (no checks, indexes or quality).
pub(crate) fn bare_insert(dir: &Path, file: &Path) -> Result<(u64, f64)> {
    let mut source = CsvSource::open(file)?;
    let header: Vec<String> =
        source.header().iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    let keep: Vec<usize> =
        header.iter().enumerate().filter(|(i, _)| *i < 2 || *i >= 10).map(|(i, _)| i).collect();
    let mut parsed: Vec<(String, String, Vec<i64>)> = Vec::new();
    let mut record = csv::ByteRecord::new();
    while source.read(&mut record)? {
        let text = |i: usize| String::from_utf8_lossy(&record[i]).into_owned();
        let amounts = keep[2..].iter().map(|&i| text(i).parse::<i64>()).collect::<Result<Vec<_>, _>>()?;
        parsed.push((text(0), text(1), amounts));
    }
    std::fs::create_dir_all(dir)?;
    let mut conn = rusqlite::Connection::open(dir.join("bare.sqlite"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let columns: Vec<String> = keep
        .iter()
        .map(|&i| format!("{} {}", header[i].to_lowercase(), if i < 2 { "TEXT" } else { "INTEGER" }))
        .collect();
    conn.execute_batch(&format!("DROP TABLE IF EXISTS t; CREATE TABLE t ({})", columns.join(", ")))?;
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut insert =
            tx.prepare(&format!("INSERT INTO t VALUES ({})", vec!["?"; keep.len()].join(", ")))?;
        for (quarter, seq, amounts) in &parsed {
            insert.raw_bind_parameter(1, quarter)?;
            insert.raw_bind_parameter(2, seq)?;
            for (i, amount) in amounts.iter().enumerate() {
                insert.raw_bind_parameter(i + 3, amount)?;
            }
            insert.raw_execute()?;
        }
    }
    tx.commit()?;
    Ok((parsed.len() as u64, started.elapsed().as_secs_f64()))
}

/// The insight rebuild as it was written in Rust (the baseline): joined
/// rows and seconds.
pub(crate) async fn insight_rebuild_in_rust(
    product: &Arc<Product>,
    registry: &str,
    credentials: &mesh_grpc::Credentials,
) -> Result<(u64, f64)> {
    let started = Instant::now();
    let sources =
        crate::insight_rust::Sources { registry_url: registry.to_owned(), credentials: credentials.clone() };
    let joined = crate::insight_rust::rebuild(product, &sources, 5).await?;
    Ok((joined as u64, started.elapsed().as_secs_f64()))
}

/// The insight rebuild as its product file declares it (SQL, through its
/// `Reload` method): seconds.
pub(crate) async fn insight_reload(insight_url: &str, at_insight: &mesh_grpc::Credentials) -> Result<f64> {
    let mut insight = SegmentSpendingServiceClient::new(crate::mesh::connect(insight_url, at_insight).await?);
    let started = Instant::now();
    insight.reload(mesh_contracts::product::ReloadRequest {}).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// The two source streams alone, with the projections the rebuild uses.
pub(crate) async fn source_streams(
    customer_url: &str,
    payment_url: &str,
    at_customer: &mesh_grpc::Credentials,
    at_payment: &mesh_grpc::Credentials,
) -> Result<f64> {
    let mask = |paths: &[&str]| {
        Some(prost_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() })
    };
    let started = Instant::now();
    let mut customers =
        CustomerProfileServiceClient::new(crate::mesh::connect(customer_url, at_customer).await?);
    let mut stream = customers
        .query(QueryRequest {
            read_mask: mask(&["bas_yh", "seq", "life_stage", "hous_sido_nm", "mbr_rk"]),
            ..Default::default()
        })
        .await?
        .into_inner();
    while stream.message().await?.is_some() {}
    let mut payments = CardSpendingServiceClient::new(crate::mesh::connect(payment_url, at_payment).await?);
    let mut paths: Vec<String> = ["bas_yh", "seq", "tot_use_am"].map(String::from).to_vec();
    paths.extend(BROAD_COLUMNS.iter().map(|c| c.to_ascii_lowercase()));
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let mut stream =
        payments.query(QueryRequest { read_mask: mask(&paths), ..Default::default() }).await?.into_inner();
    while stream.message().await?.is_some() {}
    Ok(started.elapsed().as_secs_f64())
}

/// Rebuilds of each kind measured for the insight figures.
const INSIGHT_ROUNDS: usize = 3;

/// The figures of this group (`--only ingest`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let shipped = shipped(&run.data, run.generator)?;
    let scratch = run.data.join(format!("scratch-{}", std::process::id()));
    let (loaded, load_s) = payment_ingest(&scratch, &shipped)?;
    let (inserted, insert_s) = bare_insert(&scratch, &shipped.source)?;
    let (load_rate, insert_rate) = (rate(loaded, load_s), rate(inserted, insert_s));
    figures.push(Figure {
        name: "ingestion of the file into payment (parse, check, index, quality)",
        measured: per_second(load_rate),
        baseline: per_second(insert_rate),
        ratio: Some(load_rate / insert_rate),
        target: ">= 0.5",
        met: Some(load_rate / insert_rate >= 0.5),
    });
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(figures)
}

/// The insight group's figures (`--only insight`).
pub(crate) async fn insight_figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let insight_url = run.mesh.insight_url.as_deref().context("insight runs")?;
    let product = run.mesh.insight.as_ref().context("insight runs")?;
    // Both rebuilds read as the insight domain itself, under its agreements
    // (pseudonyms and all), as the Rust rebuild did when it was the domain.
    let as_insight = run.mesh.service_credentials("insight")?;
    let at_insight = run.mesh.at("insight")?;
    // A first SQL rebuild, not measured, leaves insight's agreements in
    // force at both owners.
    insight_reload(insight_url, &at_insight).await?;
    let (mut rust, mut sql, mut joined) = (Vec::new(), Vec::new(), 0);
    // Taken in turns, the median of each: one rebuild's warm-up or a noisy
    // neighbour does not decide the ratio.
    for _ in 0..INSIGHT_ROUNDS {
        let (rows, seconds) = insight_rebuild_in_rust(product, &run.mesh.registry, &as_insight).await?;
        joined = rows;
        rust.push(Duration::from_secs_f64(seconds));
        sql.push(Duration::from_secs_f64(insight_reload(insight_url, &at_insight).await?));
    }
    let (rust_s, sql_s) = (percentiles(rust).0.as_secs_f64(), percentiles(sql).0.as_secs_f64());
    let sources_s = source_streams(
        &run.mesh.customer_url,
        &run.mesh.payment_url,
        &run.mesh.at("customer")?,
        &run.mesh.at("payment")?,
    )
    .await?;
    figures.push(Figure {
        name: "insight rebuild in SQL vs the Rust rebuild (rows/s)",
        measured: per_second(rate(joined, sql_s)),
        baseline: per_second(rate(joined, rust_s)),
        ratio: Some(rust_s / sql_s),
        target: ">= 0.8",
        met: Some(rust_s / sql_s >= 0.8),
    });
    figures.push(Figure {
        name: "insight rebuild in SQL vs its two source streams",
        measured: per_second(rate(joined, sql_s)),
        baseline: per_second(rate(joined, sources_s)),
        ratio: Some(sources_s / sql_s),
        target: "report",
        met: None,
    });
    Ok(figures)
}
