//! Writing decoded rows as a table, CSV, JSON or NDJSON, streaming every
//! format but the table (which keeps at most its cap of rows).

use std::io::Write;

use anyhow::Result;
use comfy_table::Cell;
use prost_reflect::{DynamicMessage, FieldDescriptor, Value};

use crate::cli::Format;
use crate::style;

/// Where rows go.
pub enum Sink {
    /// A table of at most `cap` rows; the rest are counted.
    Table { table: comfy_table::Table, cap: usize, shown: usize, left_out: u64 },
    /// CSV with a header.
    Csv(csv::Writer<Box<dyn Write>>),
    /// A JSON array.
    Json { out: Box<dyn Write>, first: bool },
    /// One JSON object per line.
    Ndjson(Box<dyn Write>),
}

impl Sink {
    /// A sink of `format` for rows with `columns`.
    pub fn new(format: Format, columns: &[FieldDescriptor], cap: usize) -> Result<Self> {
        let names: Vec<&str> = columns.iter().map(|c| c.name()).collect();
        let out: Box<dyn Write> = Box::new(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()));
        Ok(match format {
            Format::Table => Sink::Table { table: style::table(&names), cap, shown: 0, left_out: 0 },
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(out);
                writer.write_record(&names)?;
                Sink::Csv(writer)
            }
            Format::Json => {
                let mut out = out;
                out.write_all(b"[")?;
                Sink::Json { out, first: true }
            }
            Format::Ndjson => Sink::Ndjson(out),
        })
    }

    /// Writes one row.
    pub fn row(&mut self, row: &DynamicMessage, columns: &[FieldDescriptor]) -> Result<()> {
        match self {
            Sink::Table { table, cap, shown, left_out } => {
                if *shown < *cap {
                    table.add_row(columns.iter().map(|c| Cell::new(text(&row.get_field(c)))));
                    *shown += 1;
                } else {
                    *left_out += 1;
                }
            }
            Sink::Csv(writer) => writer.write_record(columns.iter().map(|c| text(&row.get_field(c))))?,
            Sink::Json { out, first } => {
                if !*first {
                    out.write_all(b",")?;
                }
                *first = false;
                out.write_all(b"\n")?;
                serde_json::to_writer(&mut *out, &object(row, columns))?;
            }
            Sink::Ndjson(out) => {
                serde_json::to_writer(&mut *out, &object(row, columns))?;
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    /// Finishes the output; `more` says rows beyond the ones fetched exist.
    pub fn finish(self, more: bool) -> Result<()> {
        match self {
            Sink::Table { table, shown, left_out, cap } => {
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "{table}")?;
                if left_out > 0 {
                    eprintln!(
                        "{shown} rows shown, {left_out} more left out (--max-rows {cap}); use --format csv or json for all rows"
                    );
                } else if more {
                    eprintln!(
                        "{shown} rows shown; more match: use --limit, or --format csv or json for all rows"
                    );
                } else {
                    eprintln!("{shown} rows");
                }
            }
            Sink::Csv(mut writer) => writer.flush()?,
            Sink::Json { mut out, first } => {
                out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
                out.flush()?;
            }
            Sink::Ndjson(mut out) => out.flush()?,
        }
        Ok(())
    }
}

/// A value as text for tables and CSV.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::I64(n) => n.to_string(),
        Value::I32(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::U32(n) => n.to_string(),
        Value::F64(x) => x.to_string(),
        Value::F32(x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::EnumNumber(n) => n.to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

/// A row as a JSON object with the proto field names.
fn object(row: &DynamicMessage, columns: &[FieldDescriptor]) -> serde_json::Value {
    let map = columns
        .iter()
        .map(|c| {
            let value = match row.get_field(c).as_ref() {
                Value::String(s) => serde_json::Value::from(s.as_str()),
                Value::I64(n) => serde_json::Value::from(*n),
                Value::I32(n) => serde_json::Value::from(*n),
                Value::U64(n) => serde_json::Value::from(*n),
                Value::U32(n) => serde_json::Value::from(*n),
                Value::F64(x) => serde_json::Value::from(*x),
                Value::F32(x) => serde_json::Value::from(*x),
                Value::Bool(b) => serde_json::Value::from(*b),
                other => serde_json::Value::from(text(other)),
            };
            (c.name().to_owned(), value)
        })
        .collect();
    serde_json::Value::Object(map)
}
