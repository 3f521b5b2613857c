//! A malformed request field as a structured status: INVALID_ARGUMENT with
//! a `google.rpc.BadRequest` field violation naming the field, and, when
//! the problem has a place in the field's text (a filter's 1-based
//! character), a `google.rpc.ErrorInfo` whose metadata carries `field` and
//! `column`. Clients mark the place from these details, never by parsing
//! the English message.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of the mesh's own errors.
pub const ERROR_DOMAIN: &str = "mesh.woori";
/// The `reason` of a malformed request field.
pub const INVALID_FIELD: &str = "INVALID_FIELD";

/// INVALID_ARGUMENT for `field` (e.g. `filter`): the message is
/// `"{field}: {problem}"`, the details name the field and, if given, the
/// column of the problem within it.
pub fn invalid_field(field: &str, problem: &str, column: Option<usize>) -> Status {
    let mut violation = FieldViolation::new(field, problem);
    violation.reason = INVALID_FIELD.to_owned();
    let mut details = ErrorDetails::with_bad_request(vec![violation]);
    if let Some(column) = column {
        let metadata = HashMap::from([
            ("field".to_owned(), field.to_owned()),
            ("column".to_owned(), column.to_string()),
        ]);
        details.set_error_info(INVALID_FIELD, ERROR_DOMAIN, metadata);
    }
    Status::with_error_details(Code::InvalidArgument, format!("{field}: {problem}"), details)
}

/// Where a status says a request field is malformed: the field, and the
/// 1-based column of the problem within it when the status gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The request field, e.g. `filter`.
    pub field: String,
    /// The character of the field's text where the problem is.
    pub column: Option<usize>,
}

/// The malformed field a status names in its details, if it names one.
pub fn field_problem(status: &Status) -> Option<FieldProblem> {
    if status.code() != Code::InvalidArgument {
        return None;
    }
    let violation = status.get_details_bad_request()?.field_violations.into_iter().next()?;
    let column = status
        .get_details_error_info()
        .filter(|info| info.domain == ERROR_DOMAIN && info.metadata.get("field") == Some(&violation.field))
        .and_then(|info| info.metadata.get("column")?.parse().ok());
    Some(FieldProblem { field: violation.field, column })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_problem_survives_the_status_details() {
        let status = invalid_field("filter", "unknown field `x` at column 12", Some(12));
        assert_eq!(status.message(), "filter: unknown field `x` at column 12");
        let problem = field_problem(&status).unwrap();
        assert_eq!(problem, FieldProblem { field: "filter".into(), column: Some(12) });

        let without = invalid_field("limit", "-1 is negative", None);
        assert_eq!(field_problem(&without).unwrap().column, None);
        assert_eq!(field_problem(&Status::invalid_argument("filter: at column 3")), None);
    }
}
