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
//! statement, every value bound to it (a caller's order key among them),
//! the caller's query digest (bound to their identity and agreement, so no
//! other caller's read finds it, nor learns by its speed that it was read)
//! and the load (another load holds other rows). Only whole reads are kept
//! (no filter, limit, page or resume point); a delivery cut short is not.
//! The files take at most [`KEPT_BYTES`] together, and the files being
//! written as many again, the least recently read going first; a table's
//! go when this store loads it or a newer load of it is seen, and each goes
//! [`KEPT_FOR`] after it was kept (the domain's health probe sweeps them),
//! so rows changed without a load (which the mesh never does) are not
//! served from one for longer. Nothing outlives the process: the files
//! have no name.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::sorter::{StoredRow, read_varint};
use crate::error::{DomainError, Result};
use crate::query::plan::QueryPlan;
use crate::values::Value;
use crate::values::cell::put_varint;

/// Bytes the kept reads of one database take on disk at most (and the
/// reads being recorded as many again).
pub(super) const KEPT_BYTES: u64 = 512 * 1024 * 1024;
/// How long a read stays kept.
pub(super) const KEPT_FOR: Duration = Duration::from_secs(15 * 60);
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
        let statement = plan.sql(table);
        for bytes in [table.as_bytes(), statement.as_bytes(), plan.order.as_bytes(), &plan.digest] {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
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
    lifetime: Duration,
    state: Mutex<State>,
    /// Bytes the recorders are writing, together.
    recording: Arc<AtomicU64>,
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
    kept: Instant,
    read: Instant,
}

impl KeptReads {
    /// Kept reads taking at most `budget` bytes, each kept for `lifetime`.
    pub(super) fn new(budget: u64, lifetime: Duration) -> Self {
        Self { budget, lifetime, state: Mutex::default(), recording: Arc::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the reads past their lifetime, and those of `table` on
    /// another load than `load`.
    fn forget_stale(&self, state: &mut State, table: &str, load: u64) {
        state.forget(|entry| {
            entry.kept.elapsed() > self.lifetime || (entry.table == table && entry.load != load)
        });
    }

    /// The rows kept under `key` (a read of `table` on load `load`), if any.
    pub(super) fn find(&self, key: &KeptKey, table: &str, load: u64) -> Option<KeptRows> {
        let mut state = self.state();
        self.forget_stale(&mut state, table, load);
        let entry = state.entries.get_mut(key)?;
        entry.read = Instant::now();
        let reader = At { file: Arc::clone(&entry.file), offset: 0, end: entry.bytes };
        Some(KeptRows { key: *key, reader: BufReader::with_capacity(BUFFER, reader), row: Vec::new() })
    }

    /// Forgets the read kept under `key` (it could not be read back).
    pub(super) fn forget(&self, key: &KeptKey) {
        let mut state = self.state();
        if let Some(entry) = state.entries.remove(key) {
            state.bytes -= entry.bytes;
        }
    }

    /// Forgets every read of `table` (loaded again).
    pub(super) fn forget_table(&self, table: &str) {
        self.state().forget(|entry| entry.table == table);
    }

    /// Forgets the reads kept for longer than their lifetime.
    pub(super) fn sweep(&self) {
        self.state().forget(|entry| entry.kept.elapsed() > self.lifetime);
    }

    /// A recorder of rows to keep, about `bytes` of them, in an unnamed
    /// file in `dir`; `None` if they cannot fit or no file can be made there
    /// (the read goes on unkept).
    pub(super) fn recorder(&self, dir: &Path, bytes: u64) -> Option<Recorder> {
        if bytes > self.budget {
            return None;
        }
        let file = tempfile::tempfile_in(dir).ok()?;
        Some(Recorder {
            file: Some(BufWriter::with_capacity(BUFFER, file)),
            bytes: 0,
            budget: self.budget,
            recording: Arc::clone(&self.recording),
        })
    }

    /// Keeps what `recorder` wrote under `key`, the rows of a read of
    /// `table` on load `load` delivered to their end.
    pub(super) fn keep(&self, key: KeptKey, table: &str, load: u64, recorder: Recorder) {
        let Some((file, bytes)) = recorder.finish() else { return };
        let mut state = self.state();
        self.forget_stale(&mut state, table, load);
        let now = Instant::now();
        let entry =
            Entry { file: Arc::new(file), bytes, table: table.to_owned(), load, kept: now, read: now };
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
/// recorder that fails to write, or takes the recorders past the budget
/// together, keeps nothing (and stops writing).
pub(super) struct Recorder {
    /// `None` once something was lost.
    file: Option<BufWriter<File>>,
    bytes: u64,
    budget: u64,
    recording: Arc<AtomicU64>,
}

impl Recorder {
    /// Records one row's bytes (as the sorter holds them).
    pub(super) fn row(&mut self, row: &[u8]) {
        let Some(file) = self.file.as_mut() else { return };
        let mut length = Vec::with_capacity(10);
        put_varint(&mut length, row.len() as u64);
        let size = (length.len() + row.len()) as u64;
        self.bytes += size;
        let together = self.recording.fetch_add(size, Ordering::Relaxed) + size;
        let written = file.write_all(&length).and_then(|()| file.write_all(row));
        if written.is_err() || together > self.budget {
            self.file = None;
        }
    }

    /// The file written and its size, unless something was lost.
    fn finish(mut self) -> Option<(File, u64)> {
        let file = self.file.take()?.into_inner().ok()?;
        Some((file, self.bytes))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.recording.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Kept rows read back from their start.
pub(super) struct KeptRows {
    key: KeptKey,
    reader: BufReader<At>,
    row: Vec<u8>,
}

impl KeptRows {
    /// The key the rows are kept under.
    pub(super) fn key(&self) -> KeptKey {
        self.key
    }

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
