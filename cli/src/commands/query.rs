//! `mesh query PRODUCT`: finds the product in the catalog, calls the owning
//! domain directly and decodes the rows with the descriptor set the catalog
//! stores: no generated code for any product.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::ValueEnum;
use mesh_contracts::descriptor::type_name;
use mesh_contracts::descriptor::{ProductShape, RESUME_TOKEN_FIELD};
use mesh_contracts::product::QueryRequest;
use mesh_filter::ColumnList;
use mesh_grpc::bad_request::FieldProblem;
use mesh_grpc::codec::RawCodec;
use prost::Message;
use prost_reflect::{DynamicMessage, FieldDescriptor, Value};
use tonic::Streaming;

use crate::cli::Cli;
use crate::registry::Target;
use crate::rows::Sink;
use crate::style;
use mesh_rows::RowReader;

/// Flags of `mesh query`.
#[derive(Debug, clap::Args)]
pub(crate) struct QueryArgs {
    /// The product, e.g. `payment.card_spending`.
    pub product: String,
    /// Filter, e.g. `tot_use_am > 1000000 AND hous_sido_nm = "서울"`.
    #[arg(long, short)]
    pub filter: Option<String>,
    /// Columns to return, comma separated, e.g. `seq,tot_use_am`.
    #[arg(long, short, value_delimiter = ',')]
    pub select: Vec<String>,
    /// Order, e.g. `tot_use_am desc, seq`.
    #[arg(long)]
    pub order_by: Option<String>,
    /// Return at most this many rows.
    #[arg(long, short)]
    pub limit: Option<u64>,
    /// Output format [default: table on a terminal, csv otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Rows a table shows at most; the rest are counted, not printed.
    #[arg(long, default_value_t = 50)]
    pub max_rows: usize,
    /// Call this endpoint instead of the one in the catalog (e.g. when the
    /// registry is down): `http://127.0.0.1:50052`.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// End the query with an error when the domain sends nothing for this
    /// long once rows have started, e.g. `30s`.
    #[arg(long, env = "MESH_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
}

/// Output formats of `mesh query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A table (the default on a terminal), capped at `--max-rows`.
    Table,
    /// Comma-separated values with a header (the default in a pipe).
    Csv,
    /// One JSON array of row objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// An Arrow IPC stream (read over the domain's Arrow Flight service).
    Arrow,
    /// A Parquet file (read over Arrow Flight, written in row groups of
    /// 65,536 rows, Snappy-compressed).
    Parquet,
}

impl Format {
    /// The format's name on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Arrow => "arrow",
            Format::Parquet => "parquet",
        }
    }
}

/// Runs the query and writes the rows.
pub(crate) async fn run(cli: &Cli, args: &QueryArgs) -> Result<()> {
    if let Some(binary @ (Format::Arrow | Format::Parquet)) = args.format {
        crate::batch_file::check_output(binary)?;
    }
    let mut target = Target::resolve(cli, &args.product, args.endpoint.as_deref()).await?;
    let shape = target.shape()?;
    let mut columns = columns(&shape, &args.select)?;
    if let Some(filter) = args.filter.as_deref() {
        let fields = shape.row_type.fields().map(|f| (f.name().to_owned(), type_name(&f)));
        if let Err(error) = mesh_filter::parse(filter, &ColumnList::from_proto(fields)) {
            return Err(marked(&format!("filter: {}", error.message), filter, error.column));
        }
    }
    let format =
        args.format.unwrap_or(if std::io::stdout().is_terminal() { Format::Table } else { Format::Csv });
    let mut cap = RowCap::new(format, args.limit, args.max_rows);
    let mut request = QueryRequest {
        filter: args.filter.clone().unwrap_or_default(),
        read_mask: (!args.select.is_empty()).then(|| prost_types::FieldMask { paths: args.select.clone() }),
        order_by: args.order_by.clone().unwrap_or_default(),
        limit: cap.request_limit(args.limit) as i64,
        resume_token: String::new(),
    };
    if matches!(format, Format::Arrow | Format::Parquet) {
        let idle = args.idle_timeout;
        return super::query_arrow::run(cli, &target, &args.product, &request, format, idle)
            .await
            .map_err(|status| query_error(&target, args, status));
    }
    let (mut stream, withheld) = loop {
        match open_stream(&target, &request, cli).await {
            Ok(opened) => break opened,
            Err(status) if another_endpoint(&mut target, &status, 0) => {}
            Err(status) => return Err(query_error(&target, args, status)),
        }
    };
    if !withheld.is_empty() {
        columns.retain(|c| !withheld.iter().any(|w| w == c.name()));
        eprintln!(
            "note: your agreement does not cover {} (left out); `mesh access request {} --purpose \"...\" --columns \
             ...` asks for them",
            style::safe(&withheld.join(", ")),
            args.product
        );
    }

    let mut sink = Sink::new(format, &columns, args.max_rows)?;
    let progress = Progress::new(format);
    let decoder = Decoder::new(&shape, &columns);
    loop {
        let Ok(next) = tokio::time::timeout(args.idle_timeout, stream.message()).await else {
            bail!(
                "{} sent nothing for {} (--idle-timeout) after {} rows; the domain may be overloaded or \
                 stalled: retry later, or allow longer with --idle-timeout",
                style::safe(&target.endpoint),
                humantime::format_duration(args.idle_timeout),
                cap.rows
            );
        };
        let batch = match next {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            // A replica that fails mid-stream: the rest comes from another,
            // from the last resume token, so no row is lost or repeated.
            Err(status) if another_endpoint(&mut target, &status, cap.rows) => {
                stream = loop {
                    match open_stream(&target, &request, cli).await {
                        Ok((stream, _)) => break stream,
                        Err(status) if another_endpoint(&mut target, &status, cap.rows) => {}
                        Err(status) => return Err(query_error(&target, args, status)),
                    }
                };
                continue;
            }
            Err(status) => return Err(query_error(&target, args, status)),
        };
        match decoder.read(&batch, &mut sink, &mut cap).and_then(|read| sink.end_batch().map(|()| read)) {
            Ok(Read { stopped: true, .. }) => break,
            Ok(Read { token, .. }) => {
                if let Some(token) = token {
                    request.resume_token = token;
                }
                progress.update(cap.rows);
            }
            Err(error) => return quiet_on_broken_pipe(error),
        }
    }
    progress.finish(cap.rows);
    sink.finish(cap.more()).or_else(quiet_on_broken_pipe)
}

/// Whether `status` is worth trying another replica for (it is down,
/// shutting down, overloaded or failed), and one is left: then `target`
/// moves on to it, saying so on stderr.
pub(crate) fn another_endpoint(target: &mut Target, status: &tonic::Status, rows: u64) -> bool {
    let failed = target.endpoint.clone();
    if !mesh_sql::replicas::worth_another_replica(status) || !target.next_endpoint() {
        return false;
    }
    eprintln!(
        "note: {} failed after {rows} rows ({}); continuing on {}",
        style::safe(&failed),
        style::safe(status.message()),
        style::safe(&target.endpoint)
    );
    true
}

/// Calls the product's `Query` with `request`, rows left encoded; with the
/// stream, the columns the domain left out because the caller's agreement
/// does not cover them.
async fn open_stream(
    target: &Target,
    request: &QueryRequest,
    cli: &Cli,
) -> Result<(Streaming<Bytes>, Vec<String>), tonic::Status> {
    let channel = mesh_grpc::client::stream_channel(&target.endpoint, cli.timeout, &target.credentials)
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(64 << 20);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::try_from(format!("/{}/Query", target.service))
        .map_err(|e| tonic::Status::invalid_argument(format!("service name `{}`: {e}", target.service)))?;
    let request = tonic::Request::new(Bytes::from(request.encode_to_vec()));
    let response = grpc.server_streaming(request, path, RawCodec).await?;
    let withheld = response
        .metadata()
        .get(mesh_contracts::descriptor::WITHHELD_COLUMNS_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    Ok((response.into_inner(), withheld))
}

/// How many rows a table shows, and how many rows came.
struct RowCap {
    /// The rows a table shows when no `--limit` is given; `None` means all.
    shown: Option<u64>,
    /// Rows received so far.
    rows: u64,
}

impl RowCap {
    fn new(format: Format, limit: Option<u64>, max_rows: usize) -> Self {
        let shown = (format == Format::Table && limit.is_none()).then_some(max_rows as u64);
        Self { shown, rows: 0 }
    }

    /// The limit to ask the domain for: a capped table asks for one row
    /// more than it shows, to know whether more rows match.
    fn request_limit(&self, limit: Option<u64>) -> u64 {
        match self.shown {
            Some(shown) => shown + 1,
            None => limit.unwrap_or(0),
        }
    }

    /// Writes one more row with `write`, or stops once the cap is reached.
    fn admit(&mut self, write: impl FnOnce() -> Result<()>) -> Result<ControlFlow<()>> {
        self.rows += 1;
        if self.shown.is_some_and(|shown| self.rows > shown) {
            return Ok(ControlFlow::Break(()));
        }
        write()?;
        Ok(ControlFlow::Continue(()))
    }

    /// Whether rows beyond those shown matched.
    fn more(&self) -> bool {
        self.shown.is_some_and(|shown| self.rows > shown)
    }
}

/// What a batch held besides the rows written.
struct Read {
    /// The row cap was reached.
    stopped: bool,
    /// The resume token after the batch's last row.
    token: Option<String>,
}

/// Turns batches into rows: straight from the wire format, or through
/// dynamic messages when a column is not a scalar.
enum Decoder<'c> {
    Wire(RowReader),
    Dynamic { shape: &'c ProductShape, columns: &'c [FieldDescriptor] },
}

impl<'c> Decoder<'c> {
    fn new(shape: &'c ProductShape, columns: &'c [FieldDescriptor]) -> Self {
        let token_field = shape.query.output().get_field_by_name(RESUME_TOKEN_FIELD).map(|f| f.number());
        match RowReader::new(shape.rows_field.number(), token_field, columns) {
            Some(reader) => Decoder::Wire(reader),
            None => Decoder::Dynamic { shape, columns },
        }
    }

    /// Writes the rows of `batch` to `sink` while `cap` admits them; with
    /// the batch's resume token, read in the same pass.
    fn read(&self, batch: &Bytes, sink: &mut Sink, cap: &mut RowCap) -> Result<Read> {
        match self {
            Decoder::Wire(reader) => {
                let read = reader.read(batch, |cells| cap.admit(|| sink.row(cells)))?;
                let token = read.token.map(|t| String::from_utf8_lossy(t).into_owned());
                Ok(Read { stopped: read.stopped, token })
            }
            Decoder::Dynamic { shape, columns } => {
                let message = DynamicMessage::decode(shape.query.output(), batch.clone())
                    .context("a batch does not decode")?;
                if let Value::List(list) = message.get_field(&shape.rows_field).as_ref() {
                    for row in list.iter().filter_map(Value::as_message) {
                        if cap.admit(|| sink.message(row, columns))?.is_break() {
                            return Ok(Read { stopped: true, token: None });
                        }
                    }
                }
                let token = message
                    .get_field_by_name(RESUME_TOKEN_FIELD)
                    .and_then(|t| t.as_str().map(str::to_owned))
                    .filter(|t| !t.is_empty());
                Ok(Read { stopped: false, token })
            }
        }
    }
}

/// A closed pipe (`mesh query … | head`) ends the output quietly.
pub(crate) fn quiet_on_broken_pipe(error: anyhow::Error) -> Result<()> {
    let broken = error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken { Ok(()) } else { Err(error) }
}

/// The row fields to print: `--select` in its order, else every field.
fn columns(shape: &ProductShape, select: &[String]) -> Result<Vec<FieldDescriptor>> {
    if select.is_empty() {
        return Ok(shape.row_type.fields().collect());
    }
    select
        .iter()
        .map(|name| {
            shape.row_type.get_field_by_name(name.trim()).ok_or_else(|| {
                let valid: Vec<String> = shape.row_type.fields().map(|f| f.name().to_owned()).collect();
                anyhow!("--select: unknown column `{name}`; valid columns: {}", valid.join(", "))
            })
        })
        .collect()
}

/// A failed query as advice: a filter error with its position marked.
fn query_error(target: &Target, args: &QueryArgs, status: tonic::Status) -> anyhow::Error {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => target.unreachable(status.message()),
        tonic::Code::InvalidArgument => {
            let problem = mesh_grpc::bad_request::field_problem(&status);
            match (args.filter.as_deref(), problem) {
                (Some(filter), Some(FieldProblem { field, column })) if field == "filter" => {
                    marked(status.message(), filter, column)
                }
                _ => anyhow!("{}", status.message()),
            }
        }
        _ => anyhow!("{}: {}", target.endpoint, status.message()),
    }
}

/// `message`, then `filter` with a caret under its 1-based `column` when
/// the problem has a place.
fn marked(message: &str, filter: &str, column: Option<usize>) -> anyhow::Error {
    match column {
        Some(column) => anyhow!("{message}\n  {filter}\n  {}^", " ".repeat(column.saturating_sub(1))),
        None => anyhow!("{message}"),
    }
}

/// Rows and rows/s on stderr during long exports, when stderr is a terminal.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
}

impl Progress {
    fn new(format: Format) -> Self {
        let bar = (format != Format::Table && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {human_pos} rows ({per_sec})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        });
        Self { bar, started: Instant::now() }
    }

    fn update(&self, rows: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(rows);
        }
    }

    fn finish(&self, rows: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
            eprintln!("{rows} rows in {seconds:.1} s ({:.0} rows/s)", rows as f64 / seconds);
        }
    }
}
