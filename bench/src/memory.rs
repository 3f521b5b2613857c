//! Peak memory: the payment domain (its own process) streaming the whole
//! table to a slow reader, against the same process idle; and `mesh query
//! --format ndjson` over the whole table.

use crate::Run;
use crate::report::Figure;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;

use crate::mesh::sibling_binary;

/// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`).
pub(crate) fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim_start_matches(':').split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} for {pid}"))
}

/// Idle RSS and peak RSS (MiB) of a payment domain process streaming every
/// row to a reader that pauses after each batch.
pub(crate) async fn domain_streaming(data: &Path) -> Result<(f64, f64)> {
    let mut domain = on_bench_data(data)?;
    let streamed = domain.streaming_peak(&crate::mesh::payment_token(&data.join("issuer"))?).await;
    domain.stop();
    streamed.map(|s| (s.idle, s.peak))
}

/// A payment domain process of its own over the bench's payment data (no
/// load: its peak RSS is what it serves).
pub(crate) fn on_bench_data(data: &Path) -> Result<PaymentProcess> {
    let product = data.join("products/payment/card_spending.product.yaml");
    let args = ["--product".to_owned(), product.display().to_string(), "--data-dir".to_owned()];
    let args: Vec<String> = args.into_iter().chain([data.join("payment").display().to_string()]).collect();
    PaymentProcess::start(data, "http://127.0.0.1:9", &args)
}

/// Idle RSS (MiB) of a payment domain just after it generated and loaded
/// `customers` x `quarters` into a fresh folder, and after a restart on
/// the same data (no load).
pub(crate) fn domain_first_start(data: &Path, customers: u64, quarters: u32) -> Result<(f64, f64)> {
    let folder = data.join(format!("first-start-{}", std::process::id()));
    let generator = woori_data::Generator { customers, quarters, ..Default::default() };
    let shipped = woori_data::shipped::write(&folder, &generator)?;
    let args: Vec<String> = vec![
        "--product".into(),
        shipped.payment.display().to_string(),
        "--data-dir".into(),
        folder.join("payment").display().to_string(),
    ];
    let idle = |args: &[String]| -> Result<f64> {
        let mut domain = PaymentProcess::start(data, "http://127.0.0.1:9", args)?;
        std::thread::sleep(std::time::Duration::from_secs(2));
        let rss = status_kib(domain.pid(), "VmRSS")? as f64 / 1024.0;
        domain.stop();
        Ok(rss)
    };
    let measured = idle(&args).and_then(|first| Ok((first, idle(&args)?)));
    let _ = std::fs::remove_dir_all(&folder);
    measured
}

/// What a stream to a slow reader cost the domain.
pub(crate) struct Streamed {
    /// RSS before, MiB.
    pub idle: f64,
    /// Peak RSS, MiB.
    pub peak: f64,
    /// Rows received.
    pub rows: u64,
}

/// A payment domain in a process of its own, trusting the bench's issuer.
pub(crate) struct PaymentProcess {
    child: std::process::Child,
    /// Its URL.
    pub url: String,
}

impl PaymentProcess {
    /// Starts `mesh-domain` registering at `registry` with `args` (the
    /// payment product file among them) besides the address and issuer,
    /// and waits until it serves (after any load).
    pub(crate) fn start(data: &Path, registry: &str, args: &[String]) -> Result<Self> {
        let issuer_dir = data.join("issuer");
        let mut child = Command::new(sibling_binary("mesh-domain")?)
            .args(["--addr", "127.0.0.1:0", "--registry", registry, "--auth-issuer", "mesh-local"])
            .arg("--auth-jwks")
            .arg(issuer_dir.join("jwks.json"))
            .arg("--pseudonym-key")
            .arg(data.join("pseudonym.key"))
            .arg("--issuer-dir")
            .arg(&issuer_dir)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let url = crate::mesh::served_url(&mut child, "payment")?;
        Ok(Self { child, url })
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Idle RSS, then peak RSS (MiB) while streaming every row to a reader
    /// that pauses after each batch.
    pub(crate) async fn streaming_peak(&mut self, token: &str) -> Result<Streamed> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = status_kib(self.pid(), "VmRSS")?;
        let credentials = mesh_grpc::Credentials::token(token)?;
        let mut client = CardSpendingServiceClient::new(crate::mesh::connect(&self.url, &credentials).await?)
            .max_decoding_message_size(64 << 20);
        let mut stream = client.query(QueryRequest::default()).await?.into_inner();
        let mut rows = 0;
        while let Some(batch) = stream.message().await? {
            rows += batch.rows.len() as u64;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let peak = status_kib(self.pid(), "VmHWM")?;
        Ok(Streamed { idle: idle as f64 / 1024.0, peak: peak as f64 / 1024.0, rows })
    }

    /// Kills it (SIGKILL) and waits for it.
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PaymentProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Peak RSS (MiB) of `mesh query payment.card_spending --format ndjson > /dev/null`.
///
/// Read from the child's own `VmHWM` (a high-water mark) until it exits, not
/// from `wait4`'s `ru_maxrss`: Linux carries the spawning process's peak
/// across `exec` into that figure, so it would report this benchmark's size.
pub(crate) fn cli_ndjson(registry: &str, token: &str) -> Result<f64> {
    let mut command = Command::new(sibling_binary("mesh")?);
    command
        .args(["--registry", registry, "query", "payment.card_spending", "--format", "ndjson"])
        .env("MESH_TOKEN", token)
        .env("MESH_CACHE_DIR", std::env::temp_dir().join(format!("mesh-bench-cache-{}", std::process::id())))
        .stdout(Stdio::null());
    peak_rss_of(command)
}

/// Peak RSS (MiB) of `command` run to its end, read from its `VmHWM`.
pub(crate) fn peak_rss_of(mut command: Command) -> Result<f64> {
    let mut child = command.spawn()?;
    let mut peak = 0;
    let status = loop {
        if let Ok(kib) = status_kib(child.id(), "VmHWM") {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if !status.success() {
        bail!("{command:?} failed");
    }
    Ok(peak as f64 / 1024.0)
}

/// The figures of this group (`--only memory`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let cli_peak = cli_ndjson(&run.mesh.registry, &run.mesh.token)?;
    figures.push(Figure {
        name: "peak RSS, mesh query --format ndjson, whole table",
        measured: format!("{cli_peak:.1} MiB"),
        baseline: "-".into(),
        ratio: None,
        target: "<= 64 MiB",
        met: Some(cli_peak <= 64.0),
    });
    let (first, restarted) = domain_first_start(&run.data, run.customers, run.quarters)?;
    figures.push(Figure {
        name: "idle RSS, payment domain after its first load",
        measured: format!("{first:.1} MiB"),
        baseline: format!("{restarted:.1} MiB restarted"),
        ratio: Some(first / restarted),
        target: "<= 1.5",
        met: Some(first / restarted <= 1.5),
    });
    let (idle, peak) = domain_streaming(&run.data).await?;
    figures.push(Figure {
        name: "peak RSS, payment domain streaming to a slow reader",
        measured: format!("{peak:.1} MiB (+{:.1})", peak - idle),
        baseline: format!("{idle:.1} MiB idle"),
        ratio: None,
        target: "<= +64 MiB",
        met: Some(peak - idle <= 64.0),
    });
    Ok(figures)
}
