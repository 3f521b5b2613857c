//! The `observability` group: two `mesh-domain` processes serving the
//! bench's payment product over the same data, one with metrics on and
//! traces exported to an OTLP receiver (`e2e/fixtures/otlp_receiver.py`),
//! one with both off (`--no-metrics`, no endpoint): full export and the
//! selective query's p50, alternated; then the time a scrape of `/metrics`
//! takes while the domain holds 600 idle `Query` streams.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;

use crate::Run;
use crate::latency::{percentiles, selective_query};
use crate::memory::PaymentProcess;
use crate::postgres::cli_export;
use crate::report::{Figure, ms, per_second};
use crate::stream::rate;

/// Idle streams held open while the scrape is timed.
const IDLE_STREAMS: usize = 600;
/// Streams per connection (the domain's default allows 32).
const STREAMS_PER_CONNECTION: usize = 30;
/// Scrapes timed under the idle streams.
const SCRAPES: usize = 20;

/// The OTLP receiver, killed when dropped.
struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the receiver writing spans under `dir`; it and its endpoint.
fn receiver(dir: &Path) -> Result<(Receiver, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".tools/venv/bin/python");
    ensure!(python.exists(), "{} is missing: run scripts/install-tools.sh", python.display());
    let mut child = Command::new(python)
        .arg(root.join("e2e/fixtures/otlp_receiver.py"))
        .arg(dir.join("spans.jsonl"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut port = String::new();
    std::io::BufReader::new(child.stdout.take().context("the receiver's stdout")?).read_line(&mut port)?;
    Ok((Receiver(child), format!("http://127.0.0.1:{}", port.trim())))
}

/// `mesh-domain` serving the bench's payment product file with `extra` flags.
fn payment(data: &Path, extra: &[&str]) -> Result<PaymentProcess> {
    let product = data.join("products/payment/card_spending.product.yaml").display().to_string();
    let mut args = vec!["--product".to_owned(), product, "--data-dir".to_owned()];
    args.push(data.join("payment").display().to_string());
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    PaymentProcess::start(data, "http://127.0.0.1:9", &args)
}

/// Milliseconds each of `SCRAPES` scrapes of `url` took, while `IDLE_STREAMS`
/// streams wait unread.
async fn scrapes_under_idle_streams(url: &str, token: &str) -> Result<Vec<Duration>> {
    let credentials = mesh_grpc::Credentials::token(token)?;
    let mut held = Vec::new();
    for _ in 0..IDLE_STREAMS.div_ceil(STREAMS_PER_CONNECTION) {
        let channel = crate::mesh::connect(url, &credentials).await?;
        for _ in 0..STREAMS_PER_CONNECTION {
            let mut client = CardSpendingServiceClient::new(channel.clone());
            // Opened and never read: the domain holds it (scanning, or queued for a slot).
            held.push(tokio::spawn(async move {
                let stream = client.query(QueryRequest::default()).await;
                tokio::time::sleep(Duration::from_secs(120)).await;
                drop(stream);
            }));
        }
    }
    let http = reqwest::Client::new();
    let scrape = || async {
        let started = Instant::now();
        let text = http.get(format!("{url}/metrics")).bearer_auth(token).send().await?.text().await?;
        Ok::<_, anyhow::Error>((started.elapsed(), text))
    };
    // Wait until the domain holds them all.
    let started = Instant::now();
    loop {
        let (_, text) = scrape().await?;
        let held_now: f64 = ["mesh_scans_running ", "mesh_scans_queued "]
            .iter()
            .filter_map(|name| text.lines().find_map(|l| l.strip_prefix(name)?.parse::<f64>().ok()))
            .sum();
        if held_now >= (IDLE_STREAMS - IDLE_STREAMS / 10) as f64 {
            break;
        }
        ensure!(started.elapsed() < Duration::from_secs(60), "the domain holds only {held_now} streams");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut times = Vec::new();
    for _ in 0..SCRAPES {
        times.push(scrape().await?.0);
    }
    for stream in held {
        stream.abort();
    }
    Ok(times)
}

/// The figures of this group (`--only observability`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let spans = tempfile::tempdir_in(&run.data)?;
    let (_receiver, endpoint) = receiver(spans.path())?;
    let (data, queue) = (run.data.clone(), (IDLE_STREAMS * 2).to_string());
    let observed = {
        let (data, endpoint) = (data.clone(), endpoint.clone());
        tokio::task::spawn_blocking(move || {
            payment(
                &data,
                &["--otlp-endpoint", &endpoint, "--scan-queue", &queue, "--scan-queue-timeout", "5m"],
            )
        })
        .await??
    };
    let bare = tokio::task::spawn_blocking(move || payment(&data, &["--no-metrics"])).await??;
    let rows = run.mesh.payment.describe()?.row_count as u64;
    let export = |url: &str| cli_export(&run.mesh.registry, &run.mesh.token, url);
    let (mut on_s, mut off_s) = (f64::MAX, f64::MAX);
    for _ in 0..2 {
        off_s = off_s.min(export(&bare.url)?);
        on_s = on_s.min(export(&observed.url)?);
    }
    let (on, off) = (rate(rows, on_s), rate(rows, off_s));
    figures.push(Figure {
        name: "metrics on + traces exported vs both off: full export",
        measured: per_second(on),
        baseline: per_second(off),
        ratio: Some(on / off),
        target: ">= 0.95",
        met: Some(on / off >= 0.95),
    });
    let at_payment = run.mesh.at("payment")?;
    let p50 = |samples| percentiles(samples).0;
    let (mut on_p50, mut off_p50) = (Duration::MAX, Duration::MAX);
    for _ in 0..2 {
        let (query, _) = selective_query(&bare.url, &at_payment, "0000012345", "2024Q3", run.calls).await?;
        off_p50 = off_p50.min(p50(query));
        let (query, _) =
            selective_query(&observed.url, &at_payment, "0000012345", "2024Q3", run.calls).await?;
        on_p50 = on_p50.min(p50(query));
    }
    let ratio = on_p50.as_secs_f64() / off_p50.as_secs_f64();
    figures.push(Figure {
        name: "metrics on + traces exported vs both off: selective p50",
        measured: ms(on_p50),
        baseline: ms(off_p50),
        ratio: Some(ratio),
        target: "<= 1.1",
        met: Some(ratio <= 1.1),
    });
    let token = crate::mesh::payment_token(&run.data.join("issuer"))?;
    let scrapes = scrapes_under_idle_streams(&observed.url, &token).await?;
    let (scrape_p50, scrape_p99) = percentiles(scrapes);
    figures.push(Figure {
        name: "scrape of /metrics with 600 idle streams open (p50; p99 of 20 in measured)",
        measured: format!("{} (p99 {})", ms(scrape_p50), ms(scrape_p99)),
        baseline: "50 ms".to_owned(),
        ratio: Some(scrape_p99.as_secs_f64() / 0.050),
        target: "< 50 ms",
        met: Some(scrape_p99 < Duration::from_millis(50)),
    });
    Ok(figures)
}
