//! Loading a product's table from records (a CSV file, or generated data),
//! in one transaction: a bad record fails the whole load with its line
//! number and reason, and the previous data stays.

use std::io::{IsTerminal, Read};

use csv::ByteRecord;
use indicatif::{ProgressBar, ProgressStyle};
use mesh_contracts::product::QualityResult;

mod parse;

use parse::{CHUNKS_AHEAD, Chunk, parse_records};

use crate::error::{DomainError, Result};
use crate::product::Product;
use crate::quality::{self, QualityRule, RowCounts};
use crate::schema::RowSchema;
use crate::store::record_load;

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

/// Records held in memory, e.g. the rows a derived product computed.
#[derive(Debug, Clone)]
pub struct MemorySource {
    header: ByteRecord,
    records: std::vec::IntoIter<ByteRecord>,
    line: u64,
    name: String,
}

impl MemorySource {
    /// `records` under `header` (field or source column names), described as `name`.
    pub fn new(header: &[&str], records: Vec<ByteRecord>, name: String) -> Self {
        Self { header: ByteRecord::from(header.to_vec()), records: records.into_iter(), line: 1, name }
    }
}

impl RecordSource for MemorySource {
    fn header(&self) -> &ByteRecord {
        &self.header
    }

    fn read(&mut self, record: &mut ByteRecord) -> Result<bool> {
        match self.records.next() {
            Some(next) => {
                *record = next;
                self.line += 1;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn line(&self) -> u64 {
        self.line
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.records.len() as u64)
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

/// Replaces `product`'s rows with the records of `source`, then runs
/// `rules`, all in one transaction. The product's extra indexes and its key
/// index are rebuilt after the rows are in. Every way a product's rows are
/// replaced (a source file, generated data, a derived product's rebuild)
/// goes through here.
pub fn load(
    product: &Product,
    source: &mut (dyn RecordSource + Send),
    rules: &[QualityRule],
) -> Result<LoadSummary> {
    let (store, schema, indexes) = (&product.store, &product.schema, product.spec.indexes);
    let product = product.spec.id;
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

/// For each schema column, the index of its source column in `header`.
fn map_columns(schema: &RowSchema, header: &ByteRecord) -> Result<Vec<usize>> {
    let names: Vec<String> =
        header.iter().map(|f| String::from_utf8_lossy(f).trim().to_ascii_uppercase()).collect();
    let mut missing = Vec::new();
    let mapping = schema
        .columns
        .iter()
        .map(|column| {
            // A source names a column by the contract's source column or,
            // failing that, by the field name.
            let (source, field) =
                (column.source_column.to_ascii_uppercase(), column.name.to_ascii_uppercase());
            let found =
                names.iter().position(|n| *n == source).or_else(|| names.iter().position(|n| *n == field));
            found.unwrap_or_else(|| {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::product::ProductSpec;
    use crate::store::DomainStore;

    /// The payment contract's product over a fresh database; amounts are
    /// only the three totals, to keep the records short.
    fn product(dir: &std::path::Path) -> Arc<Product> {
        let spec = ProductSpec {
            id: "payment.card_spending",
            service: "woori.payment.v1.CardSpendingService",
            table: "card_spending",
            key: &["bas_yh", "seq"],
            indexes: &["seq"],
            amounts: &["tot_use_am", "crdsl_use_am", "cnf_use_am"],
        };
        Product::new(spec, DomainStore::open(&dir.join("payment.sqlite")).unwrap()).unwrap()
    }

    /// Records under a header naming every column, by source column (upper
    /// case) for the key and by field name for the rest; each row gives the
    /// key and the three totals, the other amounts are 0.
    fn source(product: &Product, rows: &[[&str; 5]]) -> MemorySource {
        let columns = &product.schema.columns;
        let header: Vec<&str> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| if i < 2 { c.source_column.as_str() } else { c.name.as_str() })
            .collect();
        let records = rows
            .iter()
            .map(|row| {
                let mut record = ByteRecord::from(row.to_vec());
                (row.len()..columns.len()).for_each(|_| record.push_field(b"0"));
                record
            })
            .collect();
        MemorySource::new(&header, records, "test rows".into())
    }

    #[test]
    fn a_load_replaces_the_rows_and_records_its_source_and_quality() {
        let dir = tempfile::tempdir().unwrap();
        let product = product(dir.path());
        let rules = [QualityRule::sum_equals(
            "tot",
            "tot = credit + check",
            "tot_use_am",
            &["crdsl_use_am", "cnf_use_am"],
        )];
        let rows = [["2024Q1", "1", "10", "4", "6"], ["2024Q1", "2", "5", "5", "1"]];
        let summary = load(&product, &mut source(&product, &rows), &rules).unwrap();
        assert_eq!(summary.rows, 2);
        assert_eq!((summary.quality[0].failed_rows, summary.quality[0].checked_rows), (1, 2));
        let loaded = product.store.load_info(product.spec.id).unwrap().unwrap();
        assert_eq!((loaded.row_count, loaded.source.as_str()), (2, "test rows"));

        let again = load(&product, &mut source(&product, &rows[..1]), &rules).unwrap();
        assert_eq!(again.rows, 1);
        assert!(again.quality[0].passed);
    }

    #[test]
    fn a_bad_record_refuses_the_whole_load_and_the_rows_stay() {
        let dir = tempfile::tempdir().unwrap();
        let product = product(dir.path());
        load(&product, &mut source(&product, &[["2024Q1", "1", "10", "4", "6"]]), &[]).unwrap();
        let cases =
            [(["2024Q1", "2", "-1", "0", "0"], "negative"), (["2024Q1", "2", "ten", "0", "0"], "ten")];
        for (row, problem) in cases {
            let err = load(&product, &mut source(&product, &[["2024Q1", "1", "1", "1", "0"], row]), &[])
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("load refused: "), "{err}");
            assert!(err.contains("line 3") && err.contains(problem), "{err}");
            assert_eq!(product.store.load_info(product.spec.id).unwrap().unwrap().row_count, 1);
        }
    }

    #[test]
    fn a_source_without_a_column_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let product = product(dir.path());
        let mut partial = MemorySource::new(&["BAS_YH", "SEQ", "X", "Y", "Z"], vec![], "partial".into());
        let err = load(&product, &mut partial, &[]).unwrap_err().to_string();
        assert!(err.contains("the source has no column TOT_USE_AM"), "{err}");
        assert!(err.contains("its header has: BAS_YH, SEQ, X, Y, Z"), "{err}");
    }
}
