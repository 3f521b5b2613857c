//! What the HTTP/JSON face of every mesh service shares: errors in Google's
//! JSON style (`{"error": {"code", "status", "message"}}`) with the HTTP
//! status matching the gRPC code, so a REST client gets the same precise
//! message a gRPC client does, and requests told apart from gRPC calls.

use bytes::Bytes;
use serde_json::json;
use tonic::{Code, Status};

/// The media type of JSON answers.
pub const JSON: &str = "application/json";

/// The HTTP status of a gRPC code, as Google's APIs map them.
pub fn http_status(code: Code) -> http::StatusCode {
    use http::StatusCode as S;
    match code {
        Code::Ok => S::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => S::BAD_REQUEST,
        Code::Unauthenticated => S::UNAUTHORIZED,
        Code::PermissionDenied => S::FORBIDDEN,
        Code::NotFound => S::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => S::CONFLICT,
        Code::ResourceExhausted => S::TOO_MANY_REQUESTS,
        // 499 "client closed request": no constant, but a valid code.
        Code::Cancelled => S::from_u16(499).unwrap_or(S::BAD_REQUEST),
        Code::Unimplemented => S::NOT_IMPLEMENTED,
        Code::Unavailable => S::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => S::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => S::INTERNAL_SERVER_ERROR,
    }
}

/// The gRPC code's name as Google's JSON errors spell it (`INVALID_ARGUMENT`).
pub fn status_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The JSON body of `status`: `{"error": {"code": 400, "status":
/// "INVALID_ARGUMENT", "message": "..."}}`.
pub fn error_body(status: &Status) -> Bytes {
    let body = json!({
        "error": {
            "code": http_status(status.code()).as_u16(),
            "status": status_name(status.code()),
            "message": status.message(),
        }
    });
    Bytes::from(body.to_string())
}

/// `status` as an HTTP response with a JSON body; an UNAUTHENTICATED one
/// says how to authenticate (`WWW-Authenticate: Bearer`).
pub fn error_response(status: &Status) -> http::Response<axum::body::Body> {
    let mut response = http::Response::new(axum::body::Body::from(error_body(status)));
    *response.status_mut() = http_status(status.code());
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(JSON));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    if status.code() == Code::Unauthenticated {
        headers.insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
    }
    response
}

/// Whether `request` is a gRPC call (as opposed to a REST or browser request).
pub fn is_grpc<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// `path` cut to 200 characters and with control characters escaped, to
/// quote back in a message.
pub fn escape_path(path: &str) -> String {
    let cut: String = path.chars().take(200).collect();
    cut.escape_debug().to_string()
}

/// A refusal answered as a Google-style JSON error, with the HTTP status
/// of its code unless it says another.
#[derive(Debug)]
pub struct RestError(pub Status, Option<http::StatusCode>);

impl RestError {
    /// `status`, with the HTTP status of its code.
    pub fn new(status: Status) -> Self {
        Self(status, None)
    }

    /// 406: none of the media types the client accepts is served.
    pub fn not_acceptable(message: String) -> Self {
        Self(Status::invalid_argument(message), Some(http::StatusCode::NOT_ACCEPTABLE))
    }

    /// The HTTP status answered.
    pub fn http_status(&self) -> http::StatusCode {
        self.1.unwrap_or_else(|| http_status(self.0.code()))
    }
}

impl From<Status> for RestError {
    fn from(status: Status) -> Self {
        Self::new(status)
    }
}

impl axum::response::IntoResponse for RestError {
    fn into_response(self) -> axum::response::Response {
        let mut response = error_response(&self.0);
        *response.status_mut() = self.http_status();
        response
    }
}

/// A 200 answer of `content_type` holding `body`, not to be cached (it may
/// hold data or who may read it).
pub fn ok_response(content_type: &'static str, body: impl Into<Bytes>) -> axum::response::Response {
    let mut response = axum::response::Response::new(axum::body::Body::from(body.into()));
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response
}

/// The protobuf message `name` encoded in `bytes`, as JSON in protobuf's
/// JSON mapping with the .proto field names and every field shown.
pub fn proto_json(pool: &prost_reflect::DescriptorPool, name: &str, bytes: &[u8]) -> Result<Vec<u8>, Status> {
    let message = pool.get_message_by_name(name).ok_or_else(|| {
        crate::internal_status("answering as JSON", &format!("no message {name} in the contracts"))
    })?;
    let dynamic = prost_reflect::DynamicMessage::decode(message, bytes)
        .map_err(|e| crate::internal_status("answering as JSON", &e))?;
    let options =
        prost_reflect::SerializeOptions::new().use_proto_field_name(true).skip_default_fields(false);
    let mut body = Vec::new();
    dynamic
        .serialize_with_options(&mut serde_json::Serializer::new(&mut body), &options)
        .map_err(|e| crate::internal_status("answering as JSON", &e))?;
    Ok(body)
}

/// The parameters of a query string, each one of `allowed` and given at
/// most once; anything else is INVALID_ARGUMENT naming it.
pub fn query_parameters(
    query: &str,
    allowed: &[&'static str],
) -> Result<Vec<(&'static str, String)>, Status> {
    const MAX_QUERY_BYTES: usize = 64 * 1024;
    if query.len() > MAX_QUERY_BYTES {
        return Err(Status::invalid_argument(format!(
            "the query string is {} bytes, more than the {MAX_QUERY_BYTES} accepted",
            query.len()
        )));
    }
    let mut found: Vec<(&'static str, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let Some(&known) = allowed.iter().find(|p| **p == name) else {
            return Err(Status::invalid_argument(format!(
                "unknown query parameter `{}`; the parameters are {}",
                name.chars().take(100).collect::<String>().escape_debug(),
                allowed.join(", ")
            )));
        };
        if found.iter().any(|(seen, _)| *seen == known) {
            return Err(Status::invalid_argument(format!("{known}: given more than once; give it once")));
        }
        found.push((known, value.into_owned()));
    }
    Ok(found)
}

/// `value` as a whole number for `name`, or INVALID_ARGUMENT saying what it should be.
pub fn number<T: std::str::FromStr>(name: &str, value: &str, expected: &str) -> Result<T, Status> {
    value.parse().map_err(|_| {
        Status::invalid_argument(format!(
            "{name}: `{}` is not {expected}",
            value.chars().take(40).collect::<String>().escape_debug()
        ))
    })
}

/// A Google-style JSON error, as OpenAPI documents describe it.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// The HTTP status.
    code: u16,
    /// The gRPC code's name, e.g. `INVALID_ARGUMENT`.
    status: String,
    /// What was wrong and what to do, naming the parameter or limit.
    message: String,
}

/// The `{id}` of a product in a REST path, as OpenAPI documents describe it.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ProductIdParam {
    /// Product id: `<domain>.<product>`
    #[param(pattern = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", example = "payment.card_spending")]
    id: String,
}

/// The refusals of every path that names a product, for OpenAPI documents.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ProductRefusals {
    /// A malformed id
    #[response(status = 400)]
    MalformedId(ErrorBody),
    /// No valid bearer token
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// Not a product this service knows
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// The refusal of a call without a valid bearer token, for OpenAPI documents.
#[derive(Debug, utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Unauthenticated {
    /// No valid bearer token
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
}

/// Adds the bearer-token security scheme every mesh REST API uses to an
/// OpenAPI document.
#[derive(Debug)]
pub struct BearerTokens;

impl utoipa::Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_google_style_json_with_the_matching_status() {
        let response = error_response(&Status::invalid_argument("filter: bad"));
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()[http::header::CONTENT_TYPE], JSON);
        let body: serde_json::Value =
            serde_json::from_slice(&error_body(&Status::invalid_argument("filter: bad"))).unwrap();
        assert_eq!(
            body,
            json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "filter: bad"}})
        );
        let response = error_response(&Status::unauthenticated("no token"));
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()[http::header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(http_status(Code::ResourceExhausted), 429);
        assert_eq!(http_status(Code::Cancelled), 499);
        assert_eq!(http_status(Code::Aborted), 409);
    }

    #[test]
    fn query_parameters_are_known_and_given_once() {
        let allowed = ["filter", "limit"];
        let found = query_parameters("filter=a%20%3E%201&limit=5", &allowed).unwrap();
        assert_eq!(found, [("filter", "a > 1".to_owned()), ("limit", "5".to_owned())]);
        let message = |q: &str| query_parameters(q, &allowed).unwrap_err().message().to_owned();
        assert_eq!(
            message("colour=red"),
            "unknown query parameter `colour`; the parameters are filter, limit"
        );
        assert_eq!(message("limit=1&limit=2"), "limit: given more than once; give it once");
        assert_eq!(
            number::<i64>("limit", "x", "a whole number").unwrap_err().message(),
            "limit: `x` is not a whole number"
        );
    }
}
