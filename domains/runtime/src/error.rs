//! The domain runtime's errors and the one place they become gRPC statuses.

use tonic::{Code, Status};

/// Everything serving, loading or registering a product can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A query field is malformed: the message names the field and the problem.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The request field at fault (`filter`, `read_mask`, ...).
        field: &'static str,
        /// What is wrong, where, and what is valid.
        reason: String,
        /// The 1-based character of the field's text where the problem is,
        /// sent to the caller as a structured detail.
        column: Option<usize>,
    },
    /// A source file or record cannot be loaded; nothing was changed.
    #[error("load refused: {0}")]
    Load(String),
    /// The product's contract cannot be served as a table.
    #[error("product schema: {0}")]
    Schema(String),
    /// The domain is configured so it cannot serve safely.
    #[error("configuration: {0}")]
    Config(String),
    /// The product has no data yet, or its data cannot be read now.
    #[error("{0}")]
    Unavailable(String),
    /// The caller may not read this: the message says what is missing and
    /// how to ask for it.
    #[error("{0}")]
    PermissionDenied(String),
    /// The data changed under a resumed query.
    #[error("{0}")]
    Aborted(String),
    /// The database failed, as the store reports it.
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
    /// Reading a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Setting up a server or a client failed.
    #[error("{0}")]
    Grpc(#[from] mesh_grpc::GrpcError),
    /// A call to another service failed.
    #[error("{0}")]
    Upstream(#[from] Status),
    /// A task failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// Shorthand for an [`DomainError::InvalidArgument`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument { field, reason: reason.into(), column: None }
    }

    /// A malformed `filter`, placed at the column the filter parser gives.
    pub fn invalid_filter(error: mesh_filter::FilterError) -> Self {
        Self::InvalidArgument { field: "filter", reason: error.message, column: error.column }
    }
}

impl From<DomainError> for Status {
    fn from(error: DomainError) -> Self {
        let code = match &error {
            DomainError::InvalidArgument { field, reason, column } => {
                return mesh_grpc::bad_request::invalid_field(field, reason, *column);
            }
            DomainError::Load(_) => Code::FailedPrecondition,
            DomainError::Unavailable(_) => Code::Unavailable,
            DomainError::Aborted(_) => Code::Aborted,
            DomainError::PermissionDenied(_) => Code::PermissionDenied,
            DomainError::Upstream(status) => {
                return Status::new(Code::Unavailable, format!("upstream call failed: {}", status.message()));
            }
            DomainError::Storage(storage) => match storage.failure {
                Failure::Busy => {
                    return Status::unavailable("the database is busy with a load; retry shortly");
                }
                Failure::Unreachable => {
                    tracing::warn!(error = %storage, "the database cannot be reached");
                    return Status::unavailable(
                        "the domain's database cannot be reached; retry shortly, or on another replica",
                    );
                }
                Failure::Conflict => {
                    return Status::unavailable(
                        "the database is busy with a concurrent change; retry shortly",
                    );
                }
                Failure::Interrupted | Failure::Failed => {
                    return mesh_grpc::internal_status("storage", &error);
                }
            },
            DomainError::Io(_) => return mesh_grpc::internal_status("file", &error),
            DomainError::Grpc(_)
            | DomainError::Schema(_)
            | DomainError::Config(_)
            | DomainError::Internal(_) => {
                return mesh_grpc::internal_status("domain", &error);
            }
        };
        Status::new(code, error.to_string())
    }
}

/// A database failure: what kind (which decides what the caller is told)
/// and the database's own words, for the log only.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct StorageError {
    /// What kind of failure.
    pub failure: Failure,
    /// The database's message; never sent to a caller.
    pub detail: String,
}

/// The kinds of database failure the runtime tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Another connection holds the lock (a load): retry shortly.
    Busy,
    /// The server cannot be reached, or is starting or stopping.
    Unreachable,
    /// The transaction lost to a concurrent one and may be retried.
    Conflict,
    /// A statement was interrupted because its scan was told to stop.
    Interrupted,
    /// Anything else.
    Failed,
}

impl StorageError {
    /// A failure of kind `failure` with the database's `detail`.
    pub fn new(failure: Failure, detail: impl std::fmt::Display) -> Self {
        Self { failure, detail: detail.to_string() }
    }
}

/// Result of a domain operation.
pub type Result<T, E = DomainError> = std::result::Result<T, E>;
