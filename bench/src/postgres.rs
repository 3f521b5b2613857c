//! The payment domain on PostgreSQL (a throwaway server of the bench's
//! own): loading the file against a bare `COPY` of it; `mesh query --format
//! csv` against `psql \copy ... to stdout with csv` of the same table; the
//! selective query against an empty round trip; the domain's memory while
//! streaming; and the gap when one of two replicas is killed mid-export.

use woori_data::Generator;

use crate::Run;
use crate::report::{Figure, ms, per_second};
use crate::stream::rate;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use mesh_postgres::DatabaseArgs;
use mesh_postgres::testing::TestServer;
use mesh_runtime::DomainStore;
use mesh_runtime::ingest::{CsvSource, RecordSource};
use woori_data::shipped::Shipped;

use crate::memory::{PaymentProcess, Streamed};
use crate::mesh::sibling_binary;

/// A PostgreSQL server for the bench, with the payment product loaded.
pub(crate) struct Postgres {
    server: TestServer,
    /// Rows in the product.
    pub rows: u64,
    /// Seconds the domain's load of the file took.
    pub load_seconds: f64,
}

impl Postgres {
    /// Starts a server and loads the shipped payment file into the payment
    /// domain's schema on it (in this process).
    pub(crate) fn start(shipped: &Shipped) -> Result<Self> {
        let server = TestServer::start();
        let store = DomainStore::connect(&DatabaseArgs::for_url(server.url()), "payment")?;
        let (rows, load_seconds) = crate::ingest::payment_load(store, shipped)?;
        Ok(Self { server, rows, load_seconds })
    }

    /// The server's URL.
    pub(crate) fn url(&self) -> &str {
        self.server.url()
    }

    /// The baseline of the load: seconds of a bare `\copy` of `file` into
    /// a table of the same columns and types, without index or checks.
    pub(crate) fn bare_copy(&self, shipped: &Shipped) -> Result<f64> {
        let file = &shipped.source;
        let header = CsvSource::open(file)?.header().clone();
        let schema = &payment_schema(shipped)?;
        let columns: Vec<String> = header
            .iter()
            .map(|name| {
                let name = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
                let kind = schema
                    .columns
                    .iter()
                    .find(|c| c.source_column.eq_ignore_ascii_case(&name) || c.name == name)
                    .map(|c| c.kind);
                let sql_type = match kind {
                    Some(mesh_runtime::schema::ColumnKind::String) | None => "TEXT COLLATE \"C\"",
                    Some(mesh_runtime::schema::ColumnKind::Real) => "DOUBLE PRECISION",
                    Some(_) => "BIGINT",
                };
                format!("{name} {sql_type} NOT NULL")
            })
            .collect();
        psql(
            self.url(),
            &format!("DROP TABLE IF EXISTS bare_copy; CREATE TABLE bare_copy ({})", columns.join(", ")),
        )?;
        let started = Instant::now();
        psql(self.url(), &format!("\\copy bare_copy FROM '{}' WITH (FORMAT csv, HEADER)", file.display()))?;
        let seconds = started.elapsed().as_secs_f64();
        psql(self.url(), "DROP TABLE bare_copy")?;
        Ok(seconds)
    }

    /// The table holding the product's rows now.
    pub(crate) fn current_table(&self) -> Result<String> {
        let output = psql_output(
            self.url(),
            "SELECT data_table FROM payment.mesh_tables WHERE product = 'payment.card_spending'",
        )?;
        Ok(output.trim().to_owned())
    }

    /// Seconds of `psql \copy (select * from <table>) to stdout with csv > /dev/null`.
    pub(crate) fn psql_export(&self) -> Result<f64> {
        let table = self.current_table()?;
        let started = Instant::now();
        let status = psql_command(self.url())?
            .args(["-c", &format!("\\copy (SELECT * FROM payment.{table}) TO STDOUT WITH CSV")])
            .stdout(Stdio::null())
            .status()?;
        ensure!(status.success(), "psql \\copy to stdout failed");
        Ok(started.elapsed().as_secs_f64())
    }

    /// A payment domain process serving the loaded data from the server.
    pub(crate) fn domain(&self, data: &Path, shipped: &Shipped) -> Result<PaymentProcess> {
        PaymentProcess::start(data, "http://127.0.0.1:9", &self.domain_args(shipped))
    }

    /// The flags of a payment domain on this server serving the shipped
    /// payment product file.
    pub(crate) fn domain_args(&self, shipped: &Shipped) -> Vec<String> {
        let product = shipped.payment.display().to_string();
        vec!["--database-url".into(), self.url().to_owned(), "--product".into(), product]
    }
}

fn payment_schema(shipped: &Shipped) -> Result<mesh_runtime::schema::RowSchema> {
    let declared = mesh_product_file::declare(&shipped.payment).map_err(|m| anyhow::anyhow!("{m}"))?;
    let spec = mesh_domain_server::published::spec(&declared);
    Ok(mesh_runtime::schema::RowSchema::new(&spec.table, declared.shape.row_type, &spec.key, &spec.amounts)?)
}

/// `mesh query payment.card_spending --endpoint URL --format csv > /dev/null`: seconds.
pub(crate) fn cli_export(registry: &str, token: &str, endpoint: &str) -> Result<f64> {
    let started = Instant::now();
    let status = Command::new(sibling_binary("mesh")?)
        .args(["--registry", registry, "query", "payment.card_spending", "--format", "csv"])
        .args(["--endpoint", endpoint])
        .env("MESH_TOKEN", token)
        .env("MESH_CACHE_DIR", std::env::temp_dir().join(format!("mesh-bench-cache-{}", std::process::id())))
        .stdout(Stdio::null())
        .status()?;
    ensure!(status.success(), "mesh query --endpoint {endpoint} failed");
    Ok(started.elapsed().as_secs_f64())
}

/// What killing the replica an export reads from costs it.
pub(crate) struct FailOver {
    /// Rows per second before the kill.
    pub before: f64,
    /// The longest pause in rows after the kill, until they flowed again.
    pub gap: Duration,
    /// Rows per second after the export went on.
    pub after: f64,
    /// Whether every row came exactly once.
    pub exact: bool,
}

/// Two replicas on the server registered at a registry of their own; an
/// export through `mesh query` whose replica is killed half-way.
pub(crate) fn fail_over(data: &Path, pg: &Postgres, shipped: &Shipped, token: &str) -> Result<FailOver> {
    let registry_dir = data.join(format!("pg-registry-{}", std::process::id()));
    // `mesh query` exchanges its token there for one good at payment.
    let issuer_dir = data.join("issuer").display().to_string();
    let exchange = ["--token-exchange-issuer-dir", issuer_dir.as_str()];
    let (mut registry, registry_url) = crate::mesh::registry_process(data, &registry_dir, &exchange)?;
    let args = pg.domain_args(shipped);
    let mut replicas = [
        PaymentProcess::start(data, &registry_url, &args)?,
        PaymentProcess::start(data, &registry_url, &args)?,
    ];
    let mesh = |extra: &[&str]| -> Result<Command> {
        let mut command = Command::new(sibling_binary("mesh")?);
        command
            .args(["--registry", &registry_url])
            .args(extra)
            .env("MESH_TOKEN", token)
            .env("MESH_CACHE_DIR", registry_dir.join("cache"));
        Ok(command)
    };
    let started = Instant::now();
    loop {
        let output = mesh(&["describe", "payment.card_spending", "--format", "json"])?.output()?;
        let product: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        let serving = product["endpoints"]
            .as_array()
            .map_or(0, |e| e.iter().filter(|e| e["status"] == "SERVING_STATUS_SERVING").count());
        if serving == 2 {
            break;
        }
        ensure!(started.elapsed() < Duration::from_secs(60), "the replicas never both registered");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut export = mesh(&["query", "payment.card_spending", "--format", "csv", "--select", "bas_yh,seq"])?
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut lines = BufReader::new(export.stdout.take().context("stdout")?).lines();
    let total = pg.rows as usize;
    let mut keys = std::collections::HashSet::with_capacity(total);
    let mut arrivals: Vec<Instant> = Vec::with_capacity(total);
    let mut killed_at = None;
    lines.next().context("the export's header")??;
    for line in lines {
        let line = line?;
        arrivals.push(Instant::now());
        keys.insert(line);
        if killed_at.is_none() && arrivals.len() == total / 2 {
            let victim = replica_of(export.id(), &replicas)?;
            replicas[victim].stop();
            killed_at = Some(arrivals.len());
        }
    }
    ensure!(export.wait()?.success(), "the export failed");
    let _ = registry.kill();
    let _ = registry.wait();
    let killed = killed_at.context("the export ended before half its rows")?;
    let rate = |from: usize, to: usize| {
        let seconds = (arrivals[to - 1] - arrivals[from]).as_secs_f64();
        (to - from) as f64 / seconds.max(1e-9)
    };
    let gap = arrivals[killed - 1..].windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    Ok(FailOver {
        before: rate(0, killed),
        gap,
        after: rate(killed, arrivals.len()),
        exact: keys.len() == total && arrivals.len() == total,
    })
}

/// Which of `replicas` the process `pid` is connected to, from `ss`.
fn replica_of(pid: u32, replicas: &[PaymentProcess]) -> Result<usize> {
    let output = Command::new("ss").args(["-tnpH", "state", "established"]).output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let ports: Vec<String> =
        replicas.iter().map(|r| r.url.rsplit(':').next().unwrap_or("").to_owned()).collect();
    for line in text.lines().filter(|l| l.contains(&format!("pid={pid},"))) {
        let peer = line.split_whitespace().nth(3).unwrap_or("");
        if let Some(i) = ports.iter().position(|p| peer.ends_with(&format!(":{p}"))) {
            return Ok(i);
        }
    }
    bail!("the export's connection to a replica was not found")
}

fn psql_command(url: &str) -> Result<Command> {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .context("no PostgreSQL under /usr/lib/postgresql: run scripts/install-tools.sh")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/psql")))
        .filter(|p| p.exists())
        .max()
        .context("no psql under /usr/lib/postgresql")?;
    let mut command = Command::new(bin);
    command.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]);
    Ok(command)
}

fn psql(url: &str, sql: &str) -> Result<()> {
    let status = psql_command(url)?.args(["-c", sql]).stdout(Stdio::null()).status()?;
    ensure!(status.success(), "psql failed: {sql}");
    Ok(())
}

fn psql_output(url: &str, sql: &str) -> Result<String> {
    let output = psql_command(url)?.args(["-A", "-t", "-c", sql]).output()?;
    ensure!(output.status.success(), "psql failed: {sql}");
    Ok(String::from_utf8(output.stdout)?)
}

/// A payment domain on a server of its own loading `customers` x
/// `quarters` generated rows into it (the load not timed; WAL minimal, as
/// for a bulk load), then streaming every row to a slow reader.
pub(crate) async fn large_stream(data: &Path, customers: u64, quarters: u32) -> Result<Streamed> {
    std::fs::create_dir_all(data)?;
    mesh_grpc::auth::issuer::LocalIssuer::open_or_create(&data.join("issuer"))?;
    mesh_grpc::private_files::create_secret(&data.join("pseudonym.key"))?;
    let server = TestServer::start_with("-c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=8GB");
    let scratch = tempfile::tempdir_in(data)?;
    let generator = Generator { customers, quarters, ..Generator::default() };
    let shipped = crate::ingest::shipped(&data.join(format!("large-{customers}x{quarters}")), generator)?;
    let mut args = vec!["--database-url".to_owned(), server.url().to_owned(), "--data-dir".to_owned()];
    args.extend([
        scratch.path().display().to_string(),
        "--product".into(),
        shipped.payment.display().to_string(),
    ]);
    let mut domain = PaymentProcess::start(data, "http://127.0.0.1:9", &args)?;
    let streamed = domain.streaming_peak(&crate::mesh::payment_token(&data.join("issuer"))?).await;
    domain.stop();
    streamed
}

/// The figures of this group (`--only postgres`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let shipped = crate::ingest::shipped(&run.data, run.generator)?;
    let pg = Postgres::start(&shipped)?;
    let copy_s = pg.bare_copy(&shipped)?;
    let (load, copy) = (rate(pg.rows, pg.load_seconds), rate(pg.rows, copy_s));
    figures.push(Figure {
        name: "PostgreSQL: load of the file into payment (COPY, index, quality)",
        measured: per_second(load),
        baseline: format!("{} bare \\copy", per_second(copy)),
        ratio: Some(load / copy),
        target: ">= 0.5",
        met: Some(load / copy >= 0.5),
    });
    let mut domain = pg.domain(&run.data, &shipped)?;
    let psql_s = pg.psql_export()?;
    let cli_s = cli_export(&run.mesh.registry, &run.mesh.token, &domain.url)?;
    let (cli, psql) = (rate(pg.rows, cli_s), rate(pg.rows, psql_s));
    figures.push(Figure {
        name: "PostgreSQL: mesh query --format csv > /dev/null",
        measured: per_second(cli),
        baseline: format!("{} psql \\copy", per_second(psql)),
        ratio: Some(cli / psql),
        target: ">= 0.8",
        met: Some(cli / psql >= 0.8),
    });
    figures.push(
        crate::latency::selective_figure("PostgreSQL: selective query p50 / p99", &domain.url, run).await?,
    );
    let streamed = domain.streaming_peak(&crate::mesh::payment_token(&run.data.join("issuer"))?).await?;
    let (idle, peak) = (streamed.idle, streamed.peak);
    figures.push(Figure {
        name: "PostgreSQL: peak RSS of payment streaming to a slow reader",
        measured: format!("{peak:.1} MiB"),
        baseline: format!("{idle:.1} MiB idle"),
        ratio: None,
        target: "< 128 MiB",
        met: Some(peak < 128.0),
    });
    domain.stop();
    let fail_over = fail_over(&run.data, &pg, &shipped, &run.mesh.token)?;
    figures.push(Figure {
        name: "PostgreSQL: export with its replica killed half-way, gap",
        measured: format!("{} gap", ms(fail_over.gap)),
        baseline: format!("{} before", per_second(fail_over.before)),
        ratio: Some(fail_over.after / fail_over.before),
        target: "report",
        met: None,
    });
    figures.push(Figure {
        name: "  rows after the fail-over, each exactly once",
        measured: per_second(fail_over.after),
        baseline: per_second(fail_over.before),
        ratio: Some(fail_over.after / fail_over.before),
        target: "exactly once",
        met: Some(fail_over.exact),
    });
    Ok(figures)
}

/// The figure of `--only postgres-stream`: every row of the scale
/// `generator` makes, streamed from PostgreSQL to a slow reader.
pub(crate) async fn large_stream_figures(data: &Path, generator: Generator) -> Result<Vec<Figure>> {
    let streamed = large_stream(data, generator.customers, generator.quarters).await?;
    anyhow::ensure!(
        streamed.rows == generator.rows(),
        "{} rows of {} streamed",
        streamed.rows,
        generator.rows()
    );
    Ok(vec![Figure {
        name: "PostgreSQL: peak RSS of payment streaming every row to a slow reader",
        measured: format!("{:.1} MiB after {} rows", streamed.peak, streamed.rows),
        baseline: format!("{:.1} MiB idle", streamed.idle),
        ratio: None,
        target: "< 128 MiB",
        met: Some(streamed.peak < 128.0),
    }])
}
