//! `mesh query PRODUCT`: finds the product in the catalog, calls the owning
//! domain directly and decodes the rows with the descriptor set the catalog
//! stores: no generated code for any product.

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use mesh_contracts::catalog::{Product, ProductView, ServingStatus};
use mesh_contracts::descriptor::ProductShape;
use mesh_contracts::product::{DescribeRequest, DescribeResponse, QueryRequest};
use mesh_grpc::codec::RawCodec;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Value};

use crate::cli::{Cli, Format, QueryArgs};
use crate::registry::{Registry, Source};
use crate::rows::Sink;
use crate::style;
use crate::wire::RowReader;

/// What is needed to call and decode a product.
struct Target {
    endpoint: String,
    service: String,
    descriptor_set: Vec<u8>,
    /// The catalog entry, when there is one (for error advice).
    entry: Option<Product>,
}

/// Runs the query and writes the rows.
pub async fn run(cli: &Cli, args: &QueryArgs) -> Result<()> {
    let target = resolve(cli, args).await?;
    let pool = DescriptorPool::decode(target.descriptor_set.as_slice())
        .context("the product's descriptor set is unreadable")?;
    let shape = ProductShape::find(&pool, &target.service).map_err(|e| anyhow!("{e}"))?;
    let columns = columns(&shape, &args.select)?;
    let format =
        args.format.unwrap_or(if std::io::stdout().is_terminal() { Format::Table } else { Format::Csv });

    // A table shows at most `max_rows`; without a limit, fetch one more to know there are more.
    let limit = match (format, args.limit) {
        (Format::Table, None) => Some(args.max_rows as u64 + 1),
        (_, limit) => limit,
    };
    let request = QueryRequest {
        filter: args.filter.clone().unwrap_or_default(),
        read_mask: (!args.select.is_empty()).then(|| prost_types::FieldMask { paths: args.select.clone() }),
        order_by: args.order_by.clone().unwrap_or_default(),
        limit: limit.map_or(0, |l| l as i64),
        resume_token: String::new(),
    };

    let channel = mesh_grpc::client::stream_channel(&target.endpoint, cli.timeout)?;
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(64 << 20);
    grpc.ready().await.map_err(|e| unreachable(&target, &e.to_string()))?;
    let path = http::uri::PathAndQuery::try_from(format!("/{}/Query", target.service))?;
    let response = grpc
        .server_streaming(tonic::Request::new(Bytes::from(request.encode_to_vec())), path, RawCodec)
        .await
        .map_err(|status| query_error(&target, args, status))?;
    let mut stream = response.into_inner();

    let mut sink = Sink::new(format, &columns, args.max_rows)?;
    let progress = Progress::new(format);
    // Rows are read straight from the wire; rows with nested columns fall
    // back to decoding whole messages.
    let reader = RowReader::new(shape.rows_field.number(), &columns);
    let response_type = shape.query.output();
    let cap = (format == Format::Table && args.limit.is_none()).then_some(args.max_rows as u64);
    let mut rows = 0u64;
    'batches: loop {
        let batch = match stream.message().await {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(status) => return Err(query_error(&target, args, status)),
        };
        let mut take = |sink: &mut Sink, write: &mut dyn FnMut(&mut Sink) -> Result<()>| -> Result<bool> {
            if cap.is_some_and(|cap| rows == cap) {
                rows += 1; // one more than shown: more rows match
                return Ok(false);
            }
            write(sink)?;
            rows += 1;
            Ok(true)
        };
        let outcome = match &reader {
            Some(reader) => {
                let mut open = true;
                reader
                    .read(&batch, |cells| {
                        if open {
                            open = take(&mut sink, &mut |sink| sink.row(cells))?;
                        }
                        Ok(())
                    })
                    .map(|_| open)
            }
            None => (|| {
                let message = DynamicMessage::decode(response_type.clone(), batch)
                    .context("a batch does not decode")?;
                if let Value::List(list) = message.get_field(&shape.rows_field).as_ref() {
                    for row in list.iter().filter_map(Value::as_message) {
                        if !take(&mut sink, &mut |sink| sink.message(row, &columns))? {
                            return Ok(false);
                        }
                    }
                }
                Ok(true)
            })(),
        };
        match outcome {
            Ok(true) => progress.update(rows),
            Ok(false) => break 'batches,
            Err(error) => return quiet_on_broken_pipe(error),
        }
    }
    progress.finish(rows);
    let more = format == Format::Table && args.limit.is_none() && rows > args.max_rows as u64;
    sink.finish(more).or_else(quiet_on_broken_pipe)
}

/// A closed pipe (`mesh query … | head`) ends the output quietly.
fn quiet_on_broken_pipe(error: anyhow::Error) -> Result<()> {
    let broken = error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.downcast_ref::<csv::Error>().is_some_and(
                |e| matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe),
            )
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

/// Finds the endpoint, service and descriptor of the product: from the
/// registry, from the local cache when the registry is down, or from the
/// domain itself when `--endpoint` is given.
async fn resolve(cli: &Cli, args: &QueryArgs) -> Result<Target> {
    let mut registry = Registry::new(&cli.registry, cli.timeout)?;
    // Finding the endpoint needs no columns: the basic view is the light lookup.
    let found = registry.product(&args.product, ProductView::Basic).await;
    let (entry, source) = match (found, &args.endpoint) {
        (Ok(found), _) => found,
        (Err(_), Some(endpoint)) => return describe_at(endpoint, &args.product, cli).await,
        (Err(error), None) => return Err(error),
    };
    if let Source::Cache(fetched) = source {
        eprintln!(
            "note: the registry is unreachable; using the local catalog cache from {}",
            humantime::format_rfc3339_seconds(fetched)
        );
    }
    let product = entry.product.clone().unwrap_or_default();
    if let Some(deprecation) = &product.deprecation {
        eprintln!("warning: {} is deprecated: {}", product.product_id, deprecation.message);
    }
    let endpoint = match &args.endpoint {
        Some(endpoint) => endpoint.clone(),
        None => product
            .endpoints
            .iter()
            .find(|e| e.status() == ServingStatus::Serving)
            .or_else(|| product.endpoints.first())
            .map(|e| e.uri.clone())
            .ok_or_else(|| {
                anyhow!("{} has no endpoint in the catalog (status: {}); pass --endpoint if you know where it is served", product.product_id, style::status_word(product.status()))
            })?,
    };
    Ok(Target {
        endpoint,
        service: product.service.clone(),
        descriptor_set: entry.descriptor_set,
        entry: Some(product),
    })
}

/// Asks the server at `endpoint` for `product`'s contract through its
/// product services' `Describe`, found with server reflection.
async fn describe_at(endpoint: &str, product: &str, cli: &Cli) -> Result<Target> {
    let channel = mesh_grpc::client::channel(endpoint, cli.timeout)?;
    let services = mesh_grpc::reflection::reflected_services(channel.clone())
        .await
        .with_context(|| format!("cannot list the services at {endpoint}"))?;
    for service in services {
        if service.starts_with("grpc.") {
            continue;
        }
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await?;
        let path = http::uri::PathAndQuery::try_from(format!("/{service}/Describe"))?;
        let Ok(response) = grpc
            .unary(tonic::Request::new(Bytes::from(DescribeRequest {}.encode_to_vec())), path, RawCodec)
            .await
        else {
            continue;
        };
        let described = DescribeResponse::decode(response.into_inner())?;
        if described.product == product {
            eprintln!("note: the registry is unreachable; using the contract {endpoint} describes");
            return Ok(Target {
                endpoint: endpoint.to_owned(),
                service: described.service,
                descriptor_set: described.descriptor_set,
                entry: None,
            });
        }
    }
    bail!("{endpoint} does not serve `{product}`")
}

/// Advice for a domain that cannot be reached.
fn unreachable(target: &Target, detail: &str) -> anyhow::Error {
    let known = target
        .entry
        .as_ref()
        .and_then(|p| p.endpoints.iter().find(|e| e.uri == target.endpoint))
        .map(|e| {
            let renewed = e
                .renew_time
                .and_then(|t| std::time::SystemTime::try_from(t).ok())
                .map(|t| humantime::format_rfc3339_seconds(t).to_string())
                .unwrap_or_default();
            format!(" (catalog status: {}, last renewed {renewed})", style::status_word(e.status()))
        })
        .unwrap_or_default();
    anyhow!("cannot reach the domain at {}{known}: {detail}", target.endpoint)
}

/// A failed query as advice: a filter error with its position marked.
fn query_error(target: &Target, args: &QueryArgs, status: tonic::Status) -> anyhow::Error {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => unreachable(target, status.message()),
        tonic::Code::InvalidArgument => {
            let message = status.message();
            match (args.filter.as_deref(), column_of(message)) {
                (Some(filter), Some(column)) if message.starts_with("filter:") => {
                    anyhow!("{message}\n  {filter}\n  {}^", " ".repeat(column.saturating_sub(1)))
                }
                _ => anyhow!("{message}"),
            }
        }
        _ => anyhow!("{}: {}", target.endpoint, status.message()),
    }
}

/// The column number in "... at column N ...".
fn column_of(message: &str) -> Option<usize> {
    let rest = message.split("at column ").nth(1)?;
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
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

#[cfg(test)]
mod tests {
    #[test]
    fn column_numbers_are_read_from_filter_errors() {
        assert_eq!(super::column_of("filter: unknown field `x` at column 12; valid fields: a"), Some(12));
        assert_eq!(super::column_of("limit: -1 is negative"), None);
    }
}
