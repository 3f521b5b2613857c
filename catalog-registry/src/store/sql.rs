//! The one way the catalog's queries reach either backend: statements with
//! `$1, $2, ...` placeholders (PostgreSQL's; SQLite binds them by name),
//! owned values in, rows of owned values out. Each query is written once,
//! in SQL both backends accept; where they differ the statement asks
//! [`Sql::backend`].

use crate::error::{RegistryError, Result};

/// Which database the catalog is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The SQLite file.
    Sqlite,
    /// A PostgreSQL server shared by the registry's replicas.
    Postgres,
}

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (a bool as 0/1).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

macro_rules! value_from {
    ($($ty:ty => $make:expr),* $(,)?) => {
        $(impl From<$ty> for Value {
            fn from(value: $ty) -> Self {
                let make: fn($ty) -> Value = $make;
                make(value)
            }
        })*
    };
}

value_from! {
    i64 => Value::Int,
    i32 => |n| Value::Int(i64::from(n)),
    u32 => |n| Value::Int(i64::from(n)),
    bool => |b| Value::Int(i64::from(b)),
    String => Value::Text,
    &str => |s| Value::Text(s.to_owned()),
    &String => |s| Value::Text(s.clone()),
    Vec<u8> => Value::Blob,
    &[u8] => |b| Value::Blob(b.to_vec()),
    Option<&str> => |s| s.map_or(Value::Null, |s| Value::Text(s.to_owned())),
}

/// The values of a statement's placeholders, in order: `params![a, b]`.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::store::sql::Value::from($value)),*][..]
    };
}

/// One result row.
#[derive(Debug, Clone, Default)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, index: usize) -> Result<&Value> {
        self.0.get(index).ok_or_else(|| RegistryError::Internal(format!("a row has no column {index}")))
    }

    fn mismatch(&self, index: usize, wanted: &str) -> RegistryError {
        RegistryError::Internal(format!("column {index} is not {wanted}: {:?}", self.0.get(index)))
    }

    /// An integer column.
    pub fn int(&self, index: usize) -> Result<i64> {
        self.opt_int(index)?.ok_or_else(|| self.mismatch(index, "an integer"))
    }

    /// An integer column that may be NULL.
    pub fn opt_int(&self, index: usize) -> Result<Option<i64>> {
        match self.at(index)? {
            Value::Int(n) => Ok(Some(*n)),
            Value::Null => Ok(None),
            _ => Err(self.mismatch(index, "an integer")),
        }
    }

    /// An integer column that fits 32 bits.
    pub fn i32(&self, index: usize) -> Result<i32> {
        i32::try_from(self.int(index)?).map_err(|_| self.mismatch(index, "a 32-bit integer"))
    }

    /// A non-negative integer column that fits 32 bits.
    pub fn u32(&self, index: usize) -> Result<u32> {
        u32::try_from(self.int(index)?).map_err(|_| self.mismatch(index, "a 32-bit unsigned integer"))
    }

    /// A boolean column (0/1 in SQLite).
    pub fn bool(&self, index: usize) -> Result<bool> {
        Ok(self.int(index)? != 0)
    }

    /// A text column.
    pub fn text(&self, index: usize) -> Result<String> {
        self.opt_text(index)?.ok_or_else(|| self.mismatch(index, "text"))
    }

    /// A text column that may be NULL.
    pub fn opt_text(&self, index: usize) -> Result<Option<String>> {
        match self.at(index)? {
            Value::Text(text) => Ok(Some(text.clone())),
            Value::Null => Ok(None),
            _ => Err(self.mismatch(index, "text")),
        }
    }

    /// A bytes column.
    pub fn blob(&self, index: usize) -> Result<Vec<u8>> {
        self.opt_blob(index)?.ok_or_else(|| self.mismatch(index, "bytes"))
    }

    /// A bytes column that may be NULL.
    pub fn opt_blob(&self, index: usize) -> Result<Option<Vec<u8>>> {
        match self.at(index)? {
            Value::Blob(bytes) => Ok(Some(bytes.clone())),
            Value::Null => Ok(None),
            _ => Err(self.mismatch(index, "bytes")),
        }
    }
}

/// A transaction on the catalog's database.
pub trait Sql {
    /// The backend, for the few statements written differently.
    fn backend(&self) -> Backend;

    /// Runs a statement; the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64>;

    /// Runs a query; its rows.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;

    /// The time now, ms since the epoch: the database's on PostgreSQL, so
    /// every replica computes lease expiry by one clock.
    fn now_ms(&mut self) -> Result<i64>;

    /// Holds the catalog's lock on `key` until the transaction ends, so
    /// that two replicas do not register one product at once.
    fn lock(&mut self, key: &str) -> Result<()>;

    /// Tells every replica, when the transaction commits, that `product`
    /// (or, for `*`, any product) changed.
    fn changed(&mut self, product: &str) -> Result<()>;

    /// The first row of a query, if any.
    fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The one row of a query.
    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row> {
        self.query_opt(sql, params)?
            .ok_or_else(|| RegistryError::Internal(format!("no row from `{}`", sql.trim())))
    }
}

/// A SQLite connection (inside the transaction its caller opened).
pub struct SqliteSql<'a> {
    /// The connection.
    pub conn: &'a rusqlite::Connection,
    /// The registry's clock.
    pub clock: &'a crate::clock::Clock,
}

impl SqliteSql<'_> {
    fn bind(&self, sql: &str, params: &[Value]) -> Result<rusqlite::CachedStatement<'_>> {
        let mut statement = self.conn.prepare_cached(sql)?;
        for (i, value) in params.iter().enumerate() {
            let Some(index) = statement.parameter_index(&format!("${}", i + 1))? else { continue };
            match value {
                Value::Null => statement.raw_bind_parameter(index, rusqlite::types::Null)?,
                Value::Int(n) => statement.raw_bind_parameter(index, n)?,
                Value::Text(text) => statement.raw_bind_parameter(index, text)?,
                Value::Blob(bytes) => statement.raw_bind_parameter(index, bytes)?,
            }
        }
        Ok(statement)
    }
}

impl Sql for SqliteSql<'_> {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        Ok(self.bind(sql, params)?.raw_execute()? as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let mut statement = self.bind(sql, params)?;
        let width = statement.column_count();
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(n) => Value::Int(n),
                    rusqlite::types::ValueRef::Real(x) => Value::Int(x as i64),
                    rusqlite::types::ValueRef::Text(text) => {
                        Value::Text(String::from_utf8_lossy(text).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn now_ms(&mut self) -> Result<i64> {
        Ok(self.clock.now_ms())
    }

    fn lock(&mut self, _key: &str) -> Result<()> {
        // One connection, one writer: the transaction is the lock.
        Ok(())
    }

    fn changed(&mut self, _product: &str) -> Result<()> {
        // One process: its own cache is invalidated by the handler.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_binds_numbered_placeholders_by_name_in_any_order() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let clock = crate::clock::Clock::system();
        let mut sql = SqliteSql { conn: &conn, clock: &clock };
        let row =
            sql.query_one("SELECT $2, $1, $2 || 'x', $3", params!["a", 7i64, Option::<&str>::None]).unwrap();
        assert_eq!(
            row.0,
            vec![Value::Int(7), Value::Text("a".into()), Value::Text("7x".into()), Value::Null]
        );
        assert_eq!(row.int(0).unwrap(), 7);
        assert!(row.text(0).is_err());
    }
}
