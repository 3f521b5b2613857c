//! The pull feed: `GET /v1/events?after=SEQ&product=...&domain=...&type=...`
//! answers the events after `after` the caller may see, oldest first, as a
//! CloudEvents JSON batch (`application/cloudevents-batch+json`); the
//! `Mesh-Next-After` header says where the next call starts (the last event
//! read, whether the caller could see it or not).

use axum::extract::State;
use axum::response::Response;
use mesh_grpc::rest::{RestError, number, ok_response, query_parameters};

use crate::events::Events;
use crate::events::service::{Wanted, page_size};

/// The media type of a batch of CloudEvents in JSON.
pub const BATCH: &str = "application/cloudevents-batch+json";
/// The response header naming the position to continue after.
pub const NEXT_AFTER: &str = "mesh-next-after";
const PARAMETERS: [&str; 5] = ["after", "product", "domain", "type", "page_size"];

/// Events after a sequence number, as a CloudEvents batch.
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "listEvents",
    params(
        ("after" = Option<i64>, Query, description = "Events after this sequence number (0 or absent: from the oldest kept)"),
        ("product" = Option<String>, Query, description = "Only events about this product"),
        ("domain" = Option<String>, Query, description = "Only events about this domain's products"),
        ("type" = Option<String>, Query, description = "Only these event types, comma-separated (a prefix may end in `*`)"),
        ("page_size" = Option<i32>, Query, description = "The most events (default 100, at most 1000)"),
    ),
    responses(
        (status = 200, description = "A JSON array of CloudEvents; the `Mesh-Next-After` header says where to continue", content_type = "application/cloudevents-batch+json", body = [Object]),
        (status = 400, description = "A bad parameter, named in the message; or (status `OUT_OF_RANGE`) events after `after` were deleted by retention, and the message says where to start", body = mesh_grpc::rest::ErrorBody),
        mesh_grpc::rest::Unauthenticated,
    )
)]
pub(super) async fn list_events(
    State(events): State<Events>,
    request: http::Request<axum::body::Body>,
) -> Result<Response, RestError> {
    let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
    let (mut after, mut product, mut domain, mut types, mut size) =
        (0i64, String::new(), String::new(), Vec::new(), 0);
    for (name, value) in query_parameters(request.uri().query().unwrap_or(""), &PARAMETERS)? {
        match name {
            "after" => after = number("after", &value, "a sequence number")?,
            "product" => product = value,
            "domain" => domain = value,
            "type" => {
                types = value.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect()
            }
            _ => size = number("page_size", &value, "a whole number of events")?,
        }
    }
    let fail = |e: crate::error::RegistryError| RestError::new(e.into());
    if after < 0 {
        return Err(fail(crate::error::RegistryError::invalid(
            "after",
            "is negative; use 0 for every event kept",
        )));
    }
    let wanted = Wanted::checked(&product, &domain, &types).map_err(fail)?;
    let page = events.list(caller, &wanted, after, page_size(size).map_err(fail)?).await.map_err(fail)?;
    let batch: Vec<serde_json::Value> = page.events.iter().map(mesh_contracts::cloudevent::to_json).collect();
    let mut response = ok_response(BATCH, serde_json::to_vec(&batch).unwrap_or_default());
    response.headers_mut().insert(NEXT_AFTER, http::HeaderValue::from(page.next_after_sequence));
    Ok(response)
}
