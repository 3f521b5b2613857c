//! Sorting a scan's rows in the scan itself, for orders no index holds (a
//! caller's keyed order of pseudonymized identifiers): the rows are read
//! once in the table's order and kept compactly with their sort keys as
//! bytes ([`key`]), sorted in memory up to a budget, and beyond it written
//! in sorted runs to unnamed temporary files (in the database's own
//! private directory) that are merged as the rows are delivered. Memory
//! stays within the budget however many rows match; under a limit only the
//! rows that can still be delivered are kept.

mod key;
mod row;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::PathBuf;

pub(crate) use row::StoredRow;

use crate::error::{DomainError, Result};
use crate::values::cell::{CellRow, put_varint};

/// Bytes of a temporary run file read or written at a time.
const RUN_BUFFER: usize = 256 * 1024;
/// Runs on disk at most: more are merged into one.
const MAX_RUNS: usize = 16;

/// Rows sorted by their last cells (the sort key), within a memory budget.
pub(crate) struct Sorter {
    /// Cells of each row; the sort key is the last `descending.len()`.
    columns: usize,
    /// Per sort column: whether it descends.
    descending: Vec<bool>,
    /// Rows to deliver at most.
    limit: Option<usize>,
    /// Bytes the rows in memory may take.
    budget: usize,
    /// Rows still arriving, unsorted.
    memory: Batch,
    /// Rows sorted in memory, from this sorter or others absorbed.
    sorted: Vec<Batch>,
    /// Rows sorted in temporary files, with how many rows each holds.
    runs: Vec<(File, usize)>,
    /// Where the temporary files are made.
    spill_dir: PathBuf,
    /// Bytes of the rows pushed, in this sorter and those absorbed.
    pushed: u64,
}

/// Rows in memory: their bytes, their keys, and one entry per row.
#[derive(Default)]
struct Batch {
    rows: Vec<u8>,
    keys: Vec<u8>,
    entries: Vec<Entry>,
}

/// Where one row and its key are in a [`Batch`].
#[derive(Clone, Copy)]
struct Entry {
    prefix: u128,
    key: (u32, u32),
    row: (u32, u32),
}

impl Batch {
    fn bytes(&self) -> usize {
        self.rows.len() + self.keys.len() + self.entries.len() * size_of::<Entry>()
    }

    fn key(&self, entry: &Entry) -> &[u8] {
        &self.keys[entry.key.0 as usize..entry.key.1 as usize]
    }

    fn row(&self, entry: &Entry) -> &[u8] {
        &self.rows[entry.row.0 as usize..entry.row.1 as usize]
    }

    /// Sorts the entries, keeping the first `limit`.
    fn sort(&mut self, limit: Option<usize>) {
        let Self { keys, entries, .. } = self;
        let order = |a: &Entry, b: &Entry| {
            a.prefix.cmp(&b.prefix).then_with(|| {
                keys[a.key.0 as usize..a.key.1 as usize].cmp(&keys[b.key.0 as usize..b.key.1 as usize])
            })
        };
        match limit {
            Some(n) if n < entries.len() => {
                if n > 0 {
                    entries.select_nth_unstable_by(n - 1, order);
                }
                entries.truncate(n);
                entries.sort_unstable_by(order);
            }
            _ => entries.sort_unstable_by(order),
        }
    }

    /// The first `n` rows alone, sorted.
    fn first(&mut self, n: usize) -> Self {
        self.sort(Some(n));
        let mut first = Self::default();
        for entry in &self.entries {
            let (key_start, row_start) = (first.keys.len() as u32, first.rows.len() as u32);
            first.keys.extend_from_slice(self.key(entry));
            first.rows.extend_from_slice(self.row(entry));
            first.entries.push(Entry {
                prefix: entry.prefix,
                key: (key_start, first.keys.len() as u32),
                row: (row_start, first.rows.len() as u32),
            });
        }
        first
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.keys.clear();
        self.entries.clear();
    }
}

impl Sorter {
    /// A sorter of rows of `columns` cells, the last `descending.len()` the
    /// sort key (each descending or not), delivering at most `limit` rows,
    /// keeping at most about `budget` bytes in memory and the rest in
    /// unnamed files in `spill_dir`.
    pub(crate) fn new(
        columns: usize,
        descending: Vec<bool>,
        limit: Option<u64>,
        budget: usize,
        spill_dir: PathBuf,
    ) -> Self {
        Self {
            columns,
            descending,
            limit: limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            // Offsets are 32-bit.
            budget: budget.min(u32::MAX as usize / 2),
            memory: Batch::default(),
            sorted: Vec::new(),
            runs: Vec::new(),
            spill_dir,
            pushed: 0,
        }
    }

    /// Sorts the rows kept in memory so far (on the caller's thread, so
    /// sorters filled side by side also sort side by side).
    pub(crate) fn sort(&mut self) {
        if !self.memory.entries.is_empty() {
            self.memory.sort(self.limit);
            self.sorted.push(std::mem::take(&mut self.memory));
        }
    }

    /// Takes in the rows of `other` (a sorter of the same rows and order).
    pub(crate) fn absorb(&mut self, mut other: Sorter) {
        other.sort();
        self.sorted.append(&mut other.sorted);
        self.runs.append(&mut other.runs);
        self.pushed += other.pushed;
    }

    /// Bytes of the rows pushed (as kept, before any limit).
    pub(crate) fn pushed_bytes(&self) -> u64 {
        self.pushed
    }

    /// Keeps `row`.
    pub(crate) fn push(&mut self, row: &impl CellRow) -> Result<()> {
        let batch = &mut self.memory;
        let (row_start, key_start) = (batch.rows.len(), batch.keys.len());
        row::put(&mut batch.rows, row, self.columns)?;
        self.pushed += (batch.rows.len() - row_start) as u64;
        let first_key = self.columns - self.descending.len();
        for (i, &descending) in self.descending.iter().enumerate() {
            key::put(&mut batch.keys, row.cell(first_key + i)?, descending);
        }
        batch.entries.push(Entry {
            prefix: key::prefix(&batch.keys[key_start..]),
            key: (key_start as u32, batch.keys.len() as u32),
            row: (row_start as u32, batch.rows.len() as u32),
        });
        if batch.bytes() >= self.budget {
            // Under a limit, the rows that can still be delivered may fit.
            if let Some(n) = self.limit.filter(|&n| n < batch.entries.len() / 2) {
                self.memory = batch.first(n);
            }
            if self.memory.bytes() >= self.budget / 2 {
                self.spill()?;
            }
        }
        Ok(())
    }

    /// Writes the rows in memory to a run file, in order.
    fn spill(&mut self) -> Result<()> {
        self.memory.sort(self.limit);
        let mut run = RunWriter::new(&self.spill_dir)?;
        for entry in &self.memory.entries {
            run.write(self.memory.key(entry), self.memory.row(entry))?;
        }
        self.runs.push(run.finish()?);
        self.memory.clear();
        self.fold_runs()
    }

    /// Gives `each` the rows in order (each as kept and decoded) until they
    /// end, the limit is reached or `each` answers `false`.
    pub(crate) fn deliver<E: From<DomainError>>(
        mut self,
        mut each: impl FnMut(&[u8], &StoredRow<'_>) -> Result<bool, E>,
    ) -> Result<(), E> {
        self.sort();
        let limit = self.limit.unwrap_or(usize::MAX);
        if self.runs.is_empty() && self.sorted.len() <= 1 {
            let Some(batch) = self.sorted.pop() else { return Ok(()) };
            let mut row = StoredRow::default();
            for entry in batch.entries.iter().take(limit) {
                row.decode(batch.row(entry))?;
                if !each(batch.row(entry), &row)? {
                    break;
                }
            }
            return Ok(());
        }
        let sources = self.sorted.into_iter().map(|batch| Source::Memory { batch, next: 0 });
        let mut merge = Merge::new(sources.chain(self.runs.into_iter().map(|(file, _)| Source::run(file))))?;
        let mut delivered = 0;
        while delivered < limit && merge.advance()? {
            if !each(merge.row(), &StoredRow::read(merge.row())?)? {
                break;
            }
            delivered += 1;
        }
        Ok(())
    }

    /// Merges the smaller half of the runs on disk into one when there are
    /// [`MAX_RUNS`]: the files open and the buffers reading them stay few
    /// however many rows a scan sorts, and each row is merged again only
    /// a few times (its run being among the smaller ones).
    fn fold_runs(&mut self) -> Result<()> {
        if self.runs.len() < MAX_RUNS {
            return Ok(());
        }
        self.runs.sort_by_key(|(_, rows)| std::cmp::Reverse(*rows));
        let smaller = self.runs.split_off(MAX_RUNS / 2);
        let mut merge = Merge::new(smaller.into_iter().map(|(file, _)| Source::run(file)))?;
        let mut run = RunWriter::new(&self.spill_dir)?;
        while run.rows < self.limit.unwrap_or(usize::MAX) && merge.advance()? {
            run.write(merge.key(), merge.row())?;
        }
        self.runs.push(run.finish()?);
        Ok(())
    }
}

/// A run being written to an unnamed file: length-prefixed keys and rows.
struct RunWriter {
    file: BufWriter<File>,
    lengths: Vec<u8>,
    rows: usize,
}

impl RunWriter {
    fn new(spill_dir: &std::path::Path) -> Result<Self> {
        let file = BufWriter::with_capacity(RUN_BUFFER, tempfile::tempfile_in(spill_dir)?);
        Ok(Self { file, lengths: Vec::with_capacity(20), rows: 0 })
    }

    fn write(&mut self, key: &[u8], row: &[u8]) -> Result<()> {
        self.lengths.clear();
        put_varint(&mut self.lengths, key.len() as u64);
        put_varint(&mut self.lengths, row.len() as u64);
        self.file.write_all(&self.lengths)?;
        self.file.write_all(key)?;
        self.file.write_all(row)?;
        self.rows += 1;
        Ok(())
    }

    /// The run written, ready to be read from its start, and its rows.
    fn finish(self) -> Result<(File, usize)> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok((file, self.rows))
    }
}

/// Sorted sources merged into one order.
struct Merge {
    heap: BinaryHeap<Head>,
    current: Option<Head>,
}

impl Merge {
    fn new(sources: impl Iterator<Item = Source>) -> Result<Self> {
        let mut heap = BinaryHeap::new();
        for (index, source) in sources.enumerate() {
            let mut head = Head { key: Vec::new(), row: Vec::new(), source, index };
            if head.advance()? {
                heap.push(head);
            }
        }
        Ok(Self { heap, current: None })
    }

    /// Moves to the next row in order; `false` after the last.
    fn advance(&mut self) -> Result<bool> {
        if let Some(mut head) = self.current.take()
            && head.advance()?
        {
            self.heap.push(head);
        }
        self.current = self.heap.pop();
        Ok(self.current.is_some())
    }

    /// The current row's key (after an [`Merge::advance`] that said `true`).
    fn key(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], Head::key)
    }

    /// The current row.
    fn row(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], Head::row)
    }
}

/// Where sorted rows are merged from.
enum Source {
    /// A batch sorted in memory, and how many of its entries were reached
    /// (the current one is the last of them).
    Memory { batch: Batch, next: usize },
    /// A run in a temporary file.
    Run(BufReader<File>),
}

impl Source {
    fn run(file: File) -> Self {
        Self::Run(BufReader::with_capacity(RUN_BUFFER, file))
    }
}

/// The current row of one source (read into `key` and `row` from a run),
/// ordered so that the heap's top is the row that sorts first.
struct Head {
    key: Vec<u8>,
    row: Vec<u8>,
    source: Source,
    index: usize,
}

impl Head {
    /// Moves to the source's next row; `false` at its end.
    fn advance(&mut self) -> Result<bool> {
        match &mut self.source {
            Source::Memory { batch, next } => {
                *next += 1;
                Ok(*next <= batch.entries.len())
            }
            Source::Run(run) => {
                let Some(key_len) = read_varint(run)? else { return Ok(false) };
                let row_len = read_varint(run)?.ok_or_else(cut_run)?;
                for (buffer, len) in [(&mut self.key, key_len), (&mut self.row, row_len)] {
                    buffer.resize(len as usize, 0);
                    run.read_exact(buffer)?;
                }
                Ok(true)
            }
        }
    }

    /// The current row's sort key.
    fn key(&self) -> &[u8] {
        match &self.source {
            Source::Memory { batch, next } => batch.key(&batch.entries[*next - 1]),
            Source::Run(_) => &self.key,
        }
    }

    /// The current row.
    fn row(&self) -> &[u8] {
        match &self.source {
            Source::Memory { batch, next } => batch.row(&batch.entries[*next - 1]),
            Source::Run(_) => &self.row,
        }
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: the heap's greatest is the first row; equal keys
        // (none, as rowid ends each) keep source order.
        other.key().cmp(self.key()).then_with(|| other.index.cmp(&self.index))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

/// A varint from `reader`, or `None` at its end.
pub(super) fn read_varint(reader: &mut impl Read) -> Result<Option<u64>> {
    let mut value = 0u64;
    for i in 0..10 {
        let mut byte = [0u8];
        if reader.read(&mut byte)? == 0 {
            return if i == 0 { Ok(None) } else { Err(cut_run()) };
        }
        value |= u64::from(byte[0] & 0x7F) << (7 * i);
        if byte[0] < 0x80 {
            return Ok(Some(value));
        }
    }
    Err(cut_run())
}

fn cut_run() -> DomainError {
    DomainError::Internal("a sorted run of a scan ends mid-row".into())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::store::sqlite::raw::RawStatement;
    use crate::values::cell::Cell;

    /// The ids of the rows `sorter` delivers (the first cell of each).
    fn delivered(sorter: Sorter) -> Vec<i64> {
        let mut ids = Vec::new();
        sorter
            .deliver(|_, row| {
                let Cell::Integer(id) = row.cell(0)? else { panic!("the id is an integer") };
                ids.push(id);
                Ok::<_, DomainError>(true)
            })
            .unwrap();
        ids
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Rows read unsorted from SQLite and sorted by two sorters, in
        /// memory or through many runs on disk, come out as SQLite's ORDER
        /// BY and LIMIT give them.
        #[test]
        fn rows_come_out_in_sqlites_order_in_memory_and_through_runs(
            rows in prop::collection::vec((any::<Option<i8>>(), "[ab]{0,2}", any::<bool>()), 0..300),
            limit in prop::option::of(0u64..320),
            budget in prop_oneof![Just(256usize), Just(4096), Just(1 << 20)],
            split in any::<prop::sample::Index>(),
        ) {
            let conn = rusqlite::Connection::open_in_memory().unwrap();
            conn.execute_batch("CREATE TABLE t (id INTEGER, a INTEGER, b TEXT, c REAL)").unwrap();
            for (id, (a, b, c)) in rows.iter().enumerate() {
                let c = if *c { 0.5 } else { -1.0 };
                conn.execute("INSERT INTO t VALUES (?, ?, ?, ?)", rusqlite::params![id as i64, a, b, c]).unwrap();
            }
            let sql = "SELECT id, c, a, b, rowid FROM t ORDER BY a, b DESC, rowid";
            let limited = match limit { Some(n) => format!("{sql} LIMIT {n}"), None => sql.to_owned() };
            let mut statement = conn.prepare(&limited).unwrap();
            let expected: Vec<i64> = statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();

            // Two sorters take a part of the rows each, as two threads do.
            let mut sorters = [(); 2].map(|_| Sorter::new(5, vec![false, true, false], limit, budget, std::env::temp_dir()));
            let mut unsorted = RawStatement::prepare(&conn, "SELECT id, c, a, b, rowid FROM t").unwrap();
            let split = split.index(rows.len() + 1);
            let mut read = 0;
            while let Some(row) = unsorted.next().unwrap() {
                sorters[usize::from(read >= split)].push(&row).unwrap();
                read += 1;
            }
            let [mut sorter, other] = sorters;
            sorter.absorb(other);
            prop_assert_eq!(delivered(sorter), expected);
        }
    }

    #[test]
    fn runs_on_disk_stay_few_however_many_rows_are_sorted() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut sorter = Sorter::new(1, vec![false], None, 64, std::env::temp_dir());
        let sql = "WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < 3000) \
                   SELECT (value * 7919) % 3001 FROM n";
        let mut statement = RawStatement::prepare(&conn, sql).unwrap();
        while let Some(row) = statement.next().unwrap() {
            sorter.push(&row).unwrap();
            assert!(sorter.runs.len() < MAX_RUNS, "{} runs open", sorter.runs.len());
        }
        let mut expected: Vec<i64> = (1..=3000).map(|v| (v * 7919) % 3001).collect();
        expected.sort();
        assert_eq!(delivered(sorter), expected);
    }

    #[test]
    fn delivery_stops_when_the_reader_wants_no_more() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut sorter = Sorter::new(1, vec![true], None, 64, std::env::temp_dir());
        let sql = "WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < 100) SELECT value FROM n";
        let mut statement = RawStatement::prepare(&conn, sql).unwrap();
        while let Some(row) = statement.next().unwrap() {
            sorter.push(&row).unwrap();
        }
        let mut seen = Vec::new();
        sorter
            .deliver(|_, row| {
                let Cell::Integer(n) = row.cell(0)? else { panic!("an integer") };
                seen.push(n);
                Ok::<_, DomainError>(seen.len() < 3)
            })
            .unwrap();
        assert_eq!(seen, [100, 99, 98]);
    }
}
