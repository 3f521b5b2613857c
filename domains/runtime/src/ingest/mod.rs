//! Loading a product's table from records (a CSV file, or generated data),
//! in one transaction: a bad record fails the whole load with its line
//! number and reason, and the previous data stays.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use csv::ByteRecord;
use indicatif::{ProgressBar, ProgressStyle};

mod meters;
pub(crate) mod parse;
pub mod quality;

pub use meters::LoadMeters;

use parse::{CHUNKS_AHEAD, parse_records};

use crate::error::{DomainError, Result};
use crate::ingest::quality::{CountedRules, QualityRule, RowCounts};
use crate::store::load::{Chunk, LoadPlan};
use crate::store::{DomainStore, Storage};
pub use crate::store::{LoadSummary, Shrink};
use crate::values::schema::RowSchema;

/// Where a load's rows go: the product's table in its domain's store.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// The domain's database.
    pub store: &'a DomainStore,
    /// The product's id.
    pub product: &'a str,
    /// Its row type as a table.
    pub schema: &'a RowSchema,
    /// Its extra indexed columns.
    pub indexes: &'a [String],
    /// Where its loads are counted, if anywhere.
    pub meters: Option<&'a LoadMeters>,
}

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
    /// What identifies the records' content: a product already loaded from
    /// a source with the same fingerprint is not loaded again. By default
    /// the description (right for generated data, which it determines).
    fn fingerprint(&mut self) -> Result<String> {
        Ok(self.describe())
    }
    /// The text encoding of its non-ASCII text when it is known; by default
    /// the first non-ASCII text decides between UTF-8 and EUC-KR.
    fn encoding(&self) -> Option<TextEncoding> {
        None
    }
}

/// A text encoding a source may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8.
    Utf8,
    /// EUC-KR (CP949), the usual encoding of Korean extracts.
    EucKr,
}

impl TextEncoding {
    /// The encoding named `name` (`utf-8`, `euc-kr`, any case), or `None`
    /// for `auto`.
    pub fn named(name: &str) -> Result<Option<Self>> {
        match name.to_ascii_lowercase().as_str() {
            "auto" => Ok(None),
            "utf-8" | "utf8" => Ok(Some(Self::Utf8)),
            "euc-kr" | "cp949" => Ok(Some(Self::EucKr)),
            other => Err(DomainError::Config(format!(
                "encoding `{other}` is not known: write auto, utf-8 or euc-kr"
            ))),
        }
    }
}

/// The longest record a CSV source may hold: an unbalanced quote cannot
/// make one record swallow the rest of the file.
pub const MAX_RECORD_BYTES: u64 = 1024 * 1024;

/// A comma-separated file with a header row (CRLF or LF line ends).
pub struct CsvSource<R: Read> {
    reader: csv::Reader<CappedRecords<R>>,
    header: ByteRecord,
    name: String,
    line: u64,
    record_end: Arc<AtomicU64>,
    path: Option<PathBuf>,
    fingerprint: Option<String>,
    encoding: Option<TextEncoding>,
}

impl CsvSource<std::fs::File> {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, b',', None)
    }

    /// Opens `path`, its fields separated by `delimiter` (`b'\t'` for TSV)
    /// and its text in `encoding` (decided by its first non-ASCII text when
    /// `None`).
    pub fn open_with(path: &Path, delimiter: u8, encoding: Option<TextEncoding>) -> Result<Self> {
        let file = std::fs::File::open(path)
            .map_err(|e| DomainError::Load(format!("cannot open {}: {e}", path.display())))?;
        let mut source = Self::with_delimiter(file, path.display().to_string(), delimiter)?;
        source.path = Some(path.to_owned());
        source.encoding = encoding;
        Ok(source)
    }
}

impl<R: Read> CsvSource<R> {
    /// Reads CSV from `input`, named `name` in messages.
    pub fn new(input: R, name: String) -> Result<Self> {
        Self::with_delimiter(input, name, b',')
    }

    /// Reads records separated by `delimiter` from `input`.
    pub fn with_delimiter(input: R, name: String, delimiter: u8) -> Result<Self> {
        let record_end = Arc::new(AtomicU64::new(0));
        let input = CappedRecords { inner: input, read: 0, record_end: Arc::clone(&record_end) };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(input);
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
        record_end.store(reader.position().byte(), Ordering::Relaxed);
        Ok(Self { reader, header, name, line: 1, record_end, path: None, fingerprint: None, encoding: None })
    }
}

/// Input that fails once more than [`MAX_RECORD_BYTES`] (plus the CSV
/// reader's buffer) are read past the end of the last whole record.
struct CappedRecords<R> {
    inner: R,
    read: u64,
    record_end: Arc<AtomicU64>,
}

/// The CSV reader's own buffer, read ahead of the record it parses.
const CSV_BUFFER_BYTES: u64 = 64 * 1024;

impl<R: Read> Read for CappedRecords<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read.saturating_sub(self.record_end.load(Ordering::Relaxed))
            > MAX_RECORD_BYTES + CSV_BUFFER_BYTES
        {
            return Err(std::io::Error::other(format!(
                "a record runs past {} MiB (an unbalanced quote?); fix the quoting",
                MAX_RECORD_BYTES / (1024 * 1024)
            )));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
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
        self.record_end.store(self.reader.position().byte(), Ordering::Relaxed);
        self.line += 1;
        Ok(more)
    }

    fn line(&self) -> u64 {
        self.line
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn encoding(&self) -> Option<TextEncoding> {
        self.encoding
    }

    /// Size, modification time and BLAKE3 hash of the file (a stream with
    /// no file behind it is named only).
    fn fingerprint(&mut self) -> Result<String> {
        if let Some(known) = &self.fingerprint {
            return Ok(known.clone());
        }
        let Some(path) = &self.path else { return Ok(self.describe()) };
        let unreadable =
            |e: std::io::Error| DomainError::Load(format!("cannot read {}: {e}", path.display()));
        let metadata = std::fs::metadata(path).map_err(unreadable)?;
        let modified = metadata.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(std::fs::File::open(path).map_err(unreadable)?).map_err(unreadable)?;
        let fingerprint = format!(
            "{} bytes, modified {} ns, blake3 {}",
            metadata.len(),
            modified.map_or(0, |m| m.as_nanos()),
            hasher.finalize().to_hex()
        );
        self.fingerprint = Some(fingerprint.clone());
        Ok(fingerprint)
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

/// Replaces `product`'s rows with the records of `source`, then runs
/// `rules`, all in one transaction. The product's extra indexes and its key
/// index are rebuilt after the rows are in. Every way a product's rows are
/// replaced (a source file, generated data, a derived product's rebuild)
/// goes through here, counted in the destination's meters.
/// A load that would shrink the product more than `shrink` allows is
/// refused, and the previous rows stay.
pub fn load(
    target: &Destination<'_>,
    source: &mut (dyn RecordSource + Send),
    rules: &[QualityRule],
    shrink: Shrink,
) -> Result<LoadSummary> {
    let started = std::time::Instant::now();
    let loaded = load_unmetered(target, source, rules, shrink);
    if let Some(meters) = target.meters {
        meters.record(started, &loaded);
    }
    loaded
}

fn load_unmetered(
    target: &Destination<'_>,
    source: &mut (dyn RecordSource + Send),
    rules: &[QualityRule],
    shrink: Shrink,
) -> Result<LoadSummary> {
    let Destination { store, product, schema, indexes, .. } = *target;
    let mapping = map_columns(schema, source.header())?;
    let fingerprint = source.fingerprint()?;
    let progress = progress_bar(product, source.len_hint());
    let described = source.describe();
    let counted_rules = std::sync::Mutex::new(RowCounts::new(schema, rules)?);
    let row_counts = &counted_rules;
    crate::heap::tune_allocator();
    // Reading and parsing records runs on its own thread, feeding the
    // writer chunks of parsed rows through a bounded channel.
    let summary = std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<Chunk>>(CHUNKS_AHEAD);
        let reader = scope.spawn(|| parse_records(source, schema, &mapping, row_counts, sender));
        let (progress, described) = (&progress, described.as_str());
        let quality = CountedRules { schema, rules, counted: row_counts };
        let target = LoadPlan {
            product,
            schema,
            indexes,
            quality: &quality,
            source: described,
            fingerprint: &fingerprint,
            shrink,
        };
        let written = store.replace(&target, receiver, progress);
        let read = reader.join().map_err(|_| DomainError::Internal("the record reader panicked".into()))?;
        // A refused record is the real cause when both sides failed.
        read.and(written)
    });
    progress.finish_and_clear();
    crate::heap::give_back_memory();
    let summary = summary?;
    store.announce_load();
    tracing::info!(product, rows = summary.rows, source = %described, "load committed");
    Ok(summary)
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
    use super::*;
    use mesh_contracts::descriptor::ProductShape;

    const PRODUCT: &str = "payment.card_spending";

    /// A product's table in a fresh database.
    struct Target {
        store: DomainStore,
        schema: RowSchema,
        indexes: Vec<String>,
    }

    impl Target {
        fn destination(&self) -> Destination<'_> {
            Destination {
                store: &self.store,
                product: PRODUCT,
                schema: &self.schema,
                indexes: &self.indexes,
                meters: None,
            }
        }
    }

    /// The payment contract's table over a fresh database; amounts are
    /// only the three totals, to keep the records short.
    fn product(dir: &std::path::Path) -> Target {
        let pool = prost_reflect::DescriptorPool::decode(mesh_contracts::FILE_DESCRIPTOR_SET).unwrap();
        let shape = ProductShape::find(&pool, "woori.payment.v1.CardSpendingService").unwrap();
        let amounts = ["tot_use_am", "crdsl_use_am", "cnf_use_am"];
        let schema = RowSchema::new("card_spending", shape.row_type, &["bas_yh", "seq"], &amounts).unwrap();
        let store = DomainStore::open(&dir.join("payment.sqlite")).unwrap();
        let indexes = vec!["seq".to_owned()];
        store.prepare_table(PRODUCT, &schema, &indexes).unwrap();
        Target { store, schema, indexes }
    }

    /// Records under a header naming every column, by source column (upper
    /// case) for the key and by field name for the rest; each row gives the
    /// key and the three totals, the other amounts are 0.
    fn source(product: &Target, rows: &[[&str; 5]]) -> MemorySource {
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
        let summary =
            load(&product.destination(), &mut source(&product, &rows), &rules, Shrink::AtMostHalf).unwrap();
        assert_eq!(summary.rows, 2);
        assert_eq!((summary.quality[0].failed_rows, summary.quality[0].checked_rows), (1, 2));
        let loaded = product.store.load_info(PRODUCT).unwrap().unwrap();
        assert_eq!((loaded.row_count, loaded.source.as_str()), (2, "test rows"));

        let again =
            load(&product.destination(), &mut source(&product, &rows[..1]), &rules, Shrink::AtMostHalf)
                .unwrap();
        assert_eq!(again.rows, 1);
        assert!(again.quality[0].passed);
    }

    #[test]
    fn a_bad_record_refuses_the_whole_load_and_the_rows_stay() {
        let dir = tempfile::tempdir().unwrap();
        let product = product(dir.path());
        load(
            &product.destination(),
            &mut source(&product, &[["2024Q1", "1", "10", "4", "6"]]),
            &[],
            Shrink::Any,
        )
        .unwrap();
        let cases =
            [(["2024Q1", "2", "-1", "0", "0"], "negative"), (["2024Q1", "2", "ten", "0", "0"], "ten")];
        for (row, problem) in cases {
            let err = load(
                &product.destination(),
                &mut source(&product, &[["2024Q1", "1", "1", "1", "0"], row]),
                &[],
                Shrink::Any,
            )
            .unwrap_err()
            .to_string();
            assert!(err.starts_with("load refused: "), "{err}");
            assert!(err.contains("line 3") && err.contains(problem), "{err}");
            assert_eq!(product.store.load_info(PRODUCT).unwrap().unwrap().row_count, 1);
        }
    }

    #[test]
    fn a_source_without_a_column_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let product = product(dir.path());
        let mut partial = MemorySource::new(&["BAS_YH", "SEQ", "X", "Y", "Z"], vec![], "partial".into());
        let err = load(&product.destination(), &mut partial, &[], Shrink::Any).unwrap_err().to_string();
        assert!(err.contains("the source has no column TOT_USE_AM"), "{err}");
        assert!(err.contains("its header has: BAS_YH, SEQ, X, Y, Z"), "{err}");
    }

    #[test]
    fn a_load_that_shrinks_the_product_too_much_is_refused_and_the_rows_stay() {
        let dir = tempfile::tempdir().unwrap();
        let product = product(dir.path());
        let rows: Vec<[&str; 5]> =
            ["1", "2", "3", "4", "5"].map(|seq| ["2024Q1", seq, "0", "0", "0"]).to_vec();
        load(&product.destination(), &mut source(&product, &rows), &[], Shrink::AtMostHalf).unwrap();
        let err = load(&product.destination(), &mut source(&product, &rows[..2]), &[], Shrink::AtMostHalf)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "load refused: test rows: 2 rows would replace 5, shrinking payment.card_spending by more than \
             half; the previous rows stay; check the source, or pass --allow-shrink (MESH_ALLOW_SHRINK) if \
             this is meant"
        );
        let err =
            load(&product.destination(), &mut source(&product, &[]), &[], Shrink::NotToEmpty).unwrap_err();
        assert_eq!(
            err.to_string(),
            "load refused: test rows: the rebuild of payment.card_spending came out empty where it had 5 rows; \
             the previous rows stay (are the source products empty?)"
        );
        assert_eq!(product.store.load_info(PRODUCT).unwrap().unwrap().row_count, 5);
        load(&product.destination(), &mut source(&product, &rows[..3]), &[], Shrink::AtMostHalf).unwrap();
        load(&product.destination(), &mut source(&product, &rows[..1]), &[], Shrink::Any).unwrap();
        assert_eq!(product.store.load_info(PRODUCT).unwrap().unwrap().row_count, 1);
    }

    #[test]
    fn an_unbalanced_quote_cannot_swallow_the_file() {
        let mut input = b"A,B\n1,\"open\n".to_vec();
        input.extend(std::iter::repeat_n(b"2,x\n".as_slice(), 1_000_000).flatten());
        let mut csv = CsvSource::new(input.as_slice(), "quoted.csv".into()).unwrap();
        let mut record = ByteRecord::new();
        let err = loop {
            match csv.read(&mut record) {
                Ok(true) => continue,
                Ok(false) => panic!("the whole file was read as one record"),
                Err(err) => break err.to_string(),
            }
        };
        assert!(err.starts_with("load refused: quoted.csv: line "), "{err}");
        assert!(err.ends_with("a record runs past 1 MiB (an unbalanced quote?); fix the quoting"), "{err}");
        // Records of ordinary size are read however long the file.
        let long: Vec<u8> = b"A,B\n"
            .iter()
            .chain(std::iter::repeat_n(b"2,x\n".as_slice(), 1_000_000).flatten())
            .copied()
            .collect();
        let mut csv = CsvSource::new(long.as_slice(), "long.csv".into()).unwrap();
        let mut count = 0;
        while csv.read(&mut record).unwrap() {
            count += 1;
        }
        assert_eq!(count, 1_000_000);
    }

    #[test]
    fn the_fingerprint_follows_the_content_not_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source.csv");
        std::fs::write(&path, "A,B\n1,2\n").unwrap();
        let first = CsvSource::open(&path).unwrap().fingerprint().unwrap();
        assert_eq!(CsvSource::open(&path).unwrap().fingerprint().unwrap(), first);
        assert!(first.starts_with("8 bytes, modified "), "{first}");
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, "A,B\n1,3\n").unwrap();
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(modified).unwrap();
        let second = CsvSource::open(&path).unwrap().fingerprint().unwrap();
        assert_ne!(second, first, "same size, time and path, other content");
    }
}
