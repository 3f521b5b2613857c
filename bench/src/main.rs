//! `mesh-bench`: builds a mesh with generated data and prints the figures of
//! its data path, each as a ratio against a baseline measured in the same
//! run (absolute times alone mean little on a shared machine).
//!
//! ```sh
//! cargo build --release --bins && target/release/mesh-bench            # default data set
//! cargo build --release --bins && target/release/mesh-bench --full     # the real file's scale
//! ```

mod exchange;
mod governance;
mod hostile;
mod ingest;
mod latency;
mod memory;
mod mesh;
mod postgres;
mod readlog;
mod security;
mod stream;
mod web;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use mesh_contracts::catalog::ProductView;
use woori_data::Generator;

use stream::rate;

/// Benchmarks of the mesh's data path.
#[derive(Debug, Parser)]
struct Args {
    /// Customers per quarter [default: 100,000; 1,350,000 with --full].
    #[arg(long)]
    customers: Option<u64>,
    /// Quarters.
    #[arg(long, default_value_t = 4)]
    quarters: u32,
    /// The real file's scale: 1,350,000 customers x 4 quarters (5.4 million rows).
    #[arg(long)]
    full: bool,
    /// Where generated data is kept between runs [default: target/bench-data/<scale>].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Sequential calls for the latency figure.
    #[arg(long, default_value_t = 500)]
    calls: usize,
    /// Customers per quarter of the mesh the hostile figures run against
    /// (its own `mesh up` process and data).
    #[arg(long, default_value_t = 25_000)]
    hostile_customers: u64,
    /// Measure only these groups of figures (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Group>,
}

/// The groups of figures, in the order they are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Group {
    /// Full-table streams: typed client and `mesh query --format csv`.
    Stream,
    /// The selective query's latency.
    Latency,
    /// Registry GetProduct under load.
    Registry,
    /// Peak RSS of the CLI and of a domain.
    Memory,
    /// Ingestion into the payment domain.
    Ingest,
    /// The insight rebuild.
    Insight,
    /// `mesh up` under 600 idle streams and 64 concurrent exports.
    Hostile,
    /// Full streams and the selective query with TLS and tokens against
    /// plaintext without tokens.
    Security,
    /// Reads under an agreement (lookup, pseudonyms, audit) against the
    /// owner's ungoverned reads; revocation to enforcement.
    Governance,
    /// REST exports, the product page and the browser preview.
    Web,
    /// 10,000 refused reads with 4 MB filters: the read log's size and the
    /// lease renewals meanwhile.
    ReadLog,
    /// A call to a domain with token exchange against one with a domain
    /// token held.
    Exchange,
    /// The payment domain on PostgreSQL: load, export, selective query,
    /// memory, replica fail-over.
    Postgres,
    /// Alone, and only when named: the payment domain on PostgreSQL
    /// streaming the scale given (`--customers 12500000` for 50 million
    /// rows, generated straight into the database) to a slow reader.
    PostgresStream,
}

/// One line of the report.
struct Figure {
    name: &'static str,
    measured: String,
    baseline: String,
    ratio: Option<f64>,
    target: &'static str,
    met: Option<bool>,
}

fn print(figures: &[Figure], scale: &str) {
    println!("\nmesh-bench, {scale}, {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!("{:<58} {:>22} {:>22} {:>8}  {:<10}", "figure", "measured", "baseline", "ratio", "target");
    for f in figures {
        let ratio = f.ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        let verdict = match f.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:<58} {:>22} {:>22} {:>8}  {:<10} {}",
            f.name, f.measured, f.baseline, ratio, f.target, verdict
        );
    }
}

fn per_second(value: f64) -> String {
    format!("{:.0} rows/s", value)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // Quiet unless RUST_LOG asks (e.g. `mesh_runtime::ingest=debug` for a load's phases).
    mesh_grpc::init_logging_at("warn");
    let customers = args.customers.unwrap_or(if args.full { 1_350_000 } else { 100_000 });
    let generator = Generator { customers, quarters: args.quarters, ..Generator::default() };
    let scale = format!("{} customers x {} quarters = {} rows", customers, args.quarters, generator.rows());
    let data = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/bench-data/{customers}x{}", args.quarters)));
    if args.only.contains(&Group::PostgresStream) {
        anyhow::ensure!(args.only.len() == 1, "--only postgres-stream runs alone (it needs no mesh)");
        eprintln!("generating {scale} into PostgreSQL and streaming it to a slow reader...");
        let streamed = postgres::large_stream(&data, customers, args.quarters).await?;
        anyhow::ensure!(
            streamed.rows == generator.rows(),
            "{} rows of {} streamed",
            streamed.rows,
            generator.rows()
        );
        let figure = Figure {
            name: "PostgreSQL: peak RSS of payment streaming every row to a slow reader",
            measured: format!("{:.1} MiB after {} rows", streamed.peak, streamed.rows),
            baseline: format!("{:.1} MiB idle", streamed.idle),
            ratio: None,
            target: "< 128 MiB",
            met: Some(streamed.peak < 128.0),
        };
        print(&[figure], &scale);
        return Ok(());
    }
    eprintln!("preparing the mesh over {} ({scale}; the first run generates the data)", data.display());
    let mesh = mesh::Mesh::start(&data, generator, mesh::Security::Tokens).await?;
    let mut figures = Vec::new();
    let wanted = |group: Group| args.only.is_empty() || args.only.contains(&group);

    if wanted(Group::Stream) {
        eprintln!("streaming...");
        let (rows, ceiling_s) = stream::in_process_scan(&mesh.payment).await?;
        let (typed_rows, typed_s) = stream::typed_client(&mesh.payment_url, &mesh.at("payment")?).await?;
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
        let (_, cli_s) = stream::cli_csv(&mesh.registry, &mesh.token, rows)?;
        let cli = rate(rows, cli_s);
        figures.push(Figure {
            name: "mesh query --format csv > /dev/null (dynamic decoding)",
            measured: per_second(cli),
            baseline: per_second(typed),
            ratio: Some(cli / typed),
            target: ">= 0.6",
            met: Some(cli / typed >= 0.6),
        });
    }

    if wanted(Group::Latency) {
        eprintln!("latency...");
        let (query, empty) = latency::selective_query(
            &mesh.payment_url,
            &mesh.at("payment")?,
            "0000012345",
            "2024Q3",
            args.calls,
        )
        .await?;
        let ((q50, q99), (e50, e99)) = (latency::percentiles(query), latency::percentiles(empty));
        let ratio = q50.as_secs_f64() / e50.as_secs_f64();
        figures.push(Figure {
            name: "selective query (one customer, one quarter) p50 / p99",
            measured: format!("{} / {}", ms(q50), ms(q99)),
            baseline: format!("{} / {}", ms(e50), ms(e99)),
            ratio: Some(ratio),
            target: "p50 <= 3x",
            met: Some(ratio <= 3.0),
        });
    }

    if wanted(Group::Registry) {
        eprintln!("registry...");
        let fingerprint = latency::fingerprint(&mesh.registry, &mesh.credentials).await?;
        let held = fingerprint.as_str();
        let calls = [
            ("registry GetProduct, 64 in flight over 4 connections", "", ProductView::Full, true, ">= 0.6"),
            (
                "  the same, descriptor already held (as `mesh describe`)",
                held,
                ProductView::Full,
                true,
                ">= 0.6",
            ),
            (
                "  basic view, descriptor held (as `mesh query` resolves)",
                held,
                ProductView::Basic,
                true,
                ">= 0.6",
            ),
            (
                "  full, descriptor held, kept as bytes (registry's side)",
                held,
                ProductView::Full,
                false,
                "report",
            ),
        ];
        for (name, known, view, decode, target) in calls {
            let call = latency::GetProductCall { known_fingerprint: known.to_owned(), view, decode };
            let ((get_rate, get), (trivial_rate, trivial)) =
                latency::registry_load(&mesh.registry, &mesh.credentials, Duration::from_secs(2), 3, &call)
                    .await?;
            let ((_, get99), (_, trivial99)) = (latency::percentiles(get), latency::percentiles(trivial));
            let ratio = get_rate / trivial_rate;
            figures.push(Figure {
                name,
                measured: format!("{get_rate:.0}/s p99 {}", ms(get99)),
                baseline: format!("{trivial_rate:.0}/s p99 {}", ms(trivial99)),
                ratio: Some(ratio),
                target,
                met: decode.then_some(ratio >= 0.6),
            });
        }
    }

    if wanted(Group::Memory) {
        eprintln!("memory...");
        let cli_peak = memory::cli_ndjson(&mesh.registry, &mesh.token)?;
        figures.push(Figure {
            name: "peak RSS, mesh query --format ndjson, whole table",
            measured: format!("{cli_peak:.1} MiB"),
            baseline: "-".into(),
            ratio: None,
            target: "<= 64 MiB",
            met: Some(cli_peak <= 64.0),
        });
        let (first, restarted) = memory::domain_first_start(&data, customers, args.quarters)?;
        figures.push(Figure {
            name: "idle RSS, payment domain after its first load",
            measured: format!("{first:.1} MiB"),
            baseline: format!("{restarted:.1} MiB restarted"),
            ratio: Some(first / restarted),
            target: "<= 1.5",
            met: Some(first / restarted <= 1.5),
        });
        let (idle, peak) = memory::domain_streaming(&data, customers, args.quarters).await?;
        figures.push(Figure {
            name: "peak RSS, payment domain streaming to a slow reader",
            measured: format!("{peak:.1} MiB (+{:.1})", peak - idle),
            baseline: format!("{idle:.1} MiB idle"),
            ratio: None,
            target: "<= +64 MiB",
            met: Some(peak - idle <= 64.0),
        });
    }

    if wanted(Group::Ingest) {
        eprintln!("ingestion...");
        let file = ingest::source_file(&data, generator)?;
        let scratch = data.join(format!("scratch-{}", std::process::id()));
        let (loaded, load_s) = ingest::payment_ingest(&scratch, &file)?;
        let (inserted, insert_s) = ingest::bare_insert(&scratch, &file)?;
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
    }

    if wanted(Group::Insight) {
        eprintln!("insight...");
        let (joined, rebuild_s) = ingest::insight_rebuild(
            mesh.insight.as_ref().context("insight runs")?,
            &mesh.registry,
            &mesh.credentials,
        )
        .await?;
        let sources_s = ingest::source_streams(
            &mesh.customer_url,
            &mesh.payment_url,
            &mesh.at("customer")?,
            &mesh.at("payment")?,
        )
        .await?;
        figures.push(Figure {
            name: "insight rebuild (two streams, join, aggregate)",
            measured: per_second(rate(joined, rebuild_s)),
            baseline: per_second(rate(joined, sources_s)),
            ratio: Some(sources_s / rebuild_s),
            target: "report",
            met: None,
        });
    }

    if wanted(Group::Security) {
        eprintln!("TLS and tokens against plaintext without tokens...");
        let cost = security::measure(&data, generator, args.calls).await?;
        let throughput = cost.secure_rate / cost.open_rate;
        figures.push(Figure {
            name: "full stream with TLS + token (plaintext, no token)",
            measured: per_second(cost.secure_rate),
            baseline: per_second(cost.open_rate),
            ratio: Some(throughput),
            target: ">= 0.9",
            met: Some(throughput >= 0.9),
        });
        let latency = cost.secure_p50.as_secs_f64() / cost.open_p50.as_secs_f64();
        figures.push(Figure {
            name: "selective query p50 with TLS + token (plaintext, no token)",
            measured: ms(cost.secure_p50),
            baseline: ms(cost.open_p50),
            ratio: Some(latency),
            target: "<= 1.3",
            met: Some(latency <= 1.3),
        });
    }

    if wanted(Group::Postgres) {
        eprintln!("postgresql...");
        let file = ingest::source_file(&data, generator)?;
        let pg = postgres::Postgres::start(&file)?;
        let copy_s = pg.bare_copy(&file)?;
        let (load, copy) = (rate(pg.rows, pg.load_seconds), rate(pg.rows, copy_s));
        figures.push(Figure {
            name: "PostgreSQL: load of the file into payment (COPY, index, quality)",
            measured: per_second(load),
            baseline: format!("{} bare \\copy", per_second(copy)),
            ratio: Some(load / copy),
            target: ">= 0.5",
            met: Some(load / copy >= 0.5),
        });
        let mut domain = pg.domain(&data, &file)?;
        let psql_s = pg.psql_export()?;
        let cli_s = postgres::cli_export(&mesh.registry, &mesh.token, &domain.url)?;
        let (cli, psql) = (rate(pg.rows, cli_s), rate(pg.rows, psql_s));
        figures.push(Figure {
            name: "PostgreSQL: mesh query --format csv > /dev/null",
            measured: per_second(cli),
            baseline: format!("{} psql \\copy", per_second(psql)),
            ratio: Some(cli / psql),
            target: ">= 0.8",
            met: Some(cli / psql >= 0.8),
        });
        let (query, empty) =
            latency::selective_query(&domain.url, &mesh.at("payment")?, "0000012345", "2024Q3", args.calls)
                .await?;
        let ((q50, q99), (e50, e99)) = (latency::percentiles(query), latency::percentiles(empty));
        let ratio = q50.as_secs_f64() / e50.as_secs_f64();
        figures.push(Figure {
            name: "PostgreSQL: selective query p50 / p99",
            measured: format!("{} / {}", ms(q50), ms(q99)),
            baseline: format!("{} / {}", ms(e50), ms(e99)),
            ratio: Some(ratio),
            target: "p50 <= 3x",
            met: Some(ratio <= 3.0),
        });
        let streamed = domain.streaming_peak(&crate::mesh::payment_token(&data.join("issuer"))?).await?;
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
        let fail_over = postgres::fail_over(&data, &pg, &file, &mesh.token)?;
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
    }

    if wanted(Group::Web) {
        eprintln!("web: REST exports, the product page, the browser preview...");
        let rows = mesh.payment.data_status()?.row_count as u64;
        let (_, cli_s) = stream::cli_csv(&mesh.registry, &mesh.token, rows)?;
        let cli = rate(rows, cli_s);
        // REST calls a domain with a token for it alone.
        let payment_token = crate::mesh::payment_token(&data.join("issuer"))?;
        for (name, accept) in [
            ("REST export as NDJSON (whole payment.card_spending)", "application/x-ndjson"),
            ("REST export as CSV (whole payment.card_spending)", "text/csv"),
        ] {
            let (got, seconds) = web::rest_export(&mesh, &payment_token, accept).await?;
            anyhow::ensure!(got == rows, "{accept}: {got} of {rows} rows");
            let rest = rate(rows, seconds);
            figures.push(Figure {
                name,
                measured: per_second(rest),
                baseline: format!("{} csv", per_second(cli)),
                ratio: Some(rest / cli),
                target: ">= 0.8",
                met: Some(rest / cli >= 0.8),
            });
        }
        let (pages, jsons) = web::product_page(&mesh, args.calls.min(300)).await?;
        let ((page50, page99), (json50, _)) = (latency::percentiles(pages), latency::percentiles(jsons));
        figures.push(Figure {
            name: "product page rendered server-side p50 / p99",
            measured: format!("{} / {}", ms(page50), ms(page99)),
            baseline: format!("{} json", ms(json50)),
            ratio: Some(page50.as_secs_f64() / json50.as_secs_f64()),
            target: "p50 <= 20 ms",
            met: Some(page50 <= Duration::from_millis(20)),
        });
        let (shown, loaded) = web::browser_preview(&mesh, 7)?;
        figures.push(Figure {
            name: "browser preview of 50 rows after opening the page (median)",
            measured: ms(shown),
            baseline: format!("{} DOM ready", ms(loaded)),
            ratio: Some(shown.as_secs_f64() / loaded.as_secs_f64()),
            target: "<= 1 s",
            met: Some(shown <= Duration::from_secs(1)),
        });
    }

    if wanted(Group::Governance) {
        eprintln!("reads under agreements against the owner's...");
        let issuer = mesh_grpc::auth::issuer::LocalIssuer::open(&data.join("issuer"))?;
        let cost = governance::measure(&mesh, &issuer, args.calls).await?;
        let throughput = cost.governed_rate / cost.ungoverned_rate;
        figures.push(Figure {
            name: "governed full stream in pseudonym order: agreement, audit (owner)",
            measured: per_second(cost.governed_rate),
            baseline: per_second(cost.ungoverned_rate),
            ratio: Some(throughput),
            target: ">= 0.85",
            met: Some(throughput >= 0.85),
        });
        let latency = cost.governed_p50.as_secs_f64() / cost.ungoverned_p50.as_secs_f64();
        figures.push(Figure {
            name: "governed selective query p50 (owner)",
            measured: ms(cost.governed_p50),
            baseline: ms(cost.ungoverned_p50),
            ratio: Some(latency),
            target: "<= 1.3",
            met: Some(latency <= 1.3),
        });
        figures.push(Figure {
            name: "revocation to enforcement in the domain",
            measured: ms(cost.revocation),
            baseline: String::new(),
            ratio: None,
            target: "<= 5 s",
            met: Some(cost.revocation <= Duration::from_secs(5)),
        });
    }

    if wanted(Group::ReadLog) {
        eprintln!("a flood of refused reads with 4 MB filters...");
        let flood = readlog::flood(&mesh, &data, 10_000).await?;
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
    }

    if wanted(Group::Exchange) {
        eprintln!("token exchange...");
        let cost = exchange::measure(&mesh, args.calls.min(200)).await?;
        let first = cost.first_call.as_secs_f64() / cost.cached_call.as_secs_f64();
        figures.push(Figure {
            name: "first call to a domain, token exchanged (p50, new connection)",
            measured: ms(cost.first_call),
            baseline: ms(cost.cached_call),
            ratio: Some(first),
            target: "<= 2",
            met: Some(first <= 2.0),
        });
        let later = cost.later_call.as_secs_f64() / cost.direct_call.as_secs_f64();
        figures.push(Figure {
            name: "  later calls with the exchanged token (p50, against one the issuer made for payment)",
            measured: ms(cost.later_call),
            baseline: ms(cost.direct_call),
            ratio: Some(later),
            target: "<= 1.05",
            met: Some(later <= 1.05),
        });
    }

    if wanted(Group::Hostile) {
        eprintln!("hostile load (its own mesh up)...");
        let dir =
            PathBuf::from(format!("target/bench-data/hostile-{}x{}", args.hostile_customers, args.quarters));
        let h = hostile::run(&dir, args.hostile_customers, args.quarters).await?;
        figures.extend(hostile_figures(&h));
    }

    print(&figures, &scale);
    Ok(())
}

/// The report lines of the hostile run.
fn hostile_figures(h: &hostile::Hostile) -> Vec<Figure> {
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
