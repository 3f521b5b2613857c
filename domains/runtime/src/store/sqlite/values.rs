//! The runtime's values bound into SQLite statements, and SQLite's errors
//! as the store reports them.

use rusqlite::ErrorCode;
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};

use crate::error::{DomainError, Failure, StorageError};
use crate::store::Stop;
use crate::values::Value;

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(n) => ValueRef::Integer(*n),
            Value::Real(x) => ValueRef::Real(*x),
            Value::Text(text) => ValueRef::Text(text.as_bytes()),
            Value::Blob(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

impl From<rusqlite::Error> for DomainError {
    fn from(error: rusqlite::Error) -> Self {
        let failure = match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Failure::Busy,
            Some(ErrorCode::OperationInterrupted) => Failure::Interrupted,
            _ => Failure::Failed,
        };
        DomainError::Storage(StorageError::new(failure, error))
    }
}

impl From<rusqlite::Error> for Stop {
    fn from(error: rusqlite::Error) -> Self {
        Self::Failed(error.into())
    }
}
