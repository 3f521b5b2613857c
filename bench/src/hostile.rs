//! The mesh under hostile load, as `mesh up` runs it (its own process, so
//! its memory is its own): 600 `Query` streams that never read, and 64
//! concurrent full exports. Each figure is set against the same mesh
//! without the load, measured in the same run.

use crate::Run;
use crate::report::{Figure, ms, per_second};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{GetProductRequest, ProductView, ServingStatus};
use mesh_contracts::product::{DescribeRequest, QueryRequest};
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_grpc::Credentials;
use tonic::Code;

use crate::mesh::connect;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::latency::{GetProductCall, percentiles, registry_load};
use crate::mesh::sibling_binary;

/// Streams opened by the hostile client, and the connections they share.
const IDLE_STREAMS: usize = 600;
const IDLE_CONNECTIONS: usize = 4;
/// Concurrent full exports.
const EXPORTS: usize = 64;
/// The lease of the mesh under test: short, so that two of them pass quickly.
const LEASE: Duration = Duration::from_secs(4);

/// What the hostile run measured.
pub(crate) struct Hostile {
    /// Describe and health p99 without and with the idle streams.
    pub describe_p99: (Duration, Duration),
    pub health_p99: (Duration, Duration),
    /// Registry GetProduct/s without and with the idle streams.
    pub registry_rate: (f64, f64),
    /// Streams admitted, queued and refused, and the slowest refusal.
    pub admitted: usize,
    pub queued: usize,
    pub refused: usize,
    pub slowest_refusal: Duration,
    /// Whether the product was still SERVING after two leases.
    pub serving_after_two_leases: bool,
    /// RSS of the mesh idle and under the idle streams, MiB.
    pub rss_idle: f64,
    pub rss_streams: f64,
    /// Rows of the fresh full query after the client went away, and the total.
    pub fresh_rows: u64,
    pub total_rows: u64,
    /// One export's rows/s, the 64 exports' aggregate rows/s, exports that
    /// delivered every row, and the mesh's peak RSS during them (MiB).
    pub single_rate: f64,
    pub aggregate_rate: f64,
    pub complete_exports: usize,
    pub export_peak: f64,
}

/// `mesh up` in its own process over `data`, stopped when dropped.
struct Up {
    child: Child,
    registry: String,
    payment: String,
    /// For the registry.
    credentials: Credentials,
    /// For the payment domain.
    at_payment: Credentials,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A base port with the three after it free on loopback.
fn free_base_port() -> Result<u16> {
    for _ in 0..100 {
        let base = 20_000 + (rand::random::<u16>() % 30_000);
        let free = (0..4).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if free {
            return Ok(base);
        }
    }
    bail!("no four free ports in a row")
}

fn start_up(data: &Path, customers: u64, quarters: u32) -> Result<Up> {
    let base = free_base_port()?;
    let mut child = Command::new(sibling_binary("mesh")?)
        .args(["up", "--customers", &customers.to_string(), "--quarters", &quarters.to_string()])
        .args(["--base-port", &base.to_string(), "--lease-ttl", &format!("{}s", LEASE.as_secs())])
        .arg("--data-dir")
        .arg(data)
        .env("MESH_CONFIG_DIR", data.join("profiles"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
    loop {
        let Some(line) = lines.next() else { bail!("mesh up exited before serving") };
        if line?.contains("every product is serving") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    Ok(Up {
        child,
        registry: format!("http://127.0.0.1:{base}"),
        payment: format!("http://127.0.0.1:{}", base + 2),
        credentials: Credentials::token(&crate::mesh::bench_token(&data.join("issuer"))?)?,
        at_payment: Credentials::token(&crate::mesh::payment_token(&data.join("issuer"))?)?,
    })
}

fn rss_mib(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim_start_matches(':').split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field}"))?;
    Ok(kib as f64 / 1024.0)
}

/// p99 of `n` sequential Describe calls and of `n` health checks, each on
/// a connection of its own.
async fn control_p99(url: &str, credentials: &Credentials, n: usize) -> Result<(Duration, Duration)> {
    let mut client = CardSpendingServiceClient::new(connect(url, credentials).await?);
    let mut health = HealthClient::new(connect(url, credentials).await?);
    let (mut describe, mut checks) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let started = Instant::now();
        client.describe(DescribeRequest::default()).await?;
        describe.push(started.elapsed());
        let started = Instant::now();
        let service = "woori.payment.v1.CardSpendingService".to_owned();
        health.check(HealthCheckRequest { service }).await?;
        checks.push(started.elapsed());
    }
    Ok((percentiles(describe).1, percentiles(checks).1))
}

async fn registry_rate(url: &str, credentials: &Credentials) -> Result<f64> {
    let call = GetProductCall { known_fingerprint: String::new(), view: ProductView::Basic, decode: true };
    Ok(registry_load(url, credentials, Duration::from_secs(2), 2, &call).await?.0.0)
}

/// Every row of the product, counted by a typed client.
async fn export(url: String, credentials: Credentials) -> Result<u64> {
    let mut client = CardSpendingServiceClient::new(connect(&url, &credentials).await?)
        .max_decoding_message_size(64 << 20);
    let mut stream = client.query(QueryRequest::default()).await?.into_inner();
    let mut rows = 0;
    while let Some(batch) = stream.message().await? {
        rows += batch.rows.len() as u64;
    }
    Ok(rows)
}

/// Runs the hostile figures against `mesh up` over `data`.
pub(crate) async fn run(data: &Path, customers: u64, quarters: u32) -> Result<Hostile> {
    let up = start_up(data, customers, quarters)?;
    let pid = up.child.id();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_mib(pid, "VmRSS")?;
    let (describe_before, health_before) = control_p99(&up.payment, &up.at_payment, 200).await?;
    let registry_before = registry_rate(&up.registry, &up.credentials).await?;
    let total_rows = {
        let channel = connect(&up.payment, &up.at_payment).await?;
        CardSpendingServiceClient::new(channel)
            .describe(DescribeRequest::default())
            .await?
            .into_inner()
            .row_count as u64
    };

    // 600 streams that never read, over 4 connections.
    let mut channels = Vec::new();
    for _ in 0..IDLE_CONNECTIONS {
        channels.push(connect(&up.payment, &up.at_payment).await?);
    }
    let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel();
    let (refused_tx, mut refused_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..IDLE_STREAMS {
        let mut client = CardSpendingServiceClient::new(channels[i % IDLE_CONNECTIONS].clone());
        let (held_tx, refused_tx) = (held_tx.clone(), refused_tx.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            match client.query(QueryRequest::default()).await {
                Ok(stream) => {
                    let _ = held_tx.send(stream.into_inner());
                }
                Err(status) => {
                    let _ = refused_tx.send((status.code(), started.elapsed()));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut held = Vec::new();
    while let Ok(stream) = held_rx.try_recv() {
        held.push(stream);
    }
    let (mut refused, mut slowest_refusal) = (0, Duration::ZERO);
    while let Ok((code, took)) = refused_rx.try_recv() {
        if code == Code::ResourceExhausted {
            refused += 1;
            slowest_refusal = slowest_refusal.max(took);
        }
    }
    let admitted = held.len();
    let queued = IDLE_STREAMS - admitted - refused;
    let (describe_during, health_during) = control_p99(&up.payment, &up.at_payment, 200).await?;
    let registry_during = registry_rate(&up.registry, &up.credentials).await?;
    let rss_streams = rss_mib(pid, "VmRSS")?;
    tokio::time::sleep(LEASE * 2 + Duration::from_secs(1)).await;
    let mut catalog = CatalogServiceClient::new(connect(&up.registry, &up.credentials).await?);
    let entry = catalog
        .get_product(GetProductRequest { name: "payment.card_spending".into(), ..Default::default() })
        .await?
        .into_inner();
    let serving_after_two_leases = entry.product.is_some_and(|p| p.status() == ServingStatus::Serving);

    // The client goes away; a fresh full query completes.
    drop(held);
    for task in tasks {
        task.abort();
    }
    drop(channels);
    let fresh_rows =
        tokio::time::timeout(Duration::from_secs(300), export(up.payment.clone(), up.at_payment.clone()))
            .await??;

    // One export alone, then 64 at once.
    let started = Instant::now();
    let single = export(up.payment.clone(), up.at_payment.clone()).await?;
    let single_rate = single as f64 / started.elapsed().as_secs_f64();
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("resetting the peak RSS")?;
    let started = Instant::now();
    let exports: Vec<_> =
        (0..EXPORTS).map(|_| tokio::spawn(export(up.payment.clone(), up.at_payment.clone()))).collect();
    let mut complete_exports = 0;
    let mut delivered = 0u64;
    for export in exports {
        match export.await? {
            Ok(rows) => {
                delivered += rows;
                complete_exports += usize::from(rows == total_rows);
            }
            Err(error) => eprintln!("an export failed: {error:#}"),
        }
    }
    let aggregate_rate = delivered as f64 / started.elapsed().as_secs_f64();
    let export_peak = rss_mib(pid, "VmHWM")?;
    Ok(Hostile {
        describe_p99: (describe_before, describe_during),
        health_p99: (health_before, health_during),
        registry_rate: (registry_before, registry_during),
        admitted,
        queued,
        refused,
        slowest_refusal,
        serving_after_two_leases,
        rss_idle,
        rss_streams,
        fresh_rows,
        total_rows,
        single_rate,
        aggregate_rate,
        complete_exports,
        export_peak,
    })
}

/// The figures of this group (`--only hostile`).
pub(crate) async fn figures(settings: &Run) -> Result<Vec<Figure>> {
    let (customers, quarters) = (settings.hostile_customers, settings.quarters);
    let dir = PathBuf::from(format!("target/bench-data/hostile-{customers}x{quarters}"));
    Ok(report(&run(&dir, customers, quarters).await?))
}

/// The report lines of the hostile run.
fn report(h: &Hostile) -> Vec<Figure> {
    let registry_ratio = h.registry_rate.1 / h.registry_rate.0;
    let export_ratio = h.aggregate_rate / h.single_rate;
    vec![
        Figure {
            name: "600 idle streams: payment Describe p99 (before / during)",
            measured: ms(h.describe_p99.1),
            baseline: ms(h.describe_p99.0),
            ratio: None,
            target: "<= 100 ms",
            met: Some(h.describe_p99.1 <= Duration::from_millis(100)),
        },
        Figure {
            name: "  payment health p99 (before / during)",
            measured: ms(h.health_p99.1),
            baseline: ms(h.health_p99.0),
            ratio: None,
            target: "<= 100 ms",
            met: Some(h.health_p99.1 <= Duration::from_millis(100)),
        },
        Figure {
            name: "  registry GetProduct/s in the same process (during / before)",
            measured: format!("{:.0}/s", h.registry_rate.1),
            baseline: format!("{:.0}/s", h.registry_rate.0),
            ratio: Some(registry_ratio),
            target: ">= 0.8",
            met: Some(registry_ratio >= 0.8),
        },
        Figure {
            name: "  streams admitted / queued / refused at once",
            measured: format!("{} / {} / {}", h.admitted, h.queued, h.refused),
            baseline: format!("slowest refusal {}", ms(h.slowest_refusal)),
            ratio: None,
            target: "refused at once",
            met: Some(h.refused > 0 && h.slowest_refusal < Duration::from_secs(1)),
        },
        Figure {
            name: "  payment.card_spending SERVING after two leases",
            measured: h.serving_after_two_leases.to_string(),
            baseline: "-".into(),
            ratio: None,
            target: "true",
            met: Some(h.serving_after_two_leases),
        },
        Figure {
            name: "  RSS of mesh up under the streams (over idle)",
            measured: format!("{:.1} MiB (+{:.1})", h.rss_streams, h.rss_streams - h.rss_idle),
            baseline: format!("{:.1} MiB idle", h.rss_idle),
            ratio: None,
            target: "<= +256 MiB",
            met: Some(h.rss_streams - h.rss_idle <= 256.0),
        },
        Figure {
            name: "  fresh full query after the client went away (rows)",
            measured: h.fresh_rows.to_string(),
            baseline: h.total_rows.to_string(),
            ratio: None,
            target: "all rows",
            met: Some(h.fresh_rows == h.total_rows),
        },
        Figure {
            name: "64 concurrent full exports: aggregate vs one export",
            measured: per_second(h.aggregate_rate),
            baseline: per_second(h.single_rate),
            ratio: Some(export_ratio),
            target: ">= 0.8",
            met: Some(export_ratio >= 0.8),
        },
        Figure {
            name: "  exports that delivered every row; peak RSS of mesh up",
            measured: format!("{} of 64; {:.1} MiB", h.complete_exports, h.export_peak),
            baseline: "-".into(),
            ratio: None,
            target: "64 of 64",
            met: Some(h.complete_exports == 64),
        },
    ]
}
