//! Loading a product's table from records (a CSV file, or generated data),
//! in one transaction: a bad record fails the whole load with its line
//! number and reason, and the previous data stays.

use std::io::{IsTerminal, Read};

use csv::ByteRecord;
use indicatif::{ProgressBar, ProgressStyle};
use mesh_contracts::product::QualityResult;
use rusqlite::types::Value;

use crate::error::{DomainError, Result};
use crate::quality::{self, QualityRule};
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
/// table's extra indexes, rebuilt after the rows are in.
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
    // Reading and parsing records runs on its own thread, feeding the
    // writer chunks of parsed rows through a bounded channel.
    let summary = std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<Vec<Vec<Value>>>>(CHUNKS_AHEAD);
        let reader = scope.spawn(|| parse_records(source, schema, &mapping, sender));
        let (progress, described) = (&progress, &described);
        let written = store.write(move |conn| {
            conn.execute_batch(&schema.create_sql())?;
            let tx = conn.transaction()?;
            for name in indexes {
                tx.execute_batch(&format!("DROP INDEX IF EXISTS {}_by_{name}", schema.table))?;
            }
            tx.execute(&format!("DELETE FROM {}", schema.table), [])?;
            let placeholders = vec!["?"; schema.columns.len()].join(", ");
            let mut insert = tx.prepare(&format!("INSERT INTO {} VALUES ({placeholders})", schema.table))?;
            let mut rows = 0i64;
            for chunk in receiver {
                for row in chunk? {
                    for (param, value) in row.iter().enumerate() {
                        insert.raw_bind_parameter(param + 1, value)?;
                    }
                    insert.raw_execute()?;
                    rows += 1;
                }
                progress.set_position(rows as u64);
            }
            drop(insert);
            tx.execute_batch(&schema.index_sql(indexes))?;
            let quality = quality::run(&tx, schema, rules)?;
            record_load(&tx, product, rows, described, &quality)?;
            tx.commit()?;
            Ok(LoadSummary { rows, quality })
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

/// Parsed rows per chunk sent to the writer, and chunks buffered ahead.
const CHUNK_ROWS: usize = 1024;
const CHUNKS_AHEAD: usize = 8;

/// Reads every record of `source`, checks and parses it, and sends the rows
/// in chunks; a refused record is sent as the error that ends the load.
fn parse_records(
    source: &mut (dyn RecordSource + Send),
    schema: &RowSchema,
    mapping: &[usize],
    sender: std::sync::mpsc::SyncSender<Result<Vec<Vec<Value>>>>,
) -> Result<()> {
    let width = source.header().len();
    let mut record = ByteRecord::new();
    let mut chunk = Vec::with_capacity(CHUNK_ROWS);
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
            let row = mapping
                .iter()
                .zip(&schema.columns)
                .map(|(&field, column)| {
                    parse(&record[field], column.kind, column.is_amount()).map_err(|reason| {
                        DomainError::Load(format!(
                            "{}: line {line}: column {}: {reason}",
                            source.describe(),
                            column.source_column
                        ))
                    })
                })
                .collect::<Result<Vec<Value>>>()?;
            chunk.push(row);
            if chunk.len() == CHUNK_ROWS {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_ROWS));
                if sender.send(Ok(full)).is_err() {
                    return Ok(()); // the writer stopped; its error tells why
                }
            }
        }
        Ok(())
    })();
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

/// Converts one field to the column's SQL value. Text that is not UTF-8 is
/// read as EUC-KR (CP949), the usual encoding of Korean extracts.
fn parse(raw: &[u8], kind: ColumnKind, amount: bool) -> std::result::Result<Value, String> {
    let text = match std::str::from_utf8(raw) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => encoding_rs::EUC_KR.decode(raw).0,
    };
    let text = text.trim();
    match kind {
        ColumnKind::String => Ok(Value::Text(text.to_owned())),
        ColumnKind::Integer => {
            let n: i64 = text.parse().map_err(|_| format!("`{text}` is not a whole number"))?;
            if amount && n < 0 {
                return Err(format!("negative amount {n}"));
            }
            Ok(Value::Integer(n))
        }
        ColumnKind::Real => {
            text.parse::<f64>().map(Value::Real).map_err(|_| format!("`{text}` is not a number"))
        }
        ColumnKind::Bool => match text {
            "1" | "Y" | "y" | "true" => Ok(Value::Integer(1)),
            "0" | "N" | "n" | "false" | "" => Ok(Value::Integer(0)),
            other => Err(format!("`{other}` is not Y/N")),
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
