//! Sorted whole reads kept for their caller's next read of the same data.
//!
//! A caller who receives identifiers as pseudonyms gets a whole product in
//! an order of their own, which the scan must sort before the first row
//! goes out (see `sorter`). Readers of a whole product (a notebook run
//! again, a client reading every part of a Flight read) often read it
//! again: the rows as delivered are kept in an unnamed file in the
//! database's own private directory, and the same statement with the same
//! values on the same load is answered from it, in the same order and
//! byte for byte the same rows.
//!
//! What may be kept and found is bound by a key that hashes the table, the
//! statement, every value bound to it (a caller's order key among them, so
//! no other caller's read finds it) and the load (another load holds other
//! rows). Only whole reads are kept (no filter, limit, page or resume
//! point); a delivery cut short is not. The files take at most
//! [`KEPT_BYTES`] together, the least recently read going first; those of
//! an older load of the table go when a newer one is seen, and any file
//! unread for [`KEPT_IDLE`] goes at the next read or keep. Nothing outlives
//! the process: the files have no name.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::sorter::{StoredRow, read_varint};
use crate::error::{DomainError, Result};
use crate::query::plan::QueryPlan;
use crate::values::Value;
use crate::values::cell::put_varint;

/// Bytes the kept reads of one database take on disk at most.
pub(super) const KEPT_BYTES: u64 = 512 * 1024 * 1024;
/// How long a kept read stays unread before it goes.
pub(super) const KEPT_IDLE: Duration = Duration::from_secs(15 * 60);
/// Bytes of a kept file read or written at a time.
const BUFFER: usize = 256 * 1024;

/// What identifies a kept read: a hash of everything that decides its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct KeptKey([u8; 32]);

impl KeptKey {
    /// The key of `plan`'s read of `table` on load `load`, if its rows may
    /// be kept: a read the store sorts itself, of every row the caller may
    /// read (the statement holds their scope, not the order's direction).
    pub(super) fn of(table: &str, plan: &QueryPlan, load: u64) -> Option<Self> {
        let whole = plan.sorts_in_scan
            && !plan.filtered
            && plan.row_limit().is_none()
            && plan.resumed_load.is_none()
            && plan.delivered == 0;
        if !whole {
            return None;
        }
        let mut hash = Sha256::new();
        for text in [table, plan.sql(table).as_str(), plan.order.as_str()] {
            hash.update((text.len() as u64).to_le_bytes());
            hash.update(text.as_bytes());
        }
        hash.update((plan.params.len() as u64).to_le_bytes());
        for value in &plan.params {
            let (tag, bytes) = match value {
                Value::Null => (0u8, Vec::new()),
                Value::Integer(n) => (1, n.to_le_bytes().to_vec()),
                Value::Real(x) => (2, x.to_le_bytes().to_vec()),
                Value::Text(text) => (3, text.as_bytes().to_vec()),
                Value::Blob(blob) => (4, blob.clone()),
            };
            hash.update([tag]);
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        }
        hash.update(load.to_le_bytes());
        Some(Self(hash.finalize().into()))
    }
}

/// The kept reads of one database.
#[derive(Debug)]
pub(super) struct KeptReads {
    budget: u64,
    idle: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<KeptKey, Entry>,
    bytes: u64,
}

#[derive(Debug)]
struct Entry {
    file: Arc<File>,
    bytes: u64,
    table: String,
    load: u64,
    read: Instant,
}

impl KeptReads {
    /// Kept reads taking at most `budget` bytes, each gone once unread for `idle`.
    pub(super) fn new(budget: u64, idle: Duration) -> Self {
        Self { budget, idle, state: Mutex::default() }
    }

    /// The rows kept under `key` (a read of `table` on load `load`), if any.
    pub(super) fn find(&self, key: &KeptKey, table: &str, load: u64) -> Option<KeptRows> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .forget(|entry| entry.read.elapsed() > self.idle || (entry.table == table && entry.load != load));
        let entry = state.entries.get_mut(key)?;
        entry.read = Instant::now();
        let reader = At { file: Arc::clone(&entry.file), offset: 0, end: entry.bytes };
        Some(KeptRows { reader: BufReader::with_capacity(BUFFER, reader), row: Vec::new() })
    }

    /// A recorder of rows to keep, in an unnamed file in `dir`; `None` if
    /// no file can be made there (the read goes on unkept).
    pub(super) fn recorder(&self, dir: &Path) -> Option<Recorder> {
        let file = tempfile::tempfile_in(dir).ok()?;
        Some(Recorder {
            file: BufWriter::with_capacity(BUFFER, file),
            bytes: 0,
            budget: self.budget,
            lost: false,
        })
    }

    /// Keeps what `recorder` wrote under `key`, the rows of a read of
    /// `table` on load `load` delivered to their end.
    pub(super) fn keep(&self, key: KeptKey, table: &str, load: u64, recorder: Recorder) {
        let Some((file, bytes)) = recorder.finish() else { return };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .forget(|entry| entry.read.elapsed() > self.idle || (entry.table == table && entry.load != load));
        let entry =
            Entry { file: Arc::new(file), bytes, table: table.to_owned(), load, read: Instant::now() };
        if let Some(replaced) = state.entries.insert(key, entry) {
            state.bytes -= replaced.bytes;
        }
        state.bytes += bytes;
        while state.bytes > self.budget {
            let oldest = state.entries.iter().min_by_key(|(_, entry)| entry.read).map(|(key, _)| *key);
            let Some(entry) = oldest.and_then(|key| state.entries.remove(&key)) else { break };
            state.bytes -= entry.bytes;
        }
    }
}

impl State {
    /// Drops the entries `stale` says to.
    fn forget(&mut self, stale: impl Fn(&Entry) -> bool) {
        let bytes = &mut self.bytes;
        self.entries.retain(|_, entry| {
            let keep = !stale(entry);
            if !keep {
                *bytes -= entry.bytes;
            }
            keep
        });
    }
}

/// Rows being written to be kept: each its length and its bytes. A
/// recorder that fails to write, or passes the budget, keeps nothing.
pub(super) struct Recorder {
    file: BufWriter<File>,
    bytes: u64,
    budget: u64,
    lost: bool,
}

impl Recorder {
    /// Records one row's bytes (as the sorter holds them).
    pub(super) fn row(&mut self, row: &[u8]) {
        if self.lost {
            return;
        }
        let mut length = Vec::with_capacity(10);
        put_varint(&mut length, row.len() as u64);
        self.bytes += (length.len() + row.len()) as u64;
        let written = self.file.write_all(&length).and_then(|()| self.file.write_all(row));
        self.lost = written.is_err() || self.bytes > self.budget;
    }

    /// The file written and its size, unless something was lost.
    fn finish(self) -> Option<(File, u64)> {
        if self.lost {
            return None;
        }
        let file = self.file.into_inner().ok()?;
        Some((file, self.bytes))
    }
}

/// Kept rows read back from their start.
pub(super) struct KeptRows {
    reader: BufReader<At>,
    row: Vec<u8>,
}

impl KeptRows {
    /// Gives `each` the rows in order until they end or `each` answers `false`.
    pub(super) fn deliver<E: From<DomainError>>(
        mut self,
        mut each: impl FnMut(&StoredRow<'_>) -> Result<bool, E>,
    ) -> Result<(), E> {
        while let Some(length) = read_varint(&mut self.reader)? {
            self.row.resize(length as usize, 0);
            self.reader.read_exact(&mut self.row).map_err(DomainError::from)?;
            if !each(&StoredRow::read(&self.row)?)? {
                break;
            }
        }
        Ok(())
    }
}

/// A file read from `offset` on without moving a position others share.
struct At {
    file: Arc<File>,
    offset: u64,
    end: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = buf.len().min(usize::try_from(self.end - self.offset).unwrap_or(usize::MAX));
        let read = self.file.read_at(&mut buf[..room], self.offset)?;
        self.offset += read as u64;
        Ok(read)
    }
}
