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
}
