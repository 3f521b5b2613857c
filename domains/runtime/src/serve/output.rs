//! The forms a query's rows leave the domain in. Every scan writes
//! `QueryResponse` batches in protobuf wire format (the access rules and
//! pseudonyms applied as it encodes); gRPC sends them as they are, and REST
//! turns them into NDJSON, CSV or one JSON page here (with `mesh-rows`, as
//! `mesh query` does), on another thread than the scan's, so a text export
//! runs the two in parallel as a gRPC client does. One scan, one set of
//! rules, several encodings.

use mesh_rows::{RowError, RowReader, RowWriter, TextFormat};
use prost_reflect::FieldDescriptor;

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
    /// Arrow Flight `FlightData` messages: the schema, then record batches
    /// with the resume token after each as `app_metadata` (Flight `DoGet`).
    Arrow,
}

impl RowFormat {
    /// Its name as a metric label.
    pub fn label(self) -> &'static str {
        match self {
            RowFormat::Protobuf => "grpc",
            RowFormat::Ndjson => "ndjson",
            RowFormat::Csv => "csv",
            RowFormat::JsonPage { .. } => "json",
            RowFormat::Arrow => "arrow",
        }
    }

    /// The media type of the encoded rows.
    pub fn content_type(self) -> &'static str {
        match self {
            RowFormat::Protobuf => "application/grpc",
            RowFormat::Ndjson => "application/x-ndjson",
            RowFormat::Csv => "text/csv; charset=utf-8",
            RowFormat::JsonPage { .. } => "application/json",
            RowFormat::Arrow => "application/vnd.apache.arrow.stream",
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

/// Turns the `QueryResponse` batches of one query into a text format:
/// the rows read and written by `mesh-rows`, as `mesh query` does.
#[derive(Debug)]
pub(crate) struct TextWriter {
    reader: RowReader,
    writer: RowWriter,
}

impl TextWriter {
    /// A writer of `format` (not protobuf) for rows of `columns` (the
    /// query's projection, in order); `rows_field` and `token_field` are
    /// the field numbers of the product's `QueryResponse`.
    pub(crate) fn new(
        format: RowFormat,
        columns: &[FieldDescriptor],
        rows_field: u32,
        token_field: u32,
    ) -> Result<Self, String> {
        let reader = RowReader::new(rows_field, Some(token_field), columns)
            .ok_or_else(|| "a projected column is not a scalar".to_owned())?;
        let text = match format {
            RowFormat::Csv => TextFormat::Csv,
            RowFormat::Ndjson | RowFormat::Protobuf | RowFormat::Arrow => TextFormat::Ndjson,
            RowFormat::JsonPage { .. } => TextFormat::JsonPage,
        };
        let names: Vec<&str> = columns.iter().map(|c| c.name()).collect();
        Ok(Self { reader, writer: RowWriter::new(text, &names) })
    }

    /// Writes what comes before the first row: CSV's header line, the
    /// opening of a JSON page.
    pub(crate) fn begin(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        self.writer.begin().map_err(|e| e.0)?;
        self.writer.take(out).map_err(|e| e.0)
    }

    /// Appends the rows of one encoded `QueryResponse`; its resume token.
    pub(crate) fn batch<'b>(&mut self, batch: &'b [u8], out: &mut Vec<u8>) -> Result<&'b [u8], String> {
        let writer = &mut self.writer;
        let read = self
            .reader
            .read(batch, |cells| writer.row(cells).map(|()| std::ops::ControlFlow::Continue(())))
            .map_err(|e: RowError| e.0)?;
        self.writer.take(out).map_err(|e| e.0)?;
        Ok(read.token.unwrap_or_default())
    }

    /// Ends a JSON page with `next_page_token` (empty on the last page).
    pub(crate) fn end_page(&mut self, token: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        self.writer.end(token);
        self.writer.take(out).map_err(|e| e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::encode::RowEncoder;
    use crate::values::cell::Cell;
    use crate::values::test_schema::schema;
    use mesh_rows::wire::put_len_field;

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
        let fields: Vec<_> = schema.message.fields().take(columns).collect();
        let mut writer = TextWriter::new(format, &fields, 1, 2).unwrap();
        let mut out = Vec::new();
        writer.begin(&mut out).unwrap();
        let token = writer.batch(&batch, &mut out).unwrap().to_vec();
        if matches!(format, RowFormat::JsonPage { .. }) {
            writer.end_page(&token, &mut out).unwrap();
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
