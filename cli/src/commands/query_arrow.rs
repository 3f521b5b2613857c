//! `mesh query --format arrow|parquet`: the rows over the domain's Arrow
//! Flight service, written as they come (an Arrow IPC stream, or a Parquet
//! file in row groups of bounded size), going on at another replica from
//! the last batch's resume token when one fails.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use arrow_array::RecordBatch;
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::{FlightClient, FlightDescriptor, FlightInfo, Ticket};
use arrow_schema::SchemaRef;
use futures_util::StreamExt;
use mesh_contracts::product::{FlightTicket, QueryRequest};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use prost::Message;

use crate::cli::Cli;
use crate::commands::query::{Format, another_endpoint};
use crate::registry::Target;

/// Rows of one Parquet row group at most.
const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Bytes a Parquet row group may gather in memory before it is written,
/// whatever its rows hold: bounds what the writer keeps.
const ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// Where the record batches go.
enum BatchFile {
    Arrow(arrow_ipc::writer::StreamWriter<std::io::BufWriter<std::io::Stdout>>),
    Parquet(ArrowWriter<std::io::BufWriter<std::io::Stdout>>),
}

impl BatchFile {
    fn create(format: Format, schema: &SchemaRef) -> Result<Self> {
        let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
        Ok(match format {
            Format::Parquet => {
                let properties = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .build();
                Self::Parquet(ArrowWriter::try_new(out, schema.clone(), Some(properties))?)
            }
            _ => Self::Arrow(arrow_ipc::writer::StreamWriter::try_new(out, schema)?),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Self::Arrow(writer) => writer.write(batch)?,
            Self::Parquet(writer) => {
                writer.write(batch)?;
                if writer.in_progress_size() > ROW_GROUP_BYTES {
                    writer.flush()?;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            Self::Arrow(mut writer) => {
                writer.finish()?;
                writer.into_inner()?.flush()?;
            }
            Self::Parquet(writer) => {
                writer.into_inner()?.flush()?;
            }
        }
        Ok(())
    }
}

/// Refuses to write a binary `format` to a terminal.
pub(crate) fn check_output(format: Format) -> Result<()> {
    if std::io::stdout().is_terminal() {
        anyhow::bail!(
            "--format {0}: the output is binary; redirect it to a file, e.g. `> rows.{0}`",
            format.name()
        );
    }
    Ok(())
}

/// Runs `request` of `product` against `target` over Flight and writes
/// its rows to stdout as `format` (arrow or parquet).
pub(crate) async fn run(
    cli: &Cli,
    target: &mut Target,
    product: &str,
    request: &QueryRequest,
    format: Format,
    idle_timeout: Duration,
) -> Result<(), tonic::Status> {
    let command = serde_json::json!({
        "product": product,
        "filter": request.filter,
        "select": request.read_mask.as_ref().map(|m| m.paths.clone()).unwrap_or_default(),
        "order_by": request.order_by,
        "limit": request.limit,
    });
    let descriptor = FlightDescriptor::new_cmd(command.to_string());
    let info = loop {
        match client(cli, target)?.get_flight_info(descriptor.clone()).await.map_err(status) {
            Ok(info) => break info,
            Err(refused) if another_endpoint(target, &refused, 0) => {}
            Err(refused) => return Err(refused),
        }
    };
    let schema = std::sync::Arc::new(
        info.clone().try_decode_schema().map_err(|e| tonic::Status::internal(format!("the schema: {e}")))?,
    );
    note_withheld(&schema, product);
    let mut file = BatchFile::create(format, &schema).map_err(local)?;
    let mut ticket = first_ticket(&info)?;
    let mut rows = 0u64;
    let mut stream = do_get(cli, target, &ticket).await?;
    loop {
        let next = match tokio::time::timeout(idle_timeout, stream.next()).await {
            Ok(next) => next,
            Err(_) => {
                return Err(tonic::Status::deadline_exceeded(format!(
                    "{} sent nothing for {} (--idle-timeout) after {rows} rows; retry later, or allow longer \
                     with --idle-timeout",
                    target.endpoint,
                    humantime::format_duration(idle_timeout)
                )));
            }
        };
        let data = match next.map(|d| d.map_err(status)) {
            None => break,
            Some(Ok(data)) => data,
            Some(Err(failed)) if another_endpoint(target, &failed, rows) => {
                stream = do_get(cli, target, &ticket).await?;
                continue;
            }
            Some(Err(failed)) => return Err(failed),
        };
        let token = String::from_utf8_lossy(&data.inner.app_metadata).into_owned();
        if let DecodedPayload::Schema(sent) = &data.payload
            && sent.fields() != schema.fields()
        {
            // A replica gone on to may serve another contract version, or the
            // grant may have changed: the file must not mix two schemas.
            return Err(tonic::Status::aborted(format!(
                "{} sent other columns than the query was planned with, after {rows} rows; run the query again",
                target.endpoint
            )));
        }
        if let DecodedPayload::RecordBatch(batch) = data.payload {
            file.write(&batch).map_err(local)?;
            rows += batch.num_rows() as u64;
            ticket.resume_token = token;
        }
    }
    file.finish().map_err(local)
}

/// A Flight client of the target's endpoint.
fn client(cli: &Cli, target: &Target) -> Result<FlightClient<mesh_grpc::MeshChannel>, tonic::Status> {
    let channel = mesh_grpc::client::stream_channel(&target.endpoint, cli.timeout, &target.credentials)
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    Ok(FlightClient::new(channel))
}

/// Redeems `ticket` at the target's endpoint.
async fn do_get(
    cli: &Cli,
    target: &mut Target,
    ticket: &FlightTicket,
) -> Result<FlightDataDecoder, tonic::Status> {
    loop {
        let asked = Ticket::new(ticket.encode_to_vec());
        match client(cli, target)?.do_get(asked).await.map_err(status) {
            Ok(stream) => return Ok(stream.into_inner()),
            Err(refused) if another_endpoint(target, &refused, 0) => {}
            Err(refused) => return Err(refused),
        }
    }
}

/// The ticket of the info's endpoint.
fn first_ticket(info: &FlightInfo) -> Result<FlightTicket, tonic::Status> {
    info.endpoint
        .first()
        .and_then(|e| e.ticket.as_ref())
        .and_then(|t| FlightTicket::decode(t.ticket.clone()).ok())
        .ok_or_else(|| tonic::Status::internal("the domain's flight info holds no mesh ticket"))
}

/// The gRPC status of a Flight error.
fn status(error: FlightError) -> tonic::Status {
    match error {
        FlightError::Tonic(status) => *status,
        other => tonic::Status::internal(other.to_string()),
    }
}

/// A failure on this side (writing the output) as a status the caller
/// reports like the domain's.
fn local(error: anyhow::Error) -> tonic::Status {
    tonic::Status::aborted(format!("writing the output: {error:#}"))
}

/// Says on stderr which columns the caller's agreement left out.
fn note_withheld(schema: &SchemaRef, product: &str) {
    if let Some(withheld) = schema.metadata().get("mesh.withheld_columns").filter(|w| !w.is_empty()) {
        eprintln!(
            "note: your agreement does not cover {} (left out); `mesh access request {product} --purpose \"...\" \
             --columns ...` asks for them",
            crate::style::safe(withheld),
        );
    }
}
