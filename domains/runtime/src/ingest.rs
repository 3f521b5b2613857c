//! Loading a product's table from records (a CSV file, or generated data),
//! in one transaction: a bad record fails the whole load with its line
//! number and reason, and the previous data stays.

use std::io::{IsTerminal, Read};

use csv::ByteRecord;
use indicatif::{ProgressBar, ProgressStyle};
use mesh_contracts::product::QualityResult;

use crate::error::{DomainError, Result};
use crate::quality::{self, QualityRule, RowCounts};
use crate::schema::{ColumnKind, RowSchema};
use crate::store::{DomainStore, record_load};

/// Records with a header, read one at a time.
pub trait RecordSource {
    /// The column names.
    fn header(&self) -> &ByteRecord;
    /// Reads the next record into `record`; false at the end.
    fn read(&mut self, record: &mut ByteRecord) -> Result<bool>;
    /// The line number of the record last read (1 is the header).
    fn line(&self) -> u64;
    /// How many records there will be, when known (for progress).
    fn len_hint(&self) -> Option<u64> {
        None
    }
    /// Where the records come from, for the load's record.
    fn describe(&self) -> String;
}

/// A comma-separated file with a header row (CRLF or LF line ends).
pub struct CsvSource<R: Read> {
    reader: csv::Reader<R>,
    header: ByteRecord,
    name: String,
    line: u64,
}

impl CsvSource<std::fs::File> {
    /// Opens `path`.
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let file = std::fs::File::open(path)
            .map_err(|e| DomainError::Load(format!("cannot open {}: {e}", path.display())))?;
        Self::new(file, path.display().to_string())
    }
}

impl<R: Read> CsvSource<R> {
    /// Reads CSV from `input`, named `name` in messages.
    pub fn new(input: R, name: String) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(input);
        let mut header = reader
            .byte_headers()
            .map_err(|e| DomainError::Load(format!("{name}: cannot read the header: {e}")))?
            .clone();
        if let Some(first) = header.get(0).and_then(|f| f.strip_prefix(b"\xEF\xBB\xBF")) {
            let mut fixed = ByteRecord::new();
            fixed.push_field(first);
            header.iter().skip(1).for_each(|f| fixed.push_field(f));
            header = fixed;
        }
        Ok(Self { reader, header, name, line: 1 })
    }
}

impl<R: Read> RecordSource for CsvSource<R> {
    fn header(&self) -> &ByteRecord {
        &self.header
    }

    fn read(&mut self, record: &mut ByteRecord) -> Result<bool> {
        let more = self.reader.read_byte_record(record).map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(self.line + 1);
            DomainError::Load(format!("{}: line {line}: {e}", self.name))
        })?;
        self.line += 1;
        Ok(more)
    }

    fn line(&self) -> u64 {
        self.line
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// What a finished load did.
#[derive(Debug, Clone)]
pub struct LoadSummary {
    /// Rows now in the table.
    pub rows: i64,
    /// The quality rules' outcomes.
    pub quality: Vec<QualityResult>,
}

/// Replaces `product`'s rows in `schema.table` with the records of
/// `source`, then runs `rules`, all in one transaction. `indexes` are the
/// table's extra indexes; they and the key index are rebuilt after the rows are in.
pub fn load(
    store: &DomainStore,
    product: &str,
    schema: &RowSchema,
    indexes: &[&str],
    source: &mut (dyn RecordSource + Send),
    rules: &[QualityRule],
) -> Result<LoadSummary> {
    let mapping = map_columns(schema, source.header())?;
    let progress = progress_bar(product, source.len_hint());
    let described = source.describe();
    let counted_rules = std::sync::Mutex::new(RowCounts::new(schema, rules)?);
    let row_counts = &counted_rules;
    // Reading and parsing records runs on its own thread, feeding the
    // writer chunks of parsed rows through a bounded channel.
    let summary = std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<Chunk>>(CHUNKS_AHEAD);
        let reader = scope.spawn(|| parse_records(source, schema, &mapping, row_counts, sender));
        let (progress, described) = (&progress, described.as_str());
        let target = LoadTarget { product, schema, indexes, rules, source: described };
        let written = store.write(move |conn| {
            // A big page cache for the load only: a table larger than the
            // cache otherwise spills to the WAL and is read back from it.
            let previous: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
            conn.pragma_update(None, "cache_size", -LOAD_CACHE_KIB)?;
            let written = target.write(conn, receiver, row_counts, progress);
            conn.pragma_update(None, "cache_size", previous)?;
            written
        });
        let read = reader.join().map_err(|_| DomainError::Internal("the record reader panicked".into()))?;
        // A refused record is the real cause when both sides failed.
        read.and(written)
    });
    progress.finish_and_clear();
    let summary = summary?;
    store.announce_load();
    tracing::info!(product, rows = summary.rows, source = %described, "load committed");
    Ok(summary)
}

/// Page cache of the writer while it loads (KiB); the usual size returns after.
const LOAD_CACHE_KIB: i64 = 256 * 1024;

/// Where a load's rows go and what runs on them.
struct LoadTarget<'a> {
    product: &'a str,
    schema: &'a RowSchema,
    indexes: &'a [&'a str],
    rules: &'a [QualityRule],
    source: &'a str,
}

impl LoadTarget<'_> {
    /// Replaces the table's rows with the chunks from `receiver`, rebuilds
    /// the indexes, records quality and the load: one transaction.
    fn write(
        &self,
        conn: &mut rusqlite::Connection,
        receiver: std::sync::mpsc::Receiver<Result<Chunk>>,
        row_counts: &std::sync::Mutex<RowCounts>,
        progress: &ProgressBar,
    ) -> Result<LoadSummary> {
        let (schema, table) = (self.schema, &self.schema.table);
        let mut phases = Phases::start();
        conn.execute_batch(&schema.create_sql())?;
        let tx = conn.transaction()?;
        // Indexes are built once after the rows are in (a sort), not kept
        // up to date row by row.
        for name in self.indexes.iter().chain(&["key"]) {
            tx.execute_batch(&format!("DROP INDEX IF EXISTS {table}_by_{name}"))?;
        }
        tx.execute(&format!("DELETE FROM {table}"), [])?;
        let placeholders = vec!["?"; schema.columns.len()].join(", ");
        let mut insert = tx.prepare(&format!("INSERT INTO {table} VALUES ({placeholders})"))?;
        let mut rows = 0i64;
        for chunk in receiver {
            rows += chunk?.insert(&mut insert, schema.columns.len())?;
            progress.set_position(rows as u64);
        }
        drop(insert);
        phases.end("insert");
        tx.execute_batch(&schema.create_sql())?;
        tx.execute_batch(&schema.index_sql(self.indexes))?;
        phases.end("index");
        // The reader has finished (the channel is drained): its counts are final.
        let counted = row_counts.lock().unwrap_or_else(|p| p.into_inner());
        let quality = quality::run_counted(&tx, schema, self.rules, Some(&counted))?;
        phases.end("quality");
        record_load(&tx, self.product, rows, self.source, &quality)?;
        tx.commit()?;
        phases.end("commit");
        tracing::debug!(product = self.product, rows, phases = %phases, "load phases");
        Ok(LoadSummary { rows, quality })
    }
}

/// How long each phase of a load took, for the log.
struct Phases {
    last: std::time::Instant,
    done: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    fn start() -> Self {
        Self { last: std::time::Instant::now(), done: Vec::new() }
    }

    fn end(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        self.done.push((phase, now - self.last));
        self.last = now;
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phases: Vec<String> =
            self.done.iter().map(|(phase, took)| format!("{phase} {:.2}s", took.as_secs_f64())).collect();
        f.write_str(&phases.join(", "))
    }
}

/// Parsed rows per chunk sent to the writer, and chunks buffered ahead.
const CHUNK_ROWS: usize = 1024;
const CHUNKS_AHEAD: usize = 8;

/// Parsed rows, row-major (one cell per column), with their text in one
/// buffer: a chunk of a thousand rows is a few allocations, not thousands.
#[derive(Debug, Default)]
struct Chunk {
    cells: Vec<Cell>,
    text: String,
}

/// One parsed field.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Integer(i64),
    Real(f64),
    /// A byte range of the chunk's text.
    Text(u32, u32),
}

impl Chunk {
    fn with_capacity(rows: usize, width: usize) -> Self {
        Self { cells: Vec::with_capacity(rows * width), text: String::new() }
    }

    fn rows(&self, width: usize) -> usize {
        self.cells.len() / width.max(1)
    }

    /// Inserts every row with `insert` (one placeholder per column); the number of rows.
    fn insert(&self, insert: &mut rusqlite::Statement<'_>, width: usize) -> Result<i64> {
        for row in self.cells.chunks_exact(width) {
            for (param, cell) in row.iter().enumerate() {
                match *cell {
                    Cell::Integer(n) => insert.raw_bind_parameter(param + 1, n)?,
                    Cell::Real(x) => insert.raw_bind_parameter(param + 1, x)?,
                    Cell::Text(start, end) => {
                        insert.raw_bind_parameter(param + 1, &self.text[start as usize..end as usize])?
                    }
                }
            }
            insert.raw_execute()?;
        }
        Ok(self.rows(width) as i64)
    }
}

/// Reads every record of `source`, checks and parses it, counts the rules
/// checked row by row, and sends the rows in chunks; a refused record is
/// sent as the error that ends the load.
fn parse_records(
    source: &mut (dyn RecordSource + Send),
    schema: &RowSchema,
    mapping: &[usize],
    counts: &std::sync::Mutex<RowCounts>,
    sender: std::sync::mpsc::SyncSender<Result<Chunk>>,
) -> Result<()> {
    let width = source.header().len();
    let columns = schema.columns.len();
    let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
    let mut record = ByteRecord::new();
    let mut integers = vec![0i64; columns];
    let mut chunk = Chunk::with_capacity(CHUNK_ROWS, columns);
    let outcome = (|| {
        while source.read(&mut record)? {
            let line = source.line();
            if record.len() != width {
                return Err(DomainError::Load(format!(
                    "{}: line {line}: expected {width} columns, found {}",
                    source.describe(),
                    record.len()
                )));
            }
            for ((&field, column), integer) in mapping.iter().zip(&schema.columns).zip(&mut integers) {
                let cell = parse(&record[field], column.kind, column.is_amount(), &mut chunk.text).map_err(
                    |reason| {
                        DomainError::Load(format!(
                            "{}: line {line}: column {}: {reason}",
                            source.describe(),
                            column.source_column
                        ))
                    },
                )?;
                *integer = if let Cell::Integer(n) = cell { n } else { 0 };
                chunk.cells.push(cell);
            }
            counts.check(&integers);
            if chunk.rows(columns) == CHUNK_ROWS {
                let full = std::mem::replace(&mut chunk, Chunk::with_capacity(CHUNK_ROWS, columns));
                if sender.send(Ok(full)).is_err() {
                    return Ok(()); // the writer stopped; its error tells why
                }
            }
        }
        Ok(())
    })();
    drop(counts);
    match outcome {
        Ok(()) => {
            let _ = sender.send(Ok(chunk));
            Ok(())
        }
        Err(error) => {
            let message = error.to_string();
            let _ = sender.send(Err(DomainError::Load(message)));
            Err(error)
        }
    }
}

/// For each schema column, the index of its source column in `header`.
fn map_columns(schema: &RowSchema, header: &ByteRecord) -> Result<Vec<usize>> {
    let names: Vec<String> =
        header.iter().map(|f| String::from_utf8_lossy(f).trim().to_ascii_uppercase()).collect();
    let mut missing = Vec::new();
    let mapping = schema
        .columns
        .iter()
        .map(|column| {
            let wanted = column.source_column.to_ascii_uppercase();
            names.iter().position(|n| *n == wanted).unwrap_or_else(|| {
                missing.push(column.source_column.clone());
                0
            })
        })
        .collect();
    if !missing.is_empty() {
        return Err(DomainError::Load(format!(
            "the source has no column {} (its header has: {})",
            missing.join(", "),
            names.join(", ")
        )));
    }
    Ok(mapping)
}

/// Converts one field to the column's value; text goes into `text`. Text
/// that is not UTF-8 is read as EUC-KR (CP949), the usual encoding of Korean
/// extracts. Numbers are read from the bytes without a string in between.
fn parse(raw: &[u8], kind: ColumnKind, amount: bool, text: &mut String) -> std::result::Result<Cell, String> {
    let trimmed = raw.trim_ascii();
    let shown = || String::from_utf8_lossy(trimmed).into_owned();
    match kind {
        ColumnKind::String => {
            let start = text.len();
            match std::str::from_utf8(raw) {
                Ok(utf8) => text.push_str(utf8.trim()),
                Err(_) => text.push_str(encoding_rs::EUC_KR.decode(raw).0.trim()),
            }
            let offset = |n: usize| u32::try_from(n).map_err(|_| "a chunk's text passed 4 GiB".to_owned());
            Ok(Cell::Text(offset(start)?, offset(text.len())?))
        }
        ColumnKind::Integer => {
            let n: i64 = std::str::from_utf8(trimmed)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| format!("`{}` is not a whole number", shown()))?;
            if amount && n < 0 {
                return Err(format!("negative amount {n}"));
            }
            Ok(Cell::Integer(n))
        }
        ColumnKind::Real => std::str::from_utf8(trimmed)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .map(Cell::Real)
            .ok_or_else(|| format!("`{}` is not a number", shown())),
        ColumnKind::Bool => match trimmed {
            b"1" | b"Y" | b"y" | b"true" => Ok(Cell::Integer(1)),
            b"0" | b"N" | b"n" | b"false" | b"" => Ok(Cell::Integer(0)),
            _ => Err(format!("`{}` is not Y/N", shown())),
        },
    }
}

fn progress_bar(product: &str, len: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} rows ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("loading {product}"));
    bar
}
