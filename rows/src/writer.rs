//! Rows written as text: CSV with a header (quoted by the `csv` crate as
//! RFC 4180 says), one JSON array, NDJSON, or one JSON page with its next
//! page token. Objects carry the proto field names; numbers JSON cannot
//! hold (NaN, infinities) are `null`.

use std::io::Write;

use crate::{Cell, RowError};

/// The text forms rows are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// A header line of column names, then one line per row.
    Csv,
    /// One JSON array of row objects, one per line.
    Json,
    /// One JSON object per row and line.
    Ndjson,
    /// One JSON object `{"rows": [...], "next_page_token": "..."}`.
    JsonPage,
}

/// Bytes written and not yet taken (the `csv` writer owns its output, so
/// it is taken through a shared reference).
#[derive(Default)]
struct Pending(std::cell::Cell<Vec<u8>>);

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.get_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where the text goes.
#[derive(Debug)]
enum Output {
    Csv(Box<csv::Writer<Pending>>),
    Json(Vec<u8>),
}

/// Writes rows of fixed columns in one [`TextFormat`]; the caller takes
/// the text written so far with [`RowWriter::take`].
#[derive(Debug)]
pub struct RowWriter {
    format: TextFormat,
    output: Output,
    /// `"name":` for each column, for JSON objects.
    keys: Vec<Vec<u8>>,
    names: Vec<String>,
    rows: u64,
}

impl RowWriter {
    /// A writer of `format` for rows of the columns `names`, in order.
    pub fn new(format: TextFormat, names: &[&str]) -> Self {
        let keys = names
            .iter()
            .map(|name| {
                let mut key = serde_json::to_vec(name).unwrap_or_default();
                key.push(b':');
                key
            })
            .collect();
        let output = match format {
            TextFormat::Csv => Output::Csv(Box::new(csv::Writer::from_writer(Pending::default()))),
            _ => Output::Json(Vec::with_capacity(1 << 16)),
        };
        Self { format, output, keys, names: names.iter().map(|n| (*n).to_owned()).collect(), rows: 0 }
    }

    /// Writes what comes before the first row: CSV's header, the opening
    /// of a JSON array or page.
    pub fn begin(&mut self) -> Result<(), RowError> {
        match &mut self.output {
            Output::Csv(csv) => csv.write_record(&self.names).map_err(csv_error)?,
            Output::Json(out) => match self.format {
                TextFormat::Json => out.push(b'['),
                TextFormat::JsonPage => out.extend_from_slice(b"{\"rows\":["),
                TextFormat::Ndjson | TextFormat::Csv => {}
            },
        }
        Ok(())
    }

    /// Writes one row, its cells in column order.
    pub fn row(&mut self, cells: &[Cell<'_>]) -> Result<(), RowError> {
        let first = self.rows == 0;
        self.rows += 1;
        let out = match &mut self.output {
            Output::Csv(csv) => return csv_row(csv, cells),
            Output::Json(out) => out,
        };
        match self.format {
            TextFormat::Json => out.extend_from_slice(if first { b"\n" } else { b",\n" }),
            TextFormat::JsonPage if !first => out.push(b','),
            _ => {}
        }
        json_object(out, &self.keys, cells);
        if self.format == TextFormat::Ndjson {
            out.push(b'\n');
        }
        Ok(())
    }

    /// Writes what comes after the last row: the end of a JSON array, or
    /// of a page with `next_page_token` (empty on the last page).
    pub fn end(&mut self, next_page_token: &[u8]) {
        let Output::Json(out) = &mut self.output else { return };
        match self.format {
            TextFormat::Json => out.extend_from_slice(if self.rows == 0 { b"]\n" } else { b"\n]\n" }),
            TextFormat::JsonPage => {
                out.extend_from_slice(b"],\"next_page_token\":");
                let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(next_page_token));
                out.extend_from_slice(b"}\n");
            }
            TextFormat::Ndjson | TextFormat::Csv => {}
        }
    }

    /// The rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Moves the text written since the last take to the end of `out`.
    pub fn take(&mut self, out: &mut Vec<u8>) -> Result<(), RowError> {
        match &mut self.output {
            Output::Csv(csv) => {
                csv.flush().map_err(|e| RowError(e.to_string()))?;
                let pending = csv.get_ref().0.take();
                if out.is_empty() {
                    *out = pending;
                } else {
                    out.extend_from_slice(&pending);
                }
            }
            Output::Json(json) => out.append(json),
        }
        Ok(())
    }
}

fn csv_error(error: csv::Error) -> RowError {
    RowError(format!("cannot write CSV: {error}"))
}

/// One CSV record: numbers as digits, text as it is (quoted when it must
/// be), NULL as an empty field.
fn csv_row(csv: &mut csv::Writer<Pending>, cells: &[Cell<'_>]) -> Result<(), RowError> {
    for cell in cells {
        cell.with_text(|field| csv.write_field(field)).map_err(csv_error)?;
    }
    csv.write_record(None::<&[u8]>).map_err(csv_error)
}

/// One row as a JSON object with the proto field names.
fn json_object(out: &mut Vec<u8>, keys: &[Vec<u8>], cells: &[Cell<'_>]) {
    let mut number = itoa::Buffer::new();
    out.push(b'{');
    for (i, (key, cell)) in keys.iter().zip(cells).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(key);
        match *cell {
            Cell::Text(text) => {
                let _ = serde_json::to_writer(&mut *out, String::from_utf8_lossy(text).as_ref());
            }
            Cell::Integer(n) => out.extend_from_slice(number.format(n).as_bytes()),
            Cell::Unsigned(n) => out.extend_from_slice(number.format(n).as_bytes()),
            Cell::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            Cell::Real(x) if x.is_finite() => {
                let _ = serde_json::to_writer(&mut *out, &x);
            }
            Cell::Float(x) if x.is_finite() => {
                let _ = serde_json::to_writer(&mut *out, &x);
            }
            Cell::Real(_) | Cell::Float(_) | Cell::Null => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
}
