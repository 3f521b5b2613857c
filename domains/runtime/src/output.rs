//! The forms a query's rows leave the domain in: `QueryResponse` batches in
//! protobuf wire format for gRPC, and NDJSON, CSV or one JSON page for
//! REST. One scan, one set of access rules and pseudonyms, several encodings,
//! each written straight from SQLite's row without a value object per row.

use rusqlite::types::ValueRef;

use crate::encode::{RowEncoder, put_len_field};
use crate::pseudonym::{PseudonymKey, TEXT_DIGITS};
use crate::schema::{ColumnDef, ColumnKind};

/// Most rows one JSON page may hold.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Rows in a JSON page when the request does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// How a query's rows are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// `QueryResponse` messages of about 256 KiB, each ending with the
    /// resume token after its last row (gRPC `Query`).
    Protobuf,
    /// One JSON object per row and line, every matching row.
    Ndjson,
    /// A header line of column names, then one line per row, every matching row.
    Csv,
    /// One JSON object `{"rows": [...], "next_page_token": "..."}` of at most
    /// `page_size` rows; the token is empty when no row follows.
    JsonPage {
        /// Rows in the page, 1 to [`MAX_PAGE_SIZE`].
        page_size: u32,
    },
}

impl RowFormat {
    /// The media type of the encoded rows.
    pub fn content_type(self) -> &'static str {
        match self {
            RowFormat::Protobuf => "application/grpc",
            RowFormat::Ndjson => "application/x-ndjson",
            RowFormat::Csv => "text/csv; charset=utf-8",
            RowFormat::JsonPage { .. } => "application/json",
        }
    }

    /// The rows of one page, for the paged format.
    pub(crate) fn page_size(self) -> Option<u64> {
        match self {
            RowFormat::JsonPage { page_size } => Some(u64::from(page_size)),
            _ => None,
        }
    }
}

/// How one projected column is written as text.
#[derive(Debug, Clone)]
struct TextColumn {
    /// `"name":`, for JSON objects.
    key: Vec<u8>,
    kind: ColumnKind,
    float32: bool,
    pseudonym: bool,
}

/// One value of a row, read for the text formats.
enum Cell<'a> {
    Text(&'a [u8]),
    Integer(i64),
    Real(f64),
    Float(f32),
    Bool(bool),
}

/// Writes the rows of one query in its format.
pub(crate) struct RowWriter {
    format: RowFormat,
    proto: RowEncoder,
    columns: Vec<TextColumn>,
    names: Vec<String>,
    pseudonyms: Option<PseudonymKey>,
    rows_field: u32,
    token_field: u32,
    /// One encoded protobuf row.
    row_bytes: Vec<u8>,
    csv: csv_core::Writer,
    /// Rows written in the current JSON page.
    in_page: u64,
}

impl RowWriter {
    /// A writer of `format` for `columns` (the first columns of each result
    /// row), delivering those marked in `pseudonymized` as pseudonyms under
    /// `pseudonyms`; `rows_field` and `token_field` are the field numbers of
    /// the product's `QueryResponse`.
    pub(crate) fn new<'a>(
        format: RowFormat,
        columns: impl IntoIterator<Item = &'a ColumnDef> + Clone,
        pseudonymized: &[bool],
        pseudonyms: Option<PseudonymKey>,
        rows_field: u32,
        token_field: u32,
    ) -> Self {
        let proto = RowEncoder::new(columns.clone(), pseudonymized, pseudonyms.clone());
        let (mut text_columns, mut names) = (Vec::new(), Vec::new());
        for (i, column) in columns.into_iter().enumerate() {
            let mut key = serde_json::to_vec(&column.name).unwrap_or_default();
            key.push(b':');
            text_columns.push(TextColumn {
                key,
                kind: column.kind,
                float32: column.float32,
                pseudonym: pseudonymized.get(i).copied().unwrap_or(false) && pseudonyms.is_some(),
            });
            names.push(column.name.clone());
        }
        Self {
            format,
            proto,
            columns: text_columns,
            names,
            pseudonyms,
            rows_field,
            token_field,
            row_bytes: Vec::with_capacity(4096),
            csv: csv_core::Writer::new(),
            in_page: 0,
        }
    }

    /// Writes what comes before the first row: CSV's header line, the
    /// opening of a JSON page.
    pub(crate) fn begin(&mut self, batch: &mut Vec<u8>) {
        match self.format {
            RowFormat::Csv => {
                for (i, name) in self.names.iter().enumerate() {
                    csv_field(&mut self.csv, i, name.as_bytes(), batch);
                }
                csv_end(&mut self.csv, batch);
            }
            RowFormat::JsonPage { .. } => batch.extend_from_slice(b"{\"rows\":["),
            RowFormat::Protobuf | RowFormat::Ndjson => {}
        }
    }

    /// Appends `row` to `batch`.
    pub(crate) fn row(&mut self, row: &rusqlite::Row<'_>, batch: &mut Vec<u8>) -> rusqlite::Result<()> {
        match self.format {
            RowFormat::Protobuf => {
                self.row_bytes.clear();
                self.proto.encode(row, &mut self.row_bytes)?;
                put_len_field(batch, self.rows_field, &self.row_bytes);
            }
            RowFormat::Ndjson => {
                self.json_object(row, batch)?;
                batch.push(b'\n');
            }
            RowFormat::JsonPage { .. } => {
                if self.in_page > 0 {
                    batch.push(b',');
                }
                self.in_page += 1;
                self.json_object(row, batch)?;
            }
            RowFormat::Csv => self.csv_record(row, batch)?,
        }
        Ok(())
    }

    /// Whether every batch ends with a resume token (the gRPC stream); the
    /// other formats stream rows only, or end their one page with one.
    pub(crate) fn tokens_per_batch(&self) -> bool {
        self.format == RowFormat::Protobuf
    }

    /// Ends a batch: the protobuf resume token after its last row, or the
    /// JSON page's `next_page_token` (empty when no row follows).
    pub(crate) fn end_batch(&mut self, batch: &mut Vec<u8>, token: Option<&str>) {
        match self.format {
            RowFormat::Protobuf => {
                if let Some(token) = token {
                    put_len_field(batch, self.token_field, token.as_bytes());
                }
            }
            RowFormat::JsonPage { .. } => {
                batch.extend_from_slice(b"],\"next_page_token\":");
                let token = serde_json::to_vec(token.unwrap_or_default()).unwrap_or_default();
                batch.extend_from_slice(&token);
                batch.extend_from_slice(b"}\n");
            }
            RowFormat::Ndjson | RowFormat::Csv => {}
        }
    }

    /// Appends `row` as one JSON object with the proto field names.
    fn json_object(&self, row: &rusqlite::Row<'_>, out: &mut Vec<u8>) -> rusqlite::Result<()> {
        let mut scratch = [0u8; TEXT_DIGITS];
        let mut number = itoa::Buffer::new();
        out.push(b'{');
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&column.key);
            match cell(column, self.pseudonyms.as_ref(), i, row, &mut scratch)? {
                Cell::Text(text) => {
                    let text = String::from_utf8_lossy(text);
                    let _ = serde_json::to_writer(&mut *out, text.as_ref());
                }
                Cell::Integer(n) => out.extend_from_slice(number.format(n).as_bytes()),
                Cell::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
                // Not finite: JSON has no such number.
                Cell::Real(x) if !x.is_finite() => out.extend_from_slice(b"null"),
                Cell::Float(x) if !x.is_finite() => out.extend_from_slice(b"null"),
                Cell::Real(x) => {
                    let _ = serde_json::to_writer(&mut *out, &x);
                }
                Cell::Float(x) => {
                    let _ = serde_json::to_writer(&mut *out, &x);
                }
            }
        }
        out.push(b'}');
        Ok(())
    }

    /// Appends `row` as one CSV record.
    fn csv_record(&mut self, row: &rusqlite::Row<'_>, out: &mut Vec<u8>) -> rusqlite::Result<()> {
        let mut scratch = [0u8; TEXT_DIGITS];
        let mut number = itoa::Buffer::new();
        let csv = &mut self.csv;
        for (i, column) in self.columns.iter().enumerate() {
            match cell(column, self.pseudonyms.as_ref(), i, row, &mut scratch)? {
                Cell::Text(text) => csv_field(csv, i, text, out),
                Cell::Integer(n) => csv_field(csv, i, number.format(n).as_bytes(), out),
                Cell::Bool(b) => csv_field(csv, i, if b { b"true" } else { b"false" }, out),
                Cell::Real(x) => csv_field(csv, i, x.to_string().as_bytes(), out),
                Cell::Float(x) => csv_field(csv, i, x.to_string().as_bytes(), out),
            }
        }
        csv_end(csv, out);
        Ok(())
    }
}

/// Appends field `i` of a CSV record, quoted where needed (after a
/// delimiter unless it is the first).
fn csv_field(csv: &mut csv_core::Writer, i: usize, mut input: &[u8], out: &mut Vec<u8>) {
    if i > 0 {
        csv_write(out, 4, |buf| {
            let (_, n) = csv.delimiter(buf);
            n
        });
    }
    loop {
        let mut consumed = 0;
        let mut done = false;
        // Quoting at most doubles the bytes, plus the quotes themselves.
        csv_write(out, 2 * input.len() + 4, |buf| {
            let (result, nin, nout) = csv.field(input, buf);
            consumed = nin;
            done = result == csv_core::WriteResult::InputEmpty;
            nout
        });
        input = &input[consumed..];
        if done {
            break;
        }
    }
}

/// Ends a CSV record (closing a quoted last field).
fn csv_end(csv: &mut csv_core::Writer, out: &mut Vec<u8>) {
    csv_write(out, 8, |buf| {
        let (_, n) = csv.terminator(buf);
        n
    });
}

/// Lets `write` fill up to `room` bytes at the end of `out`; it returns
/// how many it wrote.
fn csv_write(out: &mut Vec<u8>, room: usize, write: impl FnOnce(&mut [u8]) -> usize) {
    let start = out.len();
    out.resize(start + room, 0);
    let written = write(&mut out[start..]);
    out.truncate(start + written);
}

/// Reads column `i` of `row` as a cell, with its pseudonym under
/// `pseudonyms` in place of an identifier (`scratch` holds a text one).
fn cell<'r>(
    column: &TextColumn,
    pseudonyms: Option<&PseudonymKey>,
    i: usize,
    row: &'r rusqlite::Row<'_>,
    scratch: &'r mut [u8; TEXT_DIGITS],
) -> rusqlite::Result<Cell<'r>> {
    let pseudonyms = pseudonyms.filter(|_| column.pseudonym);
    Ok(match (column.kind, row.get_ref(i)?) {
        (ColumnKind::String, ValueRef::Text(text)) => match pseudonyms {
            Some(key) if !text.is_empty() => {
                key.text(text, scratch);
                Cell::Text(scratch)
            }
            _ => Cell::Text(text),
        },
        (ColumnKind::String, _) => Cell::Text(b""),
        (ColumnKind::Integer, ValueRef::Integer(n)) => {
            Cell::Integer(pseudonyms.map_or(n, |key| key.integer(n)))
        }
        (ColumnKind::Integer, _) => Cell::Integer(0),
        (ColumnKind::Bool, value) => Cell::Bool(matches!(value, ValueRef::Integer(n) if n != 0)),
        (ColumnKind::Real, value) => {
            let x = match value {
                ValueRef::Real(x) => x,
                ValueRef::Integer(n) => n as f64,
                _ => 0.0,
            };
            if column.float32 { Cell::Float(x as f32) } else { Cell::Real(x) }
        }
    })
}
