//! Values in and out of PostgreSQL's binary protocol: bound query values
//! and result cells read without copying; PostgreSQL's errors as the store
//! reports them.

use std::error::Error as StdError;

use bytes::BytesMut;
use mesh_postgres::DbError;
use mesh_postgres::tokio_postgres::Row;
use mesh_postgres::tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::error::{DomainError, Failure, Result, StorageError};
use crate::values::Value;
use crate::values::cell::{Cell, CellRow};

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(n) => n.to_sql(ty, out),
            Value::Real(x) => x.to_sql(ty, out),
            Value::Text(text) => text.to_sql(ty, out),
            Value::Blob(bytes) => bytes.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT8 | Type::FLOAT8 | Type::TEXT | Type::BYTEA)
    }

    to_sql_checked!();
}

/// One cell of a result row, read from its binary form.
struct RawCell<'a>(Cell<'a>);

impl<'a> FromSql<'a> for RawCell<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Self(match *ty {
            Type::INT8 => Cell::Integer(i64::from_be_bytes(raw.try_into()?)),
            Type::INT4 => Cell::Integer(i64::from(i32::from_be_bytes(raw.try_into()?))),
            Type::FLOAT8 => Cell::Real(f64::from_be_bytes(raw.try_into()?)),
            _ => Cell::Text(raw),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Self(Cell::Null))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT8 | Type::INT4 | Type::FLOAT8 | Type::TEXT)
    }
}

impl CellRow for Row {
    fn cell(&self, index: usize) -> Result<Cell<'_>> {
        self.try_get::<_, RawCell<'_>>(index)
            .map(|cell| cell.0)
            .map_err(|e| DomainError::from(DbError::Postgres(e)))
    }
}

impl From<DbError> for DomainError {
    fn from(error: DbError) -> Self {
        let failure = if error.is_unavailable() {
            Failure::Unreachable
        } else if error.is_conflict() {
            Failure::Conflict
        } else {
            Failure::Failed
        };
        DomainError::Storage(StorageError::new(failure, error))
    }
}
