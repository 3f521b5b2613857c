//! `GET /metrics`: the service's metrics in Prometheus' text format, for a
//! caller holding the role `metrics` or `admin`, or for anyone when the
//! service was started with `--insecure-open-metrics`.

use std::convert::Infallible;

use tonic::Status;

use super::{MarkRoute, Metrics};
use crate::auth::Principal;

/// Where every mesh service serves its metrics.
pub const METRICS_PATH: &str = "/metrics";
/// The role that may read metrics (as may `admin`).
pub const METRICS_ROLE: &str = "metrics";
/// Prometheus' text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The router answering [`METRICS_PATH`] from `metrics`; `open` when it is
/// served without a token.
pub(crate) fn router(metrics: Metrics, open: bool) -> axum::Router {
    let endpoint = tower::service_fn(move |request: http::Request<axum::body::Body>| {
        let answer = answer(&metrics, open, &request);
        async move { Ok::<_, Infallible>(answer) }
    });
    axum::Router::new().route_service(METRICS_PATH, endpoint).route_layer(MarkRoute)
}

fn answer(
    metrics: &Metrics,
    open: bool,
    request: &http::Request<axum::body::Body>,
) -> axum::response::Response {
    if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
        let mut refused = crate::rest::error_response(&Status::invalid_argument(format!(
            "{METRICS_PATH} answers GET only, not {}",
            request.method()
        )));
        *refused.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
        refused.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
        return refused;
    }
    match request.extensions().get::<Principal>() {
        Some(caller) if caller.has_role_or_admin(METRICS_ROLE) => {}
        Some(caller) => {
            return crate::rest::error_response(&Status::permission_denied(format!(
                "`{}` may not read this service's metrics: that needs the role `{METRICS_ROLE}` or `admin` \
                 (mesh whoami shows your roles)",
                caller.subject
            )));
        }
        None if open => {}
        // Not reached through the authentication layer: refuse rather than guess.
        None => {
            return crate::rest::error_response(&Status::unauthenticated(
                "the call carries no bearer token; send `authorization: Bearer <token>` with the role `metrics`",
            ));
        }
    }
    crate::rest::ok_response(TEXT_FORMAT, metrics.render())
}
