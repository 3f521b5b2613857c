//! `GET /v1/products/{id}/usage`: `AuditService.GetUsage` over REST, for
//! the product's owners and admins (the web catalog's usage chart reads it).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::response::Response;
use mesh_grpc::rest::{RestError, number};
use prost::Message;
use tonic::Status;

use super::Api;

/// The query parameters the usage path takes.
const PARAMETERS: [&str; 2] = ["since", "slowest"];

/// The query parameters of the usage path.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct UsageParams {
    /// From the UTC day of: a duration back from now (`30d`, `12h`), a day
    /// (`2026-11-01`) or a UTC time (`2026-11-01T09:00:00Z`), in the last
    /// 400 days; default `30d`.
    since: Option<String>,
    /// How many of the slowest reads to return: 1 to 100 (default, and for
    /// 0: 10).
    #[param(minimum = 0, maximum = 100)]
    slowest: Option<i32>,
}

/// A product's reads, rows and bytes per UTC day, its refusals by reason
/// and its slowest reads, summed from the domain's read log: the product's
/// owners and admins only. The body is `GetUsageResponse` in protobuf's
/// JSON mapping (64-bit counts as strings).
#[utoipa::path(
    get,
    path = "/v1/products/{id}/usage",
    operation_id = "getUsage",
    params(mesh_grpc::rest::ProductIdParam, UsageParams),
    responses(
        (status = 200, description = "The product's usage", body = Object),
        (status = 400, description = "A bad parameter, named in the message", body = mesh_grpc::rest::ErrorBody),
        mesh_grpc::rest::Unauthenticated,
        (status = 403, description = "Only the product's owners and admins see its usage", body = mesh_grpc::rest::ErrorBody),
        (status = 404, description = "Not a product this domain serves", body = mesh_grpc::rest::ErrorBody),
        (status = 429, description = "Another usage summary is being computed", body = mesh_grpc::rest::ErrorBody),
        (status = 503, description = "The domain keeps no read log, or cannot read it now", body = mesh_grpc::rest::ErrorBody),
    )
)]
pub(super) async fn usage(
    State(api): State<Arc<Api>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    request: http::Request<axum::body::Body>,
) -> Result<Response, RestError> {
    let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
    let Path(id) = path.map_err(|e| RestError::new(Status::invalid_argument(format!("id: {e}"))))?;
    let (since, slowest) = parse(request.uri().query().unwrap_or(""))?;
    let usage = api.reads.usage(&caller, &id, since, slowest).await?;
    let body =
        mesh_grpc::rest::proto_json(&api.pool, "mesh.product.v1.GetUsageResponse", &usage.encode_to_vec())?;
    Ok(mesh_grpc::rest::ok_response(mesh_grpc::rest::JSON, body))
}

/// `since` (ms since the epoch) and `slowest` from the query string.
fn parse(query: &str) -> Result<(Option<i64>, i32), Status> {
    let mut since = None;
    let mut slowest = 0;
    for (name, value) in mesh_grpc::rest::query_parameters(query, &PARAMETERS)? {
        if name == "slowest" {
            slowest = number("slowest", &value, "a number of reads from 1 to 100")?;
        } else {
            since = Some(since_ms(&value)?);
        }
    }
    Ok((since, slowest))
}

/// `value`, a duration back from now, a day or a UTC time, in ms since the
/// epoch.
fn since_ms(value: &str) -> Result<i64, Status> {
    let time = humantime::parse_rfc3339_weak(value)
        .or_else(|_| humantime::parse_rfc3339_weak(&format!("{value}T00:00:00")))
        .ok()
        .or_else(|| humantime::parse_duration(value).ok().map(back_from_now))
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "since: `{}` is neither a duration back from now (`30d`, `12h`) nor a day or UTC time \
                 (`2026-11-01`, `2026-11-01T09:00:00Z`)",
                value.chars().take(40).collect::<String>().escape_debug()
            ))
        })?;
    let ms = time.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// `back` before now (the epoch at the furthest).
fn back_from_now(back: Duration) -> SystemTime {
    SystemTime::now().checked_sub(back).unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_duration_or_a_time() {
        let day = 24 * 3600 * 1000;
        let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
        let thirty = parse("since=30d").unwrap().0.unwrap();
        assert!((now - 30 * day - thirty).abs() < 60_000, "{thirty}");
        assert_eq!(parse("since=2026-11-01T00:00:00Z&slowest=5").unwrap(), (Some(1_793_491_200_000), 5));
        assert_eq!(parse("since=2026-11-01").unwrap(), (Some(1_793_491_200_000), 0));
        assert_eq!(parse("").unwrap(), (None, 0));
        let bad = parse("since=yesterday").unwrap_err();
        assert!(bad.message().starts_with("since: `yesterday` is neither a duration"), "{}", bad.message());
        let bad = parse("slowest=many").unwrap_err();
        assert_eq!(bad.message(), "slowest: `many` is not a number of reads from 1 to 100");
        let bad = parse("days=3").unwrap_err();
        assert!(bad.message().starts_with("unknown query parameter `days`"), "{}", bad.message());
    }
}
