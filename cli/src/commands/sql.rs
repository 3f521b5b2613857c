//! `mesh sql "SELECT ..."`: SQL over every product you can see, planned
//! here and read from each owning domain with a token for that domain
//! alone, so each owner's agreement with you holds; `mesh sql serve`: the
//! same engine as a Flight SQL service for ADBC/JDBC tools.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use async_trait::async_trait;
use futures_util::StreamExt;
use mesh_contracts::catalog::ListProductsRequest;
use mesh_rows::Cell;
use mesh_sql::Replicas;
use mesh_sql::engine::cells::BatchCells;
use mesh_sql::engine::{Engine, EngineSettings, Mesh, parse_bytes, status_of};
use tonic::Status;

use super::query::{Format, quiet_on_broken_pipe};
use super::query_arrow::{read_settings, replicas};
use crate::batch_file::{BatchFile, check_output};
use crate::cli::Cli;
use crate::registry::{Registry, Target};
use crate::rows::Sink;
use crate::style;

/// Flags of `mesh sql`.
///
/// Examples:
///   mesh sql 'SELECT count(*) FROM "payment.card_spending"'
///   mesh sql 'SELECT c.life_stage, sum(p.tot_use_am) AS spent
///             FROM "customer.profiles" c JOIN "payment.card_spending" p USING (bas_yh, seq)
///             GROUP BY 1 ORDER BY 2 DESC'
///   mesh sql --explain 'SELECT seq FROM "payment.card_spending" WHERE tot_use_am > 1000000'
///   mesh sql --format parquet 'SELECT * FROM payment.card_spending' > spending.parquet
///   mesh sql serve --listen 127.0.0.1:50070
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, verbatim_doc_comment)]
pub(crate) struct SqlArgs {
    /// Serve the engine over Flight SQL instead of running a query.
    #[command(subcommand)]
    pub command: Option<SqlCommand>,
    /// One SELECT. Tables are product ids, quoted (`"payment.card_spending"`),
    /// or a domain and a product (`payment.card_spending`).
    pub query: Option<String>,
    /// Output format [default: table on a terminal, csv otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Print the plan instead of running it: each `MeshScan` line names the
    /// product, the domain endpoint, and the columns, filter and limit
    /// pushed into that domain's read.
    #[arg(long)]
    pub explain: bool,
    /// Rows a table shows at most; the rest are counted, not printed.
    #[arg(long, default_value_t = 50)]
    pub max_rows: usize,
    /// End the query with an error when a domain sends nothing for this
    /// long once rows have started, e.g. `30s`.
    #[arg(long, env = "MESH_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Memory joins, aggregates and sorts may hold, e.g. `512MiB`; a query
    /// needing more spills to disk where it can, else fails.
    #[arg(long, env = "MESH_SQL_MEMORY_LIMIT", default_value = "1GiB", value_parser = parse_bytes)]
    pub memory_limit: usize,
}

/// `mesh sql` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SqlCommand {
    /// Serve SQL over Flight SQL (ADBC, JDBC, pyarrow): clients send their
    /// sign-in token, and every read carries it, exchanged for each domain.
    ///
    /// Examples:
    ///   mesh sql serve
    ///   mesh sql serve --addr 0.0.0.0:50070 --tls-cert sql.pem --tls-key sql-key.pem \
    ///     --auth-oidc-issuer https://sso.example.com/realms/cards
    #[command(verbatim_doc_comment)]
    Serve(mesh_sql::server::ServeArgs),
}

impl SqlArgs {
    /// Whether this runs a query with the CLI's own token (not `serve`).
    pub(crate) fn calls_services(&self) -> bool {
        self.command.is_none()
    }
}

/// Runs `mesh sql`.
pub(crate) async fn run(cli: &Cli, args: &SqlArgs) -> Result<()> {
    if let Some(SqlCommand::Serve(serve)) = &args.command {
        return mesh_sql::server::serve(serve, cli.primary_registry(), cli.timeout).await;
    }
    let Some(sql) = args.query.as_deref() else {
        bail!(
            "give a query, e.g. `mesh sql 'SELECT count(*) FROM \"payment.card_spending\"'`, or run `mesh sql serve`"
        )
    };
    let format =
        args.format.unwrap_or(if std::io::stdout().is_terminal() { Format::Table } else { Format::Csv });
    if matches!(format, Format::Arrow | Format::Parquet) {
        check_output(format)?;
    }
    let settings =
        EngineSettings::new(read_settings(cli, args.idle_timeout), args.memory_limit).map_err(refused)?;
    let engine =
        Engine::new(Arc::new(CliMesh { cli: cli.settings_only() }), &settings).await.map_err(refused)?;
    if args.explain {
        println!("{}", engine.explain(sql).await.map_err(refused)?);
        return Ok(());
    }
    let mut batches = engine.run(sql).await.map_err(refused)?;
    let schema = batches.schema();
    let result = match format {
        Format::Arrow | Format::Parquet => {
            let mut file = BatchFile::create(format, &schema)?;
            while let Some(batch) = batches.next().await {
                file.write(&batch.map_err(|e| refused(status_of(&e)))?)?;
            }
            file.finish()
        }
        _ => {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            let mut sink = Sink::with_names(format, &names, args.max_rows)?;
            while let Some(batch) = batches.next().await {
                let rows = BatchCells::new(&batch.map_err(|e| refused(status_of(&e)))?);
                let mut cells: Vec<Cell<'_>> = Vec::new();
                for row in 0..rows.rows() {
                    rows.row(row, &mut cells);
                    sink.row(&cells)?;
                }
                sink.end_batch()?;
            }
            sink.finish(false)
        }
    };
    result.or_else(quiet_on_broken_pipe)
}

/// A refusal or failure of the engine or a domain, in the CLI's words.
fn refused(status: Status) -> anyhow::Error {
    anyhow!("{}", style::safe_lines(status.message()))
}

/// The mesh as the CLI's caller sees it: the registry's catalog and the
/// caller's token exchanged for each domain (kept in the profile).
struct CliMesh {
    cli: Cli,
}

#[async_trait]
impl Mesh for CliMesh {
    async fn products(&self) -> Result<Vec<String>, Status> {
        let products =
            on_this_thread(async { Registry::of(&self.cli)?.products(ListProductsRequest::default()).await })
                .map_err(unavailable)?;
        Ok(products.into_iter().map(|p| p.product_id).collect())
    }

    async fn replicas(&self, product: &str) -> Result<Replicas, Status> {
        let target = on_this_thread(Target::resolve(&self.cli, product, None)).map_err(unavailable)?;
        Ok(replicas(&target))
    }
}

/// Runs one of the CLI's registry lookups to its end on this thread: they
/// are not `Send` futures (their paging closures borrow across awaits), and
/// the engine asks from its own tasks.
fn on_this_thread<T>(lookup: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(lookup))
}

fn unavailable(error: anyhow::Error) -> Status {
    Status::unavailable(format!("{error:#}"))
}
