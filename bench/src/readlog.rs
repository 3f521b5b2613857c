//! What a flood of refused reads costs the read log: Query calls carrying
//! 4 MB filters (each refused: longer than a filter may be) from one
//! principal, against the payment domain of the bench's mesh; the log's
//! size on disk before and after, and the domain's lease renewals meanwhile
//! (each must come within its period, as the registry sees it).

use crate::Run;
use crate::report::Figure;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use mesh_contracts::catalog::GetProductRequest;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;

use crate::mesh::{Mesh, connect};

/// Bytes of each filter: a 4 MB message, under gRPC's 4 MiB default.
const FILTER_BYTES: usize = 4_000_000;
/// Calls in flight at once.
const IN_FLIGHT: usize = 4;

/// The figures of the flood.
pub(crate) struct Flood {
    pub calls: usize,
    pub seconds: f64,
    pub log_before: u64,
    pub log_after: u64,
    /// The time between two renewals before the flood.
    pub period: Duration,
    /// The longest time between two renewals the registry saw during it.
    pub longest_gap: Duration,
    /// The renewals seen during the flood.
    pub renewals: usize,
}

/// Bytes of the payment domain's read log (the file and its journal).
fn log_bytes(data: &Path) -> u64 {
    let dir = data.join("payment");
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("audit.sqlite"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The payment endpoint's last renewal as the registry records it (ms).
async fn renewed_at(catalog: &mut CatalogServiceClient<mesh_grpc::MeshChannel>, url: &str) -> Result<i64> {
    let request = GetProductRequest { name: "payment.card_spending".into(), ..Default::default() };
    let product = catalog.get_product(request).await?.into_inner().product.unwrap_or_default();
    let endpoint = product.endpoints.iter().find(|e| e.uri == url);
    Ok(endpoint
        .and_then(|e| e.renew_time.as_ref())
        .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000))
}

/// The time between two renewals of the payment endpoint, watched now.
async fn renewal_period(
    catalog: &mut CatalogServiceClient<mesh_grpc::MeshChannel>,
    url: &str,
) -> Result<Duration> {
    let mut seen = Vec::new();
    let mut last = renewed_at(catalog, url).await?;
    let started = Instant::now();
    while seen.len() < 2 {
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the payment domain did not renew its lease within 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = renewed_at(catalog, url).await?;
        if now != last {
            last = now;
            seen.push(Instant::now());
        }
    }
    Ok(seen[1] - seen[0])
}

/// Sends `calls` refused reads with 4 MB filters and watches the renewals.
pub(crate) async fn flood(mesh: &Mesh, data: &Path, calls: usize) -> Result<Flood> {
    let log_before = log_bytes(data);
    let mut catalog = CatalogServiceClient::new(connect(&mesh.registry, &mesh.credentials).await?);
    let period = renewal_period(&mut catalog, &mesh.payment_url).await?;
    let filter = format!("seq = \"{}\"", "x".repeat(FILTER_BYTES));
    let started = Instant::now();
    let mut senders = Vec::new();
    for sender in 0..IN_FLIGHT {
        let mut client =
            CardSpendingServiceClient::new(connect(&mesh.payment_url, &mesh.at("payment")?).await?);
        let request = QueryRequest { filter: filter.clone(), ..Default::default() };
        let share = calls / IN_FLIGHT + usize::from(sender < calls % IN_FLIGHT);
        senders.push(tokio::spawn(async move {
            let mut refused = 0;
            for _ in 0..share {
                match client.query(request.clone()).await {
                    Err(status) if status.code() == tonic::Code::InvalidArgument => refused += 1,
                    Err(status) => return Err(anyhow::anyhow!("unexpected answer: {status:?}")),
                    Ok(_) => return Err(anyhow::anyhow!("a 4 MB filter was served")),
                }
            }
            Ok::<usize, anyhow::Error>(refused)
        }));
    }
    // Renewals as the registry records them, while the flood lasts.
    let (mut last, mut last_seen, mut longest_gap, mut renewals) =
        (renewed_at(&mut catalog, &mesh.payment_url).await?, started, Duration::ZERO, 0);
    while senders.iter().any(|s| !s.is_finished()) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = renewed_at(&mut catalog, &mesh.payment_url).await?;
        if now != last {
            longest_gap = longest_gap.max(last_seen.elapsed());
            (last, last_seen, renewals) = (now, Instant::now(), renewals + 1);
        }
    }
    longest_gap = longest_gap.max(last_seen.elapsed());
    let seconds = started.elapsed().as_secs_f64();
    let mut refused = 0;
    for sender in senders {
        refused += sender.await??;
    }
    if refused != calls {
        bail!("{refused} of {calls} calls refused");
    }
    // The log's writer commits within a second.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(Flood { calls, seconds, log_before, log_after: log_bytes(data), period, longest_gap, renewals })
}

/// The figures of this group (`--only read-log`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let flood = flood(&run.mesh, &run.data, 10_000).await?;
    let grown = flood.log_after.saturating_sub(flood.log_before) as f64 / (1024.0 * 1024.0);
    figures.push(Figure {
        name: "read log growth after 10,000 refused reads, 4 MB filters",
        measured: format!("{grown:.1} MiB"),
        baseline: format!("{:.0} MB sent in {:.0} s", flood.calls as f64 * 4.0, flood.seconds),
        ratio: None,
        target: "< 64 MiB",
        met: Some(grown < 64.0),
    });
    let ratio = flood.longest_gap.as_secs_f64() / flood.period.as_secs_f64();
    figures.push(Figure {
        name: "  longest time between lease renewals meanwhile",
        measured: format!("{:.1} s ({} renewals)", flood.longest_gap.as_secs_f64(), flood.renewals),
        baseline: format!("{:.1} s before", flood.period.as_secs_f64()),
        ratio: Some(ratio),
        target: "<= 1.25",
        met: Some(ratio <= 1.25),
    });
    Ok(figures)
}
