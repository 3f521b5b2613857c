//! `GET /v1/products/{id}/rows`: the query parameters, content negotiation,
//! and the rows streamed from the same read as gRPC `Query`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::HeaderValue;
use mesh_contracts::product::QueryRequest;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use mesh_grpc::rest::RestError;

use super::Api;
use mesh_grpc::rest::number;

use crate::scan::stream::ScanStream;
use crate::serve::output::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, RowFormat, TextWriter};
use crate::serve::product::Started;
use crate::serve::service::read;

/// The query parameters the rows path takes.
pub(crate) const PARAMETERS: [&str; 6] = ["filter", "select", "order_by", "limit", "page_size", "page_token"];

/// A product's rows, read under the caller's agreement: one JSON page, or
/// every matching row as NDJSON or CSV (by the `Accept` header). Columns
/// the agreement does not cover are left out (named in the
/// `mesh-withheld-columns` header) and identifiers come as the caller's
/// pseudonyms, exactly as over gRPC.
#[utoipa::path(
    get,
    path = "/v1/products/{id}/rows",
    operation_id = "readRows",
    params(mesh_grpc::rest::ProductIdParam, super::openapi::RowsParams),
    responses(
        (status = 200, description = "The rows", content(
            (super::openapi::RowsPage = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A bad parameter, named in the message", body = mesh_grpc::rest::ErrorBody),
        mesh_grpc::rest::Unauthenticated,
        (status = 403, description = "No agreement covers this read", body = mesh_grpc::rest::ErrorBody),
        (status = 404, description = "Not a product this domain serves", body = mesh_grpc::rest::ErrorBody),
        (status = 406, description = "None of the accepted media types is served", body = mesh_grpc::rest::ErrorBody),
        (status = 409, description = "The page token's data was reloaded since", body = mesh_grpc::rest::ErrorBody),
        (status = 429, description = "Too many queries running or waiting", body = mesh_grpc::rest::ErrorBody),
        (status = 503, description = "The domain is shutting down or its data cannot be read", body = mesh_grpc::rest::ErrorBody),
        (status = 504, description = "The query ran over its time budget", body = mesh_grpc::rest::ErrorBody),
    )
)]
pub(super) async fn rows(
    State(api): State<Arc<Api>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    request: http::Request<axum::body::Body>,
) -> Result<Response, RestError> {
    let principal = mesh_grpc::auth::layer::caller(request.extensions())?;
    let Path(id) = path.map_err(|e| RestError::new(Status::invalid_argument(format!("id: {e}"))))?;
    let service = api.product(&id)?;
    let format = negotiate(request.headers().get(http::header::ACCEPT))?;
    let (query, format) = parse(request.uri().query().unwrap_or(""), format);
    let peer = peer(request.extensions());
    let (product, admission, governance) = service.read_path();
    let send_timeout = admission.limits().send_timeout;
    let started = read(&product, &admission, governance, (&principal, peer), query, format, None).await?;
    let Started { mut rows, withheld, columns } = started;
    // The first batch decides the status: a query refused inside the scan
    // (its token's data changed) is still an error response.
    let first = match std::future::poll_fn(|cx| Pin::new(&mut rows).poll_next(cx)).await {
        Some(Ok(batch)) => Some(batch.into_bytes()),
        Some(Err(status)) => return Err(RestError::new(status)),
        None => None,
    };
    let fields: Vec<_> = columns
        .iter()
        .filter_map(|&c| product.schema.message.get_field(product.schema.columns[c].number))
        .collect();
    let mut writer =
        TextWriter::new(format, &fields, product.shape.rows_field.number(), product.token_field())
            .map_err(|e| internal(&e))?;
    let body = match format {
        RowFormat::JsonPage { .. } => {
            let mut page = Vec::new();
            writer.begin(&mut page).map_err(|e| internal(&e))?;
            let token = match &first {
                Some(batch) => writer.batch(batch, &mut page).map_err(|e| internal(&e))?,
                None => b"".as_slice(),
            };
            writer.end_page(token, &mut page).map_err(|e| internal(&e))?;
            axum::body::Body::from(page)
        }
        _ => axum::body::Body::from_stream(transcode(first, rows, writer, format, send_timeout)),
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(http::header::VARY, HeaderValue::from_static("accept"));
    if !withheld.is_empty()
        && let Ok(value) = HeaderValue::from_str(&withheld.join(","))
    {
        headers.insert(mesh_contracts::descriptor::WITHHELD_COLUMNS_HEADER, value);
    }
    Ok(response)
}

fn internal(error: &str) -> RestError {
    RestError::new(mesh_grpc::internal_status("writing rows as text", &error))
}

/// Streams the text of `rows` (the first batch already read): a thread of
/// its own turns each protobuf batch into `format` while the scan's thread
/// reads the next. A failure after the first byte cannot change the status
/// any more: NDJSON ends with an `{"error": ...}` line (cutting the body
/// as well could lose that line in the transport's buffers), and CSV, which
/// has no place for one, is cut, so a client never takes it for complete. The
/// thread ends when the client goes away, or reads nothing for the send
/// timeout, and the scan with it.
fn transcode(
    first: Option<Bytes>,
    mut rows: ScanStream,
    mut writer: TextWriter,
    format: RowFormat,
    send_timeout: Duration,
) -> ReceiverStream<Result<Bytes, std::io::Error>> {
    let (sender, receiver) = mpsc::channel(2);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let send = |item: Result<Bytes, std::io::Error>| {
            runtime.block_on(async {
                matches!(tokio::time::timeout(send_timeout, sender.send(item)).await, Ok(Ok(())))
            })
        };
        let mut out = Vec::with_capacity(crate::scan::stream::BATCH_BYTES * 2);
        if let Err(error) = writer.begin(&mut out) {
            let status = mesh_grpc::internal_status("writing rows as text", &error);
            send(Err(std::io::Error::other(status.message().to_owned())));
            return;
        }
        let mut next = first.map(Ok);
        loop {
            let item = match next.take() {
                Some(item) => Some(item),
                None => runtime
                    .block_on(tokio_stream::StreamExt::next(&mut rows))
                    .map(|batch| batch.map(mesh_grpc::codec::Pieces::into_bytes)),
            };
            match item {
                Some(Ok(batch)) => {
                    if let Err(error) = writer.batch(&batch, &mut out) {
                        let status = mesh_grpc::internal_status("writing rows as text", &error);
                        send(Err(std::io::Error::other(status.message().to_owned())));
                        return;
                    }
                    if !send(Ok(Bytes::from(std::mem::take(&mut out)))) {
                        return;
                    }
                    out.reserve(crate::scan::stream::BATCH_BYTES * 2);
                }
                Some(Err(status)) if format == RowFormat::Ndjson => {
                    out.extend_from_slice(&mesh_grpc::rest::error_body(&status));
                    out.push(b'\n');
                    send(Ok(Bytes::from(out)));
                    return;
                }
                Some(Err(status)) => {
                    send(Err(std::io::Error::other(status.message().to_owned())));
                    return;
                }
                None => {
                    if !out.is_empty() {
                        send(Ok(Bytes::from(out)));
                    }
                    return;
                }
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// The format the `Accept` header asks for: the supported media type with
/// the highest quality (JSON for `*/*` or no header), else 406.
fn negotiate(accept: Option<&HeaderValue>) -> Result<RowFormat, RestError> {
    let text = accept.map_or("", |a| a.to_str().unwrap_or("")).trim();
    if text.is_empty() {
        return Ok(RowFormat::JsonPage { page_size: DEFAULT_PAGE_SIZE });
    }
    let mut best: Option<(f32, RowFormat)> = None;
    for item in text.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let format = match media.as_str() {
            "application/json" | "application/*" | "*/*" => {
                RowFormat::JsonPage { page_size: DEFAULT_PAGE_SIZE }
            }
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => RowFormat::Ndjson,
            "text/csv" | "text/*" => RowFormat::Csv,
            _ => continue,
        };
        if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, format));
        }
    }
    best.map(|(_, format)| format).ok_or_else(|| {
        RestError::not_acceptable(format!(
            "Accept: none of `{}` is served; ask for application/json (one page), application/x-ndjson or \
             text/csv (every row)",
            text.chars().take(200).collect::<String>().escape_debug()
        ))
    })
}

/// The query and format the parameters ask for; a bad parameter is an
/// INVALID_ARGUMENT naming it (recorded as a refused read like any other).
fn parse(query: &str, format: RowFormat) -> (Result<QueryRequest, Status>, RowFormat) {
    let mut request = QueryRequest::default();
    let mut page_size = None;
    let parsed = (|| {
        for (name, value) in mesh_grpc::rest::query_parameters(query, &PARAMETERS)? {
            match name {
                "filter" => request.filter = value,
                "order_by" => request.order_by = value,
                "page_token" => request.resume_token = value,
                "select" => {
                    let paths: Vec<String> = value.split(',').map(|p| p.trim().to_owned()).collect();
                    if paths.iter().any(String::is_empty) {
                        return Err(Status::invalid_argument(
                            "select: an empty column name; list columns separated by commas, e.g. \
                             select=seq,tot_use_am",
                        ));
                    }
                    request.read_mask = Some(prost_types::FieldMask { paths });
                }
                "limit" => {
                    request.limit =
                        number("limit", &value, "a whole number of rows; use 0 or more (0: no limit)")?
                }
                _ => {
                    let size: u32 =
                        number("page_size", &value, &format!("a number of rows from 1 to {MAX_PAGE_SIZE}"))?;
                    if !(1..=MAX_PAGE_SIZE).contains(&size) {
                        return Err(Status::invalid_argument(format!(
                            "page_size: `{size}` is not a number of rows from 1 to {MAX_PAGE_SIZE}"
                        )));
                    }
                    if !matches!(format, RowFormat::JsonPage { .. }) {
                        return Err(Status::invalid_argument(
                            "page_size: only application/json answers come in pages; NDJSON and CSV stream \
                             every matching row (use limit to bound them)",
                        ));
                    }
                    page_size = Some(size);
                }
            }
        }
        Ok(())
    })();
    let format = match (format, page_size) {
        (RowFormat::JsonPage { .. }, Some(page_size)) => RowFormat::JsonPage { page_size },
        (format, _) => format,
    };
    (parsed.map(|()| request), format)
}

/// The caller's address, as the transport recorded it.
fn peer(extensions: &http::Extensions) -> Option<std::net::SocketAddr> {
    let request = tonic::Request::from_parts(tonic::metadata::MetadataMap::new(), extensions.clone(), ());
    request.remote_addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Result<RowFormat, http::StatusCode> {
        negotiate(Some(&HeaderValue::from_str(value).unwrap())).map_err(|e| e.http_status())
    }

    #[test]
    fn the_accept_header_picks_the_format() {
        let page = RowFormat::JsonPage { page_size: DEFAULT_PAGE_SIZE };
        assert_eq!(negotiate(None).unwrap(), page);
        assert_eq!(accept("*/*"), Ok(page));
        assert_eq!(accept("text/csv"), Ok(RowFormat::Csv));
        assert_eq!(accept("application/x-ndjson"), Ok(RowFormat::Ndjson));
        assert_eq!(accept("text/html, text/csv;q=0.5, application/json;q=0.9"), Ok(page));
        assert_eq!(accept("application/json;q=0, text/csv"), Ok(RowFormat::Csv));
        assert_eq!(accept("text/html"), Err(http::StatusCode::NOT_ACCEPTABLE));
    }

    #[test]
    fn parameters_are_checked_by_name() {
        let page = RowFormat::JsonPage { page_size: DEFAULT_PAGE_SIZE };
        let (query, format) = parse("filter=age%20%3E%2030&select=seq,%20age&limit=5&page_size=7", page);
        let query = query.unwrap();
        assert_eq!(query.filter, "age > 30");
        assert_eq!(query.read_mask.unwrap().paths, ["seq", "age"]);
        assert_eq!(query.limit, 5);
        assert_eq!(format, RowFormat::JsonPage { page_size: 7 });
        let message = |q: &str, f: RowFormat| parse(q, f).0.unwrap_err().message().to_owned();
        assert!(message("colour=red", page).starts_with("unknown query parameter `colour`"));
        assert!(message("limit=1&limit=2", page).starts_with("limit: given more than once"));
        assert!(message("limit=x", page).starts_with("limit: `x` is not a whole number"));
        assert!(message("page_size=0", page).starts_with("page_size: `0` is not a number of rows from 1"));
        assert!(message("page_size=5", RowFormat::Csv).starts_with("page_size: only application/json"));
        assert!(message("select=a,,b", page).starts_with("select: an empty column name"));
    }
}
