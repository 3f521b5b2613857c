//! The forms a query's rows leave the domain in. Every scan writes
//! `QueryResponse` batches in protobuf wire format (the access rules and
//! pseudonyms applied as it encodes); gRPC sends them as they are, and REST
//! turns them into NDJSON, CSV or one JSON page here, on another thread than
//! the scan's, so a text export runs the two in parallel as a gRPC client
//! does. One scan, one set of rules, several encodings.

use crate::values::schema::{ColumnDef, ColumnKind};

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

/// How one projected column is read from a row message and written as text.
#[derive(Debug, Clone)]
struct TextColumn {
    number: u32,
    kind: ColumnKind,
    zigzag: bool,
    float32: bool,
    /// `"name":`, for JSON objects.
    key: Vec<u8>,
}

/// One value of a row.
#[derive(Debug, Clone, Copy)]
enum Cell<'a> {
    Text(&'a [u8]),
    Integer(i64),
    Real(f64),
    Float(f32),
    Bool(bool),
}

impl TextColumn {
    /// The value a row message leaves out (proto3 omits defaults).
    fn default_cell(&self) -> Cell<'static> {
        match self.kind {
            ColumnKind::String => Cell::Text(b""),
            ColumnKind::Integer => Cell::Integer(0),
            ColumnKind::Bool => Cell::Bool(false),
            ColumnKind::Real if self.float32 => Cell::Float(0.0),
            ColumnKind::Real => Cell::Real(0.0),
        }
    }
}

/// Turns the `QueryResponse` batches of one query into a text format.
#[derive(Debug)]
pub(crate) struct TextWriter {
    format: RowFormat,
    columns: Vec<TextColumn>,
    names: Vec<String>,
    rows_field: u32,
    token_field: u32,
    /// Rows written in the JSON page so far.
    in_page: u64,
}

impl TextWriter {
    /// A writer of `format` for rows of `columns` (the query's projection,
    /// in order); `rows_field` and `token_field` are the field numbers of
    /// the product's `QueryResponse`.
    pub(crate) fn new<'a>(
        format: RowFormat,
        columns: impl IntoIterator<Item = &'a ColumnDef>,
        rows_field: u32,
        token_field: u32,
    ) -> Self {
        let (mut text_columns, mut names) = (Vec::new(), Vec::new());
        for column in columns {
            let mut key = serde_json::to_vec(&column.name).unwrap_or_default();
            key.push(b':');
            text_columns.push(TextColumn {
                number: column.number,
                kind: column.kind,
                zigzag: column.zigzag,
                float32: column.float32,
                key,
            });
            names.push(column.name.clone());
        }
        Self { format, columns: text_columns, names, rows_field, token_field, in_page: 0 }
    }

    /// Writes what comes before the first row: CSV's header line, the
    /// opening of a JSON page.
    pub(crate) fn begin(&mut self, out: &mut Vec<u8>) {
        match self.format {
            RowFormat::Csv => {
                for (i, name) in self.names.iter().enumerate() {
                    csv_field(i, self.names.len(), name.as_bytes(), out);
                }
                out.push(b'\n');
            }
            RowFormat::JsonPage { .. } => out.extend_from_slice(b"{\"rows\":["),
            RowFormat::Protobuf | RowFormat::Ndjson => {}
        }
    }

    /// Appends the rows of one encoded `QueryResponse`; its resume token.
    pub(crate) fn batch<'b>(&mut self, batch: &'b [u8], out: &mut Vec<u8>) -> Result<&'b [u8], String> {
        let mut token: &[u8] = b"";
        let mut wire = Wire(batch);
        while let Some((number, value)) = wire.field()? {
            match value {
                Value::Len(row) if number == self.rows_field => self.row(row, out)?,
                Value::Len(bytes) if number == self.token_field => token = bytes,
                _ => {}
            }
        }
        Ok(token)
    }

    /// Ends a JSON page with `next_page_token` (empty on the last page).
    pub(crate) fn end_page(&mut self, token: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(b"],\"next_page_token\":");
        let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(token));
        out.extend_from_slice(b"}\n");
    }

    /// Appends one row message, its columns in projection order and the
    /// defaults proto3 left out filled in.
    fn row(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        match self.format {
            RowFormat::JsonPage { .. } => {
                if self.in_page > 0 {
                    out.push(b',');
                }
                self.in_page += 1;
                out.push(b'{');
            }
            RowFormat::Ndjson => out.push(b'{'),
            RowFormat::Csv | RowFormat::Protobuf => {}
        }
        let mut next = 0;
        let mut wire = Wire(message);
        while let Some((number, value)) = wire.field()? {
            let Some(offset) = self.columns[next..].iter().position(|c| c.number == number) else {
                continue;
            };
            let at = next + offset;
            for i in next..at {
                self.cell(i, self.columns[i].default_cell(), out);
            }
            let column = &self.columns[at];
            let cell = match (column.kind, value) {
                (ColumnKind::String, Value::Len(text)) => Cell::Text(text),
                (ColumnKind::Integer, Value::Varint(n)) if column.zigzag => {
                    Cell::Integer((n >> 1) as i64 ^ -((n & 1) as i64))
                }
                (ColumnKind::Integer, Value::Varint(n)) => Cell::Integer(n as i64),
                (ColumnKind::Bool, Value::Varint(n)) => Cell::Bool(n != 0),
                (ColumnKind::Real, Value::Fixed64(bits)) => Cell::Real(f64::from_bits(bits)),
                (ColumnKind::Real, Value::Fixed32(bits)) => Cell::Float(f32::from_bits(bits)),
                _ => return Err(format!("row field {number} has an unexpected wire type")),
            };
            self.cell(at, cell, out);
            next = at + 1;
        }
        for i in next..self.columns.len() {
            self.cell(i, self.columns[i].default_cell(), out);
        }
        match self.format {
            RowFormat::JsonPage { .. } => out.push(b'}'),
            RowFormat::Ndjson => out.extend_from_slice(b"}\n"),
            RowFormat::Csv | RowFormat::Protobuf => out.push(b'\n'),
        }
        Ok(())
    }

    /// Appends column `i`'s value.
    fn cell(&self, i: usize, cell: Cell<'_>, out: &mut Vec<u8>) {
        let mut number = itoa::Buffer::new();
        if self.format == RowFormat::Csv {
            let fields = self.columns.len();
            return match cell {
                Cell::Text(text) => csv_field(i, fields, text, out),
                Cell::Integer(n) => csv_field(i, fields, number.format(n).as_bytes(), out),
                Cell::Bool(b) => csv_field(i, fields, if b { b"true" } else { b"false" }, out),
                Cell::Real(x) => csv_field(i, fields, x.to_string().as_bytes(), out),
                Cell::Float(x) => csv_field(i, fields, x.to_string().as_bytes(), out),
            };
        }
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&self.columns[i].key);
        match cell {
            Cell::Text(text) => {
                let _ = serde_json::to_writer(&mut *out, String::from_utf8_lossy(text).as_ref());
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
}

/// A field's value in protobuf wire format.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

/// Reads protobuf fields one after another.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for (i, byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err("a malformed varint in a row batch".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("a row batch ends inside a field".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// The next field number and value, or none at the end.
    fn field(&mut self) -> Result<Option<(u32, Value<'a>)>, String> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = (tag >> 3) as u32;
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default())),
            2 => {
                let len = self.varint()? as usize;
                Value::Len(self.take(len)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default())),
            other => return Err(format!("wire type {other} in a row batch")),
        };
        Ok(Some((number, value)))
    }
}

/// Appends field `i` of a CSV record of `fields` fields (after a delimiter
/// unless it is the first) as the `csv` crate would: as it is when it needs
/// no quotes (numbers, most text), empty as nothing (as `""` when it is the
/// record's only field, so the record is not a blank line), else quoted by
/// `csv_core` as RFC 4180 says.
fn csv_field(i: usize, fields: usize, mut input: &[u8], out: &mut Vec<u8>) {
    if i > 0 {
        out.push(b',');
    }
    if input.is_empty() {
        if fields == 1 {
            out.extend_from_slice(b"\"\"");
        }
        return;
    }
    if !input.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.extend_from_slice(input);
        return;
    }
    let mut csv = csv_core::Writer::new();
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
    csv_write(out, 4, |buf| csv.finish(buf).1);
}

/// Lets `write` fill up to `room` bytes at the end of `out`; it returns
/// how many it wrote.
fn csv_write(out: &mut Vec<u8>, room: usize, write: impl FnOnce(&mut [u8]) -> usize) {
    let start = out.len();
    out.resize(start + room, 0);
    let written = write(&mut out[start..]);
    out.truncate(start + written);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::encode::{RowEncoder, put_len_field};
    use crate::values::cell::Cell;
    use crate::values::test_schema::schema;

    /// `rows` (of name, amount, score, flag, seq) encoded as a
    /// `QueryResponse` batch as the scan does, then written as `format`.
    fn write(format: RowFormat, rows: &[&[Cell<'_>]], columns: usize) -> String {
        let schema = schema();
        let encoder = RowEncoder::new(schema.columns.iter().take(columns), &[], None);
        let mut batch = Vec::new();
        for row in rows {
            let mut message = Vec::new();
            encoder.encode(row, &mut message).unwrap();
            put_len_field(&mut batch, 1, &message);
        }
        put_len_field(&mut batch, 2, b"tok");
        let mut writer = TextWriter::new(format, schema.columns.iter().take(columns), 1, 2);
        let mut out = Vec::new();
        writer.begin(&mut out);
        let token = writer.batch(&batch, &mut out).unwrap().to_vec();
        if matches!(format, RowFormat::JsonPage { .. }) {
            writer.end_page(&token, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    const ROWS: &[&[Cell<'static>]] = &[
        &[Cell::Text(b"plain"), Cell::Integer(7), Cell::Real(2.5), Cell::Integer(1), Cell::Text(b"a")],
        &[
            Cell::Text(b"say \"hi\", ok"),
            Cell::Integer(-3),
            Cell::Real(0.1),
            Cell::Integer(0),
            Cell::Text(b""),
        ],
        &[
            Cell::Text(b"two\nlines"),
            Cell::Integer(0),
            Cell::Real(1e300),
            Cell::Integer(0),
            Cell::Text("서울".as_bytes()),
        ],
    ];

    #[test]
    fn csv_is_what_the_csv_crate_writes_and_reads_back() {
        let written = write(RowFormat::Csv, ROWS, 5);
        let mut expected = csv::Writer::from_writer(Vec::new());
        expected.write_record(["name", "amount", "score", "flag", "seq"]).unwrap();
        expected.write_record(["plain", "7", "2.5", "true", "a"]).unwrap();
        expected.write_record(["say \"hi\", ok", "-3", "0.1", "false", ""]).unwrap();
        expected.write_record(["two\nlines", "0", &1e300f64.to_string(), "false", "서울"]).unwrap();
        assert_eq!(written, String::from_utf8(expected.into_inner().unwrap()).unwrap());
        let mut reader = csv::Reader::from_reader(written.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(&records[1][0], "say \"hi\", ok");
        assert_eq!(&records[2][0], "two\nlines");
        // A record of one empty field is `""`, not a blank line.
        assert_eq!(write(RowFormat::Csv, &[&[Cell::Text(b"")]], 1), "name\n\"\"\n");
    }

    #[test]
    fn json_rows_are_objects_with_the_proto_names_and_a_page_ends_with_its_token() {
        let written = write(RowFormat::Ndjson, ROWS, 5);
        let rows: Vec<serde_json::Value> =
            written.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(
            rows[0],
            serde_json::json!({"name": "plain", "amount": 7, "score": 2.5, "flag": true, "seq": "a"})
        );
        assert_eq!(rows[1]["name"], "say \"hi\", ok");
        assert_eq!(rows[2]["name"], "two\nlines");
        assert_eq!(rows[2]["seq"], "서울");
        let page: serde_json::Value =
            serde_json::from_str(&write(RowFormat::JsonPage { page_size: 10 }, ROWS, 2)).unwrap();
        assert_eq!(page["rows"].as_array().unwrap().len(), 3);
        assert_eq!(page["rows"][1], serde_json::json!({"name": "say \"hi\", ok", "amount": -3}));
        assert_eq!(page["next_page_token"], "tok");
        let empty: serde_json::Value =
            serde_json::from_str(&write(RowFormat::JsonPage { page_size: 10 }, &[], 1)).unwrap();
        assert_eq!(empty["rows"], serde_json::json!([]));
    }
}
