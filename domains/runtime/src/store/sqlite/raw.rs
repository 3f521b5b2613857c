//! A scan's statement stepped through SQLite's C API, for the scans' hot
//! loop: a cell is read with one call for its type and one for its value,
//! where rusqlite's `get_ref` also asks the statement for its column count
//! and goes through rusqlite's own value on every cell (about a third of
//! the time a whole-table scan spends reading cells). A pooled connection
//! keeps the statements of its last scans prepared ([`Prepared`]), as
//! rusqlite's statement cache did. Preparing, binding and stepping report
//! SQLite's errors as rusqlite's, so the store maps them as it does every
//! other (an interrupted scan stays one).

use std::cell::RefCell;
use std::ffi::{CStr, c_int};
use std::marker::PhantomData;

use rusqlite::{Connection, ffi};

use crate::error::{DomainError, Result};
use crate::values::Value;
use crate::values::cell::{Cell, CellRow};

/// Statements kept prepared on a connection.
const KEPT: usize = 8;

/// A prepared statement of one connection: finalized when dropped, or
/// reset and kept by its connection's [`Prepared`].
pub(super) struct RawStatement<'c> {
    stmt: *mut ffi::sqlite3_stmt,
    db: *mut ffi::sqlite3,
    columns: usize,
    /// Stepped past its last row (stepping again would run it anew).
    done: bool,
    /// Where it is kept when dropped, under its SQL.
    home: Option<(&'c Prepared, String)>,
    _conn: PhantomData<&'c Connection>,
}

/// The statements one connection keeps prepared between scans, by their
/// SQL, the least recently used finalized past [`KEPT`]; all finalized
/// when it is dropped, which must be before its connection closes (a
/// field declared before the connection's).
#[derive(Default)]
pub(super) struct Prepared(RefCell<Vec<(String, *mut ffi::sqlite3_stmt)>>);

// SAFETY: the statements are used only through their connection, which
// travels with them (SQLite's multi-thread mode: one thread at a time).
unsafe impl Send for Prepared {}

impl Prepared {
    /// The kept statement of `sql`, taken out.
    fn take(&self, sql: &str) -> Option<*mut ffi::sqlite3_stmt> {
        let mut kept = self.0.borrow_mut();
        let index = kept.iter().position(|(kept_sql, _)| kept_sql == sql)?;
        Some(kept.remove(index).1)
    }

    /// Keeps `stmt` (reset, its bindings cleared) under `sql`.
    fn keep(&self, sql: String, stmt: *mut ffi::sqlite3_stmt) {
        let mut kept = self.0.borrow_mut();
        kept.push((sql, stmt));
        if kept.len() > KEPT {
            let (_, oldest) = kept.remove(0);
            // SAFETY: a valid statement no one else holds.
            unsafe { ffi::sqlite3_finalize(oldest) };
        }
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prepared({} statements)", self.0.borrow().len())
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        for (_, stmt) in self.0.get_mut().drain(..) {
            // SAFETY: valid statements no one else holds, their connection open.
            unsafe { ffi::sqlite3_finalize(stmt) };
        }
    }
}

/// The row a [`RawStatement`] stands on, until it steps again.
pub(super) struct RawRow<'s> {
    stmt: *mut ffi::sqlite3_stmt,
    columns: usize,
    _statement: PhantomData<&'s mut ()>,
}

impl<'c> RawStatement<'c> {
    /// `sql` prepared on `conn`.
    pub(super) fn prepare(conn: &'c Connection, sql: &str) -> rusqlite::Result<Self> {
        // SAFETY: the handle is used only while `conn` is borrowed.
        let db = unsafe { conn.handle() };
        let len =
            c_int::try_from(sql.len()).map_err(|_| failure(ffi::SQLITE_TOOBIG, "statement too long"))?;
        let (mut stmt, mut tail) = (std::ptr::null_mut(), std::ptr::null());
        // SAFETY: `sql` is `len` valid bytes; `stmt` receives the statement
        // and `tail` where it ended, within `sql`.
        let rc = unsafe { ffi::sqlite3_prepare_v2(db, sql.as_ptr().cast(), len, &mut stmt, &mut tail) };
        if rc != ffi::SQLITE_OK {
            return Err(last_error(db, rc));
        }
        if stmt.is_null() {
            return Err(failure(ffi::SQLITE_MISUSE, "an empty statement"));
        }
        // SAFETY: `stmt` is a valid prepared statement.
        let columns = unsafe { ffi::sqlite3_column_count(stmt) } as usize;
        let statement = Self { stmt, db, columns, done: false, home: None, _conn: PhantomData };
        // One statement only, as rusqlite's `prepare` insists.
        let used = (tail as usize).saturating_sub(sql.as_ptr() as usize);
        if !sql.get(used..).unwrap_or_default().trim().is_empty() {
            return Err(rusqlite::Error::MultipleStatement);
        }
        Ok(statement)
    }

    /// `sql` on `conn`, the statement `prepared` (`conn`'s own) keeps for it
    /// if any, and kept there again when dropped.
    pub(super) fn kept(conn: &'c Connection, prepared: &'c Prepared, sql: &str) -> rusqlite::Result<Self> {
        let home = Some((prepared, sql.to_owned()));
        let Some(stmt) = prepared.take(sql) else {
            let mut fresh = Self::prepare(conn, sql)?;
            fresh.home = home;
            return Ok(fresh);
        };
        // SAFETY: `stmt` is a statement of `conn` (its `Prepared`).
        let (db, columns) = unsafe { (conn.handle(), ffi::sqlite3_column_count(stmt) as usize) };
        Ok(Self { stmt, db, columns, done: false, home, _conn: PhantomData })
    }

    /// Binds `value` to the 1-based parameter `index`.
    pub(super) fn bind(&mut self, index: usize, value: &Value) -> rusqlite::Result<()> {
        let i = c_int::try_from(index).map_err(|_| failure(ffi::SQLITE_RANGE, "parameter index"))?;
        let stmt = self.stmt;
        // SAFETY: `stmt` is valid; text and blobs are copied by SQLite
        // (SQLITE_TRANSIENT) before the call returns.
        let rc = unsafe {
            match value {
                Value::Null => ffi::sqlite3_bind_null(stmt, i),
                Value::Integer(n) => ffi::sqlite3_bind_int64(stmt, i, *n),
                Value::Real(x) => ffi::sqlite3_bind_double(stmt, i, *x),
                Value::Text(text) => {
                    let len = c_int::try_from(text.len()).map_err(|_| failure(ffi::SQLITE_TOOBIG, "text"))?;
                    ffi::sqlite3_bind_text(stmt, i, text.as_ptr().cast(), len, ffi::SQLITE_TRANSIENT())
                }
                Value::Blob(bytes) => {
                    let len =
                        c_int::try_from(bytes.len()).map_err(|_| failure(ffi::SQLITE_TOOBIG, "blob"))?;
                    ffi::sqlite3_bind_blob(stmt, i, bytes.as_ptr().cast(), len, ffi::SQLITE_TRANSIENT())
                }
            }
        };
        if rc == ffi::SQLITE_OK { Ok(()) } else { Err(last_error(self.db, rc)) }
    }

    /// Steps to the next row; `None` past the last, and ever after.
    pub(super) fn next(&mut self) -> rusqlite::Result<Option<RawRow<'_>>> {
        if self.done {
            return Ok(None);
        }
        // SAFETY: `stmt` is valid and no row of it is borrowed (`&mut self`).
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_ROW => {
                Ok(Some(RawRow { stmt: self.stmt, columns: self.columns, _statement: PhantomData }))
            }
            ffi::SQLITE_DONE => {
                self.done = true;
                Ok(None)
            }
            rc => Err(last_error(self.db, rc)),
        }
    }
}

impl Drop for RawStatement<'_> {
    fn drop(&mut self) {
        match self.home.take() {
            Some((prepared, sql)) => {
                // SAFETY: `stmt` is valid; reset, it holds no read lock and
                // no bound value.
                unsafe {
                    ffi::sqlite3_reset(self.stmt);
                    ffi::sqlite3_clear_bindings(self.stmt);
                }
                prepared.keep(sql, self.stmt);
            }
            // SAFETY: `stmt` is valid and finalized once.
            None => unsafe {
                ffi::sqlite3_finalize(self.stmt);
            },
        }
    }
}

impl CellRow for RawRow<'_> {
    // Inlined into each sink's row loop: a call per cell, its `Result`
    // returned through memory, cost a fifth of a whole read's instructions.
    #[inline(always)]
    fn cell(&self, index: usize) -> Result<Cell<'_>> {
        if index >= self.columns {
            return Err(DomainError::Internal(format!(
                "a scan read cell {index} of a row of {}",
                self.columns
            )));
        }
        let (stmt, i) = (self.stmt, index as c_int);
        // SAFETY: the statement stands on a row (it stepped to one and
        // cannot step again while this row is borrowed) and `i` is one of
        // its columns; text is valid until the statement moves on. The
        // cell's value is read on the connection's only thread (one
        // column call per cell rather than one per question asked of it).
        unsafe {
            let value = ffi::sqlite3_column_value(stmt, i);
            Ok(match ffi::sqlite3_value_type(value) {
                ffi::SQLITE_INTEGER => Cell::Integer(ffi::sqlite3_value_int64(value)),
                ffi::SQLITE_FLOAT => Cell::Real(ffi::sqlite3_value_double(value)),
                ffi::SQLITE_TEXT => {
                    let text = ffi::sqlite3_value_text(value);
                    let len = ffi::sqlite3_value_bytes(value);
                    if text.is_null() || len < 0 {
                        return Err(DomainError::Internal("SQLite gave no text for a text cell".into()));
                    }
                    Cell::Text(std::slice::from_raw_parts(text, len as usize))
                }
                _ => Cell::Null,
            })
        }
    }
}

/// SQLite's error `rc` on `db`, with its message, as rusqlite reports it.
fn last_error(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    // SAFETY: `db` is a valid connection; its message is copied at once.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }.to_string_lossy().into_owned();
    // SAFETY: as above.
    let code = unsafe { ffi::sqlite3_extended_errcode(db) };
    rusqlite::Error::SqliteFailure(
        ffi::Error::new(if code == ffi::SQLITE_OK { rc } else { code }),
        Some(message),
    )
}

fn failure(rc: c_int, what: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(what.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Failure, StorageError};

    #[test]
    fn every_kind_of_cell_and_bound_value_reads_back() {
        let conn = Connection::open_in_memory().unwrap();
        let mut statement = RawStatement::prepare(&conn, "SELECT ?, ?, ?, ?, ?, NULL, x'00ff'").unwrap();
        let values = [
            Value::Integer(-7),
            Value::Real(2.5),
            Value::Text("카드".into()),
            Value::Null,
            Value::Blob(vec![1]),
        ];
        for (i, value) in values.iter().enumerate() {
            statement.bind(i + 1, value).unwrap();
        }
        let row = statement.next().unwrap().expect("one row");
        let cells: Vec<Cell<'_>> = (0..7).map(|i| row.cell(i).unwrap()).collect();
        let text = "카드".as_bytes();
        let expected =
            [Cell::Integer(-7), Cell::Real(2.5), Cell::Text(text), Cell::Null, Cell::Null, Cell::Null];
        assert_eq!(&cells[..6], &expected, "blobs and NULL read as NULL");
        assert_eq!(cells[6], Cell::Null);
        assert!(row.cell(7).is_err(), "no cell past the last");
        assert!(statement.next().unwrap().is_none(), "one row only");
        assert!(statement.next().unwrap().is_none(), "and not run again");
    }

    #[test]
    fn a_kept_statement_starts_over_with_no_value_bound_and_few_are_kept() {
        let prepared = Prepared::default();
        let conn = Connection::open_in_memory().unwrap();
        let sql =
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT i, ? FROM n";
        let mut first = RawStatement::kept(&conn, &prepared, sql).unwrap();
        first.bind(1, &Value::Text("secret".into())).unwrap();
        let row = first.next().unwrap().unwrap();
        assert_eq!((row.cell(0).unwrap(), row.cell(1).unwrap()), (Cell::Integer(1), Cell::Text(b"secret")));
        drop(first);
        let stmt = prepared.0.borrow()[0].1;
        let mut again = RawStatement::kept(&conn, &prepared, sql).unwrap();
        assert_eq!(again.stmt, stmt, "the kept statement, not a new one");
        let row = again.next().unwrap().unwrap();
        assert_eq!(
            (row.cell(0).unwrap(), row.cell(1).unwrap()),
            (Cell::Integer(1), Cell::Null),
            "from the start"
        );
        drop(again);
        for i in 0..KEPT + 3 {
            RawStatement::kept(&conn, &prepared, &format!("SELECT {i}")).unwrap();
        }
        assert_eq!(prepared.0.borrow().len(), KEPT);
        assert!(prepared.take(sql).is_none(), "the least recently used went first");
    }

    #[test]
    fn errors_are_sqlites_and_an_interrupted_scan_stays_one() {
        let conn = Connection::open_in_memory().unwrap();
        let bad = RawStatement::prepare(&conn, "SELEC 1").err().expect("a syntax error");
        assert!(bad.to_string().contains("syntax error"), "{bad}");
        let two = RawStatement::prepare(&conn, "SELECT 1; SELECT 2").err().expect("two statements");
        assert!(matches!(two, rusqlite::Error::MultipleStatement), "{two}");
        assert!(RawStatement::prepare(&conn, "SELECT 1;  ").is_ok(), "a statement may end with `;`");
        let mut statement = RawStatement::prepare(&conn, "SELECT ?").unwrap();
        assert!(statement.bind(2, &Value::Integer(1)).is_err(), "a parameter past the last");
        conn.progress_handler(100, Some(|| true)).unwrap();
        let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n";
        let mut endless = RawStatement::prepare(&conn, sql).unwrap();
        let stopped = loop {
            match endless.next() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("an endless statement ended"),
                Err(error) => break DomainError::from(error),
            }
        };
        assert!(
            matches!(stopped, DomainError::Storage(StorageError { failure: Failure::Interrupted, .. })),
            "{stopped:?}"
        );
    }
}
