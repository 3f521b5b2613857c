//! Arrow Flight: the whole of payment.card_spending read into a pyarrow
//! table over the payment domain's Flight service, against pyarrow's own
//! Flight server over the same SQLite file and against `mesh query
//! --format csv`; and an analyst's governed read (an agreement for every
//! column, identifiers as pseudonyms, a row scope) against the owner's:
//! the analyst's reads after the first (the domain keeps the sorted read)
//! and, reported beside them, the first (sorted from the table).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};

use crate::Run;
use crate::report::{Figure, per_second};
use crate::stream::{cli_csv, rate};

/// Rounds each reader gets; the best counts.
pub(crate) const ROUNDS: usize = 3;

/// The Python of the Arrow tools (`.tools/arrow-venv`).
pub(crate) fn python() -> Result<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/arrow-venv/bin/python");
    ensure!(python.exists(), "{} is missing: run scripts/install-tools.sh", python.display());
    Ok(python)
}

/// A script of `bench/python/`.
pub(crate) fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join(name)
}

/// pyarrow reading `product` at `location` (with `token`): rows, seconds.
fn pyarrow_read(location: &str, product: &str, token: Option<&str>) -> Result<(u64, f64)> {
    let output = Command::new(python()?)
        .arg(script("flight_read.py"))
        .args([location, product])
        .args(token)
        .output()?;
    ensure!(output.status.success(), "the pyarrow read failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout)?;
    let (rows, seconds) = text.trim().split_once(' ').context("no `rows seconds` line")?;
    Ok((rows.parse()?, seconds.parse()?))
}

/// The best rate of `ROUNDS` reads after one read not counted (every
/// reader measured warm), and the rows each read.
pub(crate) fn best(read: impl Fn() -> Result<(u64, f64)>) -> Result<(u64, f64)> {
    let [best] = best_in_turns([&read as &dyn Fn() -> Result<(u64, f64)>])?;
    Ok(best)
}

/// Like [`best`] for several readers taking turns, round after round, so
/// that a while the machine runs slower weighs on each of them alike rather
/// than on whichever was measured then.
pub(crate) fn best_in_turns<const N: usize>(
    reads: [&dyn Fn() -> Result<(u64, f64)>; N],
) -> Result<[(u64, f64); N]> {
    for read in reads {
        read()?;
    }
    let mut best = [(0, 0f64); N];
    for _ in 0..ROUNDS {
        for (read, best) in reads.iter().zip(&mut best) {
            let (rows, seconds) = read()?;
            *best = (rows, best.1.max(rate(rows, seconds)));
        }
    }
    Ok(best)
}

/// Minor page faults of this process so far (`/proc/self/stat`).
fn minor_faults() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let fields = stat.rsplit_once(')').context("no command in /proc/self/stat")?.1;
    // minflt is the tenth field: the eighth after the command's `)`.
    Ok(fields.split_whitespace().nth(7).context("no minflt in /proc/self/stat")?.parse()?)
}

/// pyarrow's Flight server over the SQLite file at `path`, table `table`.
struct BaselineServer(std::process::Child);

impl BaselineServer {
    fn start(path: &Path, table: &str) -> Result<(Self, String)> {
        let mut child = Command::new(python()?)
            .arg(script("sqlite_flight_server.py"))
            .arg(path)
            .arg(table)
            .stdout(Stdio::piped())
            .spawn()?;
        let mut port = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut port)?;
        let server = Self(child);
        Ok((server, format!("grpc+tcp://127.0.0.1:{}", port.trim())))
    }
}

impl Drop for BaselineServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The analyst's row scope: checked on every row, keeping them all, so
/// both readers deliver the same rows.
const ANALYST_SCOPE: &str = r#"bas_yh != """#;

/// Rates of reading the whole product into pyarrow.
struct Governed {
    /// The owner's best.
    owner: f64,
    /// The analyst's first read of the load: sorted in the analyst's order
    /// from the table.
    first: f64,
    /// The analyst's best of the reads after it (the sorted read kept).
    again: f64,
}

/// The owner's and an analyst's rates reading the whole product into
/// pyarrow, alternating after the analyst's first read.
async fn governed(run: &Run, location: &str) -> Result<Governed> {
    use crate::governance::{agreement, at_payment, until_served};
    let issuer = mesh_grpc::auth::issuer::LocalIssuer::open(&run.data.join("issuer"))?;
    let analyst = "bench-arrow-analyst";
    agreement(&run.mesh, &issuer, analyst, false, ANALYST_SCOPE).await?;
    until_served(&run.mesh.payment_url, &at_payment(&issuer, analyst, &["analyst"])?).await?;
    let audience = mesh_grpc::auth::exchange::domain_audience("payment");
    let token = |subject: &str, role: &str| {
        issuer.issue(subject, &[role.to_owned()], std::time::Duration::from_secs(3600), &audience)
    };
    let (owner_token, analyst_token) =
        (token("bench-arrow-owner", "owner:payment")?, token(analyst, "analyst")?);
    let (first_rows, seconds) = pyarrow_read(location, "payment.card_spending", Some(&analyst_token))?;
    let first = rate(first_rows, seconds);
    let (mut owner, mut again) = (0f64, 0f64);
    for _ in 0..ROUNDS {
        let (rows, seconds) = pyarrow_read(location, "payment.card_spending", Some(&owner_token))?;
        owner = owner.max(rate(rows, seconds));
        let (scoped, seconds) = pyarrow_read(location, "payment.card_spending", Some(&analyst_token))?;
        ensure!(
            scoped == rows && first_rows == rows,
            "the analyst read {first_rows} then {scoped} rows and the owner {rows}: the scope keeps them all"
        );
        again = again.max(rate(scoped, seconds));
    }
    Ok(Governed { owner, first, again })
}

/// The figures of this group (`--only arrow`).
pub(crate) async fn figures(run: &Run) -> Result<Vec<Figure>> {
    let rows = run.mesh.payment.data_status()?.row_count as u64;
    let token = crate::mesh::payment_token(&run.data.join("issuer"))?;
    let location = run.mesh.payment_url.replacen("http://", "grpc+tcp://", 1);
    // The Flight read and the CLI's csv take turns: both warm, best of as
    // many rounds each.
    let [(got, mesh), (_, cli)] =
        best_in_turns([&|| pyarrow_read(&location, "payment.card_spending", Some(&token)), &|| {
            cli_csv(&run.mesh.registry, &run.mesh.token, rows)
        }])?;
    ensure!(got == rows, "the mesh's Flight gave {got} of {rows} rows");
    // The mesh serves in this process: its page faults during one more read
    // are mostly the serving domain's, the rest of the mesh idle (pyarrow
    // is a process of its own).
    let before = minor_faults()?;
    let (got, _) = pyarrow_read(&location, "payment.card_spending", Some(&token))?;
    ensure!(got == rows, "the mesh's Flight gave {got} of {rows} rows");
    let faults = minor_faults()?.saturating_sub(before);
    let (server, baseline_location) =
        BaselineServer::start(&run.data.join("payment/payment.sqlite"), "card_spending")?;
    let (got, baseline) = best(|| pyarrow_read(&baseline_location, "card_spending", None))?;
    drop(server);
    ensure!(got == rows, "the pyarrow server gave {got} of {rows} rows");
    let Governed { owner, first, again } = governed(run, &location).await?;
    Ok(vec![
        Figure {
            name: "Arrow DoGet of payment.card_spending into pyarrow",
            measured: per_second(mesh),
            baseline: format!("{} pyarrow server over SQLite", per_second(baseline)),
            ratio: Some(mesh / baseline),
            target: ">= 5",
            met: Some(mesh / baseline >= 5.0),
        },
        Figure {
            name: "  the same, against mesh query --format csv",
            measured: per_second(mesh),
            baseline: format!("{} csv", per_second(cli)),
            ratio: Some(mesh / cli),
            target: ">= 1.5",
            met: Some(mesh / cli >= 1.5),
        },
        Figure {
            name: "  page faults in the mesh process during one such read",
            measured: faults.to_string(),
            baseline: "-".to_owned(),
            ratio: None,
            target: "report",
            met: None,
        },
        Figure {
            name: "governed Arrow stream (analyst, pseudonyms, scope) against the owner's",
            measured: per_second(again),
            baseline: format!("{} owner", per_second(owner)),
            ratio: Some(again / owner),
            target: ">= 0.9",
            met: Some(again / owner >= 0.9),
        },
        Figure {
            name: "  the analyst's first read of the load (sorted from the table)",
            measured: per_second(first),
            baseline: format!("{} owner", per_second(owner)),
            ratio: Some(first / owner),
            target: "report",
            met: None,
        },
    ])
}
