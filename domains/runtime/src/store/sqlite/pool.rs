//! The scan connections of a SQLite store: at most a set number, opened
//! when first needed, each given back (or closed after a panic) when its
//! guard drops.

use std::path::Path;
use std::sync::{Condvar, Mutex};

use rusqlite::Connection;

use super::raw::{Prepared, RawStatement};
use super::{MIN_READER_CACHE_BYTES, READER_WAIT, SCAN_CACHE_BYTES, open_reader};
use crate::error::{DomainError, Result};

/// The scan connections: at most `capacity`, opened when first needed.
#[derive(Debug)]
pub(super) struct ReaderPool {
    capacity: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct PoolState {
    idle: Vec<Pooled>,
    open: usize,
    /// Scans waiting for a connection (which a helper must not take).
    waiting: usize,
}

/// A scan connection taken from the pool: given back when dropped, or
/// closed and its place freed when dropped by a panic.
pub(super) struct Reader<'p> {
    pool: &'p ReaderPool,
    conn: Option<Pooled>,
}

/// A scan connection and the statements it keeps prepared (finalized
/// first: declared first).
#[derive(Debug)]
struct Pooled {
    prepared: Prepared,
    conn: Connection,
}

impl Reader<'_> {
    /// `sql` prepared on this connection, or the statement it kept for it.
    pub(super) fn statement(&self, sql: &str) -> rusqlite::Result<RawStatement<'_>> {
        let pooled = self.conn.as_ref().expect("a reader holds its connection until dropped");
        RawStatement::kept(&pooled.conn, &pooled.prepared, sql)
    }
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn.as_ref().expect("a reader holds its connection until dropped").conn
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut state = self.pool.state.lock().unwrap_or_else(|p| p.into_inner());
        if std::thread::panicking() {
            drop(conn);
            state.open -= 1;
        } else {
            state.idle.push(conn);
        }
        self.pool.freed.notify_one();
    }
}
impl ReaderPool {
    pub(super) fn new(capacity: usize) -> Self {
        Self { capacity, state: Mutex::new(PoolState::default()), freed: Condvar::new() }
    }

    /// An idle connection, a new one while under capacity, or the next one
    /// given back.
    pub(super) fn take(&self, path: &Path) -> Result<Reader<'_>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(self.reader(conn));
            }
            if state.open < self.capacity {
                state.open += 1;
                drop(state);
                return self.open(path);
            }
            state.waiting += 1;
            let (next, timeout) =
                self.freed.wait_timeout(state, READER_WAIT).unwrap_or_else(|p| p.into_inner());
            state = next;
            state.waiting -= 1;
            if timeout.timed_out() && state.idle.is_empty() {
                return Err(DomainError::Unavailable(format!(
                    "all {} read connections stayed busy for {} s; retry later",
                    self.capacity,
                    READER_WAIT.as_secs()
                )));
            }
        }
    }

    /// An idle connection or a new one while under capacity, without
    /// waiting: `None` when all are busy, a scan waits for one, or one
    /// cannot be opened.
    pub(super) fn try_take(&self, path: &Path) -> Option<Reader<'_>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.waiting > 0 {
            return None;
        }
        if let Some(conn) = state.idle.pop() {
            return Some(self.reader(conn));
        }
        if state.open >= self.capacity {
            return None;
        }
        state.open += 1;
        drop(state);
        self.open(path).ok()
    }

    /// A new connection in a place already counted as open.
    fn open(&self, path: &Path) -> Result<Reader<'_>> {
        let cache = (SCAN_CACHE_BYTES / self.capacity).max(MIN_READER_CACHE_BYTES);
        match open_reader(path, cache) {
            Ok(conn) => Ok(self.reader(Pooled { prepared: Prepared::default(), conn })),
            Err(error) => {
                self.state.lock().unwrap_or_else(|p| p.into_inner()).open -= 1;
                Err(error)
            }
        }
    }

    fn reader(&self, conn: Pooled) -> Reader<'_> {
        Reader { pool: self, conn: Some(conn) }
    }
}
