//! The registry's errors and the one place they become gRPC statuses.

use tonic::{Code, Status};

/// Everything a registry call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A request field is missing or malformed.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The request field at fault.
        field: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// The product is not in the catalog.
    #[error("product `{0}` is not in the catalog; ListProducts shows the registered products")]
    ProductNotFound(String),
    /// The product has no endpoint with that URL.
    #[error("product `{product}` has no endpoint `{endpoint}`; register the product again to add it")]
    EndpointNotFound {
        /// The product.
        product: String,
        /// The endpoint that was asked for.
        endpoint: String,
    },
    /// The product has no schema version with that number.
    #[error("product `{product}` has no schema version {version}; its versions are 1 to {latest}")]
    VersionNotFound {
        /// The product.
        product: String,
        /// The version asked for.
        version: i64,
        /// The latest version.
        latest: i64,
    },
    /// The new schema breaks consumers of the current major version.
    #[error(
        "schema of `{product}` breaks consumers of major version {major}: {}; \
         keep the old fields and methods, or raise major_version to {next} to publish a breaking change",
        .changes.join("; "),
        next = .major + 1
    )]
    BreakingChange {
        /// The product.
        product: String,
        /// Its current major version.
        major: u32,
        /// Each breaking change, in words.
        changes: Vec<String>,
    },
    /// The request's major version is below the product's current one.
    #[error("major_version: {requested} is below the current major version {current} of `{product}`")]
    MajorVersionBehind {
        /// The product.
        product: String,
        /// The major version in the request.
        requested: u32,
        /// The product's current major version.
        current: u32,
    },
    /// No agreement with this id.
    #[error("agreements/{0} does not exist; mesh access list shows yours")]
    AgreementNotFound(i64),
    /// No subscription with this id that the caller may see.
    #[error("subscription `{0}` does not exist (or is not yours); mesh subscriptions list shows yours")]
    SubscriptionNotFound(String),
    /// The request does not fit the current state (e.g. approving a revoked agreement).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this: the message names the role needed.
    #[error("{0}")]
    PermissionDenied(String),
    /// A quota is reached: the message names it and what to do.
    #[error("{0}")]
    Quota(String),
    /// The schema version's descriptor set was pruned.
    #[error(
        "schema version {version} of `{product}` was pruned: the registry keeps the descriptor sets of the \
         last {kept} versions; its fingerprint and changes remain in the product's versions"
    )]
    VersionPruned {
        /// The product.
        product: String,
        /// The version asked for.
        version: i64,
        /// How many versions keep their descriptor sets.
        kept: i64,
    },
    /// A reader asked for events retention has deleted.
    #[error(
        "after_sequence: events after {after} are no longer kept (retention deleted them up to {trimmed}); \
         start again after {trimmed} for every event still kept, or from now"
    )]
    EventsTrimmed {
        /// Where the reader asked to start.
        after: i64,
        /// The last sequence number deleted.
        trimmed: i64,
    },
    /// The database failed.
    #[error("catalog storage failed: {0}")]
    Storage(#[from] rusqlite::Error),
    /// The PostgreSQL database failed or cannot be reached.
    #[error("{0}")]
    Database(#[from] mesh_postgres::DbError),
    /// Setting up the server failed.
    #[error("{0}")]
    Grpc(#[from] mesh_grpc::GrpcError),
    /// A blocking task panicked.
    #[error("internal error: {0}")]
    Internal(String),
    /// The registry is stopping: work still queued was cancelled.
    #[error("the registry is shutting down; retry shortly, or on another registry replica")]
    ShuttingDown,
    /// The flags do not make a working configuration.
    #[error("{0}")]
    Config(String),
}

impl RegistryError {
    /// Shorthand for an [`RegistryError::InvalidArgument`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument { field, reason: reason.into() }
    }
}

impl From<RegistryError> for Status {
    fn from(error: RegistryError) -> Self {
        let code = match &error {
            RegistryError::InvalidArgument { .. } => Code::InvalidArgument,
            RegistryError::ProductNotFound(_)
            | RegistryError::EndpointNotFound { .. }
            | RegistryError::VersionNotFound { .. }
            | RegistryError::VersionPruned { .. } => Code::NotFound,
            RegistryError::Quota(_) => Code::ResourceExhausted,
            RegistryError::ShuttingDown => Code::Unavailable,
            RegistryError::EventsTrimmed { .. } => Code::OutOfRange,
            RegistryError::PermissionDenied(_) => Code::PermissionDenied,
            RegistryError::AgreementNotFound(_) | RegistryError::SubscriptionNotFound(_) => Code::NotFound,
            RegistryError::Conflict(_) => Code::FailedPrecondition,
            RegistryError::BreakingChange { .. } | RegistryError::MajorVersionBehind { .. } => {
                Code::FailedPrecondition
            }
            RegistryError::Storage(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    || e.code == rusqlite::ErrorCode::DatabaseLocked =>
            {
                return Status::unavailable("the catalog database is busy; retry shortly");
            }
            RegistryError::Storage(_) => return mesh_grpc::internal_status("catalog storage", &error),
            RegistryError::Database(db) if db.is_unavailable() => {
                tracing::warn!(error = %db, "the catalog database cannot be reached");
                return Status::unavailable(
                    "the catalog's database cannot be reached; retry shortly, or on another registry replica",
                );
            }
            RegistryError::Database(db) if db.is_conflict() => {
                return Status::unavailable("the catalog is busy with a concurrent change; retry shortly");
            }
            RegistryError::Database(_) => return mesh_grpc::internal_status("catalog storage", &error),
            RegistryError::Grpc(_) | RegistryError::Internal(_) | RegistryError::Config(_) => {
                return mesh_grpc::internal_status("registry", &error);
            }
        };
        Status::new(code, error.to_string())
    }
}

/// Result of a registry operation.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_cancelled_by_shutdown_is_unavailable_and_says_where_to_retry() {
        let status = Status::from(RegistryError::ShuttingDown);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "the registry is shutting down; retry shortly, or on another registry replica"
        );
    }
}
