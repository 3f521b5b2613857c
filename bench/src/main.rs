//! `mesh-bench`: builds a mesh with generated data and prints the figures of
//! its data path, each as a ratio against a baseline measured in the same
//! run (absolute times alone mean little on a shared machine).
//!
//! ```sh
//! cargo build --release --bins && target/release/mesh-bench            # default data set
//! cargo build --release --bins && target/release/mesh-bench --full     # the real file's scale
//! ```

mod arrow;
mod events;
mod exchange;
mod governance;
mod hostile;
mod ingest;
mod insight_rust;
mod latency;
mod memory;
mod mesh;
mod observability;
mod postgres;
mod product_files;
mod readlog;
mod report;
mod security;
mod sql;
mod stream;
mod web;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use woori_data::Generator;

use report::{Figure, print};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Group {
    /// Full-table streams: typed client and `mesh query --format csv`.
    Stream,
    /// The selective query's latency.
    Latency,
    /// Registry GetProduct under load.
    Registry,
    /// Peak RSS of the CLI and of a domain.
    Memory,
    /// Arrow Flight into pyarrow, against pyarrow's own Flight server over
    /// the same SQLite file and `mesh query --format csv`.
    Arrow,
    /// SQL: ADBC Flight SQL against ADBC PostgreSQL, a join through `mesh
    /// sql` against DuckDB over Parquet, the memory of an aggregate and of
    /// an Arrow stream to a slow reader.
    Sql,
    /// Ingestion into the payment domain.
    Ingest,
    /// The insight rebuild.
    Insight,
    /// Full streams and the selective query with TLS and tokens against
    /// plaintext without tokens.
    Security,
    /// The payment domain on PostgreSQL: load, export, selective query,
    /// memory, replica fail-over.
    Postgres,
    /// REST exports, the product page and the browser preview.
    Web,
    /// Reads under an agreement (lookup, pseudonyms, audit) against the
    /// owner's ungoverned reads.
    Governance,
    /// Events: a change to its webhook against a plain POST; revocation to
    /// enforcement; 1,000 Watch streams' fan-out, memory and GetProduct rate.
    Events,
    /// 10,000 refused reads with 4 MB filters: the read log's size and the
    /// lease renewals meanwhile.
    ReadLog,
    /// A call to a domain with token exchange against one with a domain
    /// token held.
    Exchange,
    /// `mesh up` under 600 idle streams and 64 concurrent exports.
    Hostile,
    /// payment.card_spending served from its product file against the same
    /// product declared in Rust: export, selective query, start to serving.
    ProductFiles,
    /// Metrics on and traces exported against both off (export, selective
    /// query); a scrape under 600 idle streams.
    Observability,
    /// Alone, and only when named: the payment domain on PostgreSQL
    /// streaming the scale given (`--customers 12500000` for 50 million
    /// rows, generated straight into the database) to a slow reader.
    PostgresStream,
}

impl Group {
    /// What stderr says while the group runs.
    fn doing(self) -> &'static str {
        match self {
            Group::Stream => "streaming...",
            Group::Latency => "latency...",
            Group::Registry => "registry...",
            Group::Memory => "memory...",
            Group::Arrow => "arrow flight into pyarrow...",
            Group::Sql => "sql: ADBC, a join, memory...",
            Group::Ingest => "ingestion...",
            Group::Insight => "insight...",
            Group::Security => "TLS and tokens against plaintext without tokens...",
            Group::Postgres => "postgresql...",
            Group::Web => "web: REST exports, the product page, the browser preview...",
            Group::Governance => "reads under agreements against the owner's...",
            Group::Events => "events: webhooks, revocations, 1,000 watch streams...",
            Group::ReadLog => "a flood of refused reads with 4 MB filters...",
            Group::Exchange => "token exchange...",
            Group::Hostile => "hostile load (its own mesh up)...",
            Group::ProductFiles => "product files: generic server against compiled, start to serving...",
            Group::Observability => "metrics and traces on against off; a scrape under 600 idle streams...",
            Group::PostgresStream => "generating into PostgreSQL and streaming it to a slow reader...",
        }
    }

    /// Measures this group's figures against the run's mesh.
    async fn measure(self, run: &Run) -> Result<Vec<Figure>> {
        match self {
            Group::Stream => stream::figures(run).await,
            Group::Latency => latency::figures(run).await,
            Group::Registry => latency::registry_figures(run).await,
            Group::Memory => memory::figures(run).await,
            Group::Arrow => arrow::figures(run).await,
            Group::Sql => sql::figures(run).await,
            Group::Ingest => ingest::figures(run).await,
            Group::Insight => ingest::insight_figures(run).await,
            Group::Security => security::figures(run).await,
            Group::Postgres => postgres::figures(run).await,
            Group::Web => web::figures(run).await,
            Group::Governance => governance::figures(run).await,
            Group::Events => events::figures(run).await,
            Group::ReadLog => readlog::figures(run).await,
            Group::Exchange => exchange::figures(run).await,
            Group::Hostile => hostile::figures(run).await,
            Group::ProductFiles => product_files::figures(run).await,
            Group::Observability => observability::figures(run).await,
            Group::PostgresStream => postgres::large_stream_figures(&run.data, run.generator).await,
        }
    }
}

/// What every group measures against: the mesh and the run's settings.
pub(crate) struct Run {
    mesh: mesh::Mesh,
    data: PathBuf,
    generator: Generator,
    customers: u64,
    quarters: u32,
    calls: usize,
    hostile_customers: u64,
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
        eprintln!("{} ({scale})", Group::PostgresStream.doing());
        print(&postgres::large_stream_figures(&data, generator).await?, &scale);
        return Ok(());
    }
    eprintln!("preparing the mesh over {} ({scale}; the first run generates the data)", data.display());
    let mesh = mesh::Mesh::start(&data, generator, mesh::Security::Tokens).await?;
    let run = Run {
        mesh,
        data,
        generator,
        customers,
        quarters: args.quarters,
        calls: args.calls,
        hostile_customers: args.hostile_customers,
    };
    let mut figures = Vec::new();
    for &group in Group::value_variants() {
        if group != Group::PostgresStream && (args.only.is_empty() || args.only.contains(&group)) {
            eprintln!("{}", group.doing());
            figures.extend(group.measure(&run).await?);
        }
    }
    print(&figures, &scale);
    Ok(())
}
