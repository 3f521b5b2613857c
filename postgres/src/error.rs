//! What can go wrong with the database, sorted by what a client should do.

use tokio_postgres::error::SqlState;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The flags or URL do not describe a usable database.
    #[error("database configuration: {0}")]
    Config(String),
    /// A statement failed, or the connection did.
    #[error("database: {}", chain(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection could be had in time.
    #[error("database pool: {}", chain(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A migration could not be applied.
    #[error("database migration {version} ({name}): {source}")]
    Migration {
        /// The migration's number.
        version: u32,
        /// Its file name.
        name: &'static str,
        /// Why it failed.
        source: tokio_postgres::Error,
    },
}

/// `error` and its causes, so that a failed TLS handshake says why.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = inner.source();
    }
    text
}

/// Result of a database operation.
pub type Result<T, E = DbError> = std::result::Result<T, E>;

impl DbError {
    /// The server cannot be reached, or is shutting down or starting:
    /// another try (or another replica) may work.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Pool(_) => true,
            Self::Postgres(error) => {
                error.is_closed()
                    || error.as_db_error().is_none()
                        && error.code().is_none()
                        && !error.to_string().contains("error serializing")
                    || error.code().is_some_and(|code| {
                        code.code().starts_with("08")
                            || [
                                SqlState::ADMIN_SHUTDOWN,
                                SqlState::CRASH_SHUTDOWN,
                                SqlState::CANNOT_CONNECT_NOW,
                            ]
                            .contains(code)
                    })
            }
            _ => false,
        }
    }

    /// The statement was cancelled: by its timeout or on request.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Postgres(error) if error.code() == Some(&SqlState::QUERY_CANCELED))
    }

    /// The transaction lost to a concurrent one and may simply be retried.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Postgres(error) if error.code().is_some_and(|code| {
            [SqlState::T_R_SERIALIZATION_FAILURE, SqlState::T_R_DEADLOCK_DETECTED, SqlState::LOCK_NOT_AVAILABLE]
                .contains(code)
        }))
    }
}
