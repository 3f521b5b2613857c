//! SQL over the mesh: the ADBC Flight SQL driver reading a whole product
//! through `mesh sql serve`, against `adbc-driver-postgresql` reading the
//! same rows straight from PostgreSQL (no governance); `mesh sql` joining
//! and aggregating two products, against DuckDB running the same SQL over
//! Parquet exports of them (same results required); the memory of `mesh
//! sql` aggregating every row, and of the payment domain streaming Arrow to
//! a slow reader.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use mesh_sql::flight::{FlightQuery, FlightRead, ReadSettings};

use crate::Run;
use crate::arrow::{ROUNDS, best, python, script};
use crate::memory::{Streamed, on_bench_data, peak_rss_of, status_kib};
use crate::mesh::{served_url, sibling_binary};
use crate::postgres::Postgres;
use crate::report::{Figure, per_second};

/// The join of the issue: customers by life stage and quarter, with their
/// spending; `{customer}` and `{payment}` name the tables.
const JOIN: &str = "SELECT c.life_stage, p.bas_yh, count(*) AS customers, sum(p.tot_use_am) AS spent \
     FROM {customer} c JOIN {payment} p USING (bas_yh, seq) GROUP BY 1, 2 ORDER BY 1, 2";

/// `mesh sql serve` beside the bench's mesh.
struct SqlService {
    child: std::process::Child,
    url: String,
}

impl SqlService {
    fn start(run: &Run) -> Result<Self> {
        let mut child = Command::new(sibling_binary("mesh")?)
            .args(["--registry", &run.mesh.registry, "sql", "serve", "--addr", "127.0.0.1:0"])
            .args(["--auth-issuer", "mesh-local", "--auth-jwks"])
            .arg(run.data.join("issuer/jwks.json"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let url = served_url(&mut child, "mesh sql serve")?;
        Ok(Self { child, url })
    }
}

impl Drop for SqlService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `adbc_read.py` with `driver` at `uri`: rows, seconds.
fn adbc_read(driver: &str, uri: &str, query: &str, token: Option<&str>) -> Result<(u64, f64)> {
    let output = Command::new(python()?)
        .arg(script("adbc_read.py"))
        .args([driver, uri, query])
        .args(token)
        .output()?;
    ensure!(output.status.success(), "the ADBC read failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout)?;
    let (rows, seconds) = text.trim().split_once(' ').context("no `rows seconds` line")?;
    Ok((rows.parse()?, seconds.parse()?))
}

/// ADBC Flight SQL through the mesh against ADBC PostgreSQL: rates.
fn adbc_figure(run: &Run, rows: u64) -> Result<(f64, f64)> {
    let service = SqlService::start(run)?;
    let uri = service.url.replacen("http://", "grpc://", 1);
    let query = r#"SELECT * FROM "payment.card_spending""#;
    let (got, mesh) = best(|| adbc_read("flightsql", &uri, query, Some(&run.mesh.token)))?;
    ensure!(got == rows, "Flight SQL gave {got} of {rows} rows");
    let shipped = crate::ingest::shipped(&run.data, run.generator)?;
    let pg = Postgres::start(&shipped)?;
    let table = format!("SELECT * FROM payment.{}", pg.current_table()?);
    let (got, postgres) = best(|| adbc_read("postgresql", pg.url(), &table, None))?;
    ensure!(got == rows, "PostgreSQL gave {got} of {rows} rows");
    Ok((mesh, postgres))
}

/// `mesh` with the bench's registry and token, writing stdout to `out`.
fn mesh(run: &Run, args: &[&str], out: Stdio) -> Result<Command> {
    let mut command = Command::new(sibling_binary("mesh")?);
    command
        .args(["--registry", &run.mesh.registry])
        .args(args)
        .env("MESH_TOKEN", &run.mesh.token)
        .env("MESH_CACHE_DIR", std::env::temp_dir().join(format!("mesh-bench-cache-{}", std::process::id())))
        .stdout(out);
    Ok(command)
}

/// `mesh sql` running the join against DuckDB over Parquet exports:
/// seconds of each (best of [`ROUNDS`]), after checking both give the same
/// rows.
fn join_figure(run: &Run) -> Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let export = |product: &str, name: &str| -> Result<PathBuf> {
        let path = dir.path().join(name);
        let status = mesh(
            run,
            &["query", product, "--format", "parquet"],
            Stdio::from(std::fs::File::create(&path)?),
        )?
        .status()?;
        ensure!(status.success(), "exporting {product} failed");
        Ok(path)
    };
    let (customer, payment) = (
        export("customer.profiles", "customer.parquet")?,
        export("payment.card_spending", "payment.parquet")?,
    );
    let by_mesh = JOIN
        .replace("{customer}", r#""customer.profiles""#)
        .replace("{payment}", r#""payment.card_spending""#);
    let by_duckdb = JOIN.replace("{customer}", "customer").replace("{payment}", "payment");
    let (mut mesh_s, mut duckdb_s) = (f64::MAX, f64::MAX);
    let (mut mesh_rows, mut duckdb_rows) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let output = mesh(run, &["sql", "--format", "csv", &by_mesh], Stdio::piped())?.output()?;
        mesh_s = mesh_s.min(started.elapsed().as_secs_f64());
        ensure!(output.status.success(), "mesh sql failed: {}", String::from_utf8_lossy(&output.stderr));
        mesh_rows = String::from_utf8(output.stdout)?.lines().skip(1).map(str::to_owned).collect();
        let output = Command::new(python()?)
            .arg(script("duckdb_join.py"))
            .args([&customer, &payment])
            .arg(&by_duckdb)
            .output()?;
        ensure!(output.status.success(), "DuckDB failed: {}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8(output.stdout)?;
        let mut lines = text.lines();
        duckdb_s = duckdb_s.min(lines.next().context("no seconds")?.trim().parse()?);
        duckdb_rows = lines.map(str::to_owned).collect();
    }
    ensure!(
        !mesh_rows.is_empty() && mesh_rows == duckdb_rows,
        "the results differ:\n{mesh_rows:?}\n{duckdb_rows:?}"
    );
    Ok((mesh_s, duckdb_s))
}

/// Peak RSS (MiB) of `mesh sql` aggregating every row of payment by
/// quarter (sums, an average, a count), and of counting distinct customers
/// per quarter (a set of every customer number, held until the end).
fn aggregate_peaks(run: &Run) -> Result<(f64, f64)> {
    let sums = r#"SELECT bas_yh, count(*) AS n, sum(tot_use_am) AS spent, avg(crdsl_use_am) AS credit
        FROM "payment.card_spending" GROUP BY 1"#;
    let distinct =
        r#"SELECT bas_yh, count(DISTINCT seq) AS customers FROM "payment.card_spending" GROUP BY 1"#;
    let peak = |query: &str| peak_rss_of(mesh(run, &["sql", "--format", "csv", query], Stdio::null())?);
    Ok((peak(sums)?, peak(distinct)?))
}

/// The payment domain's RSS while it streams every row over Flight to a
/// reader that pauses after each batch.
async fn arrow_slow_reader(run: &Run) -> Result<Streamed> {
    let domain = on_bench_data(&run.data)?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = status_kib(domain.pid(), "VmRSS")?;
    let token = crate::mesh::payment_token(&run.data.join("issuer"))?;
    let replicas = mesh_sql::Replicas {
        endpoint: domain.url.clone(),
        fallbacks: Vec::new(),
        credentials: mesh_grpc::Credentials::token(&token)?,
    };
    let settings = ReadSettings {
        timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        on_failover: std::sync::Arc::new(|_: &mesh_sql::flight::Failover<'_>| {}),
    };
    let query = FlightQuery { product: "payment.card_spending".into(), ..FlightQuery::default() };
    let mut read = FlightRead::plan(replicas, &query, settings).await?;
    let mut rows = 0;
    while let Some(batch) = read.next().await? {
        rows += batch.num_rows() as u64;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let peak = status_kib(domain.pid(), "VmHWM")?;
    Ok(Streamed { idle: idle as f64 / 1024.0, peak: peak as f64 / 1024.0, rows })
}

/// The figures of this group (`--only sql`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let rows = run.mesh.payment.data_status()?.row_count as u64;
    let (mesh, postgres) = adbc_figure(run, rows)?;
    let (join_s, duckdb_s) = join_figure(run)?;
    let (aggregate, distinct) = aggregate_peaks(run)?;
    let streamed = arrow_slow_reader(run).await?;
    ensure!(streamed.rows == rows, "the slow reader got {} of {rows} rows", streamed.rows);
    let growth = streamed.peak - streamed.idle;
    Ok(vec![
        Figure {
            name: "ADBC Flight SQL SELECT * FROM payment.card_spending into pyarrow",
            measured: per_second(mesh),
            baseline: format!("{} adbc-driver-postgresql", per_second(postgres)),
            ratio: Some(mesh / postgres),
            target: ">= 0.8",
            met: Some(mesh / postgres >= 0.8),
        },
        Figure {
            name: "mesh sql: customer x payment by life stage and quarter",
            measured: format!("{join_s:.2} s"),
            baseline: format!("{duckdb_s:.2} s DuckDB over Parquet exports, same rows"),
            ratio: Some(join_s / duckdb_s),
            target: "<= 3",
            met: Some(join_s / duckdb_s <= 3.0),
        },
        Figure {
            name: "mesh sql aggregating every row of payment: peak RSS",
            measured: format!("{aggregate:.1} MiB"),
            baseline: format!("{rows} rows"),
            ratio: None,
            target: "< 512 MiB",
            met: Some(aggregate < 512.0),
        },
        Figure {
            name: "  the same, counting distinct customers per quarter",
            measured: format!("{distinct:.1} MiB"),
            baseline: format!("{rows} rows"),
            ratio: None,
            target: "report",
            met: None,
        },
        Figure {
            name: "payment domain streaming Arrow to a slow reader: RSS growth",
            measured: format!("+{growth:.1} MiB"),
            baseline: format!("{:.1} MiB idle, {rows} rows", streamed.idle),
            ratio: None,
            target: "< +64 MiB",
            met: Some(growth < 64.0),
        },
    ])
}
