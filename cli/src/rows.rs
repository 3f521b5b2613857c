//! Writing rows as a table, CSV, JSON or NDJSON, streaming every format but
//! the table (which keeps at most its cap of rows).

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use anyhow::Result;
use comfy_table::Cell as TableCell;
use prost_reflect::{DynamicMessage, FieldDescriptor, Value};

use crate::cli::Format;
use crate::style;
use crate::wire::Cell;

/// Where rows go.
pub(crate) struct Sink {
    output: Output,
    /// Whether text is escaped for a terminal (stdout is one): data written
    /// to a file or a pipe is kept as it is.
    escape: bool,
}

/// The output of each format.
enum Output {
    /// A table of at most `cap` rows; the rest are counted.
    Table { table: comfy_table::Table, cap: usize, shown: usize, left_out: u64 },
    /// CSV with a header.
    Csv(csv::Writer<Box<dyn Write>>),
    /// A JSON array; `keys` are the column names already JSON-quoted.
    Json { out: Box<dyn Write>, first: bool, keys: Vec<String> },
    /// One JSON object per line.
    Ndjson { out: Box<dyn Write>, keys: Vec<String> },
}

impl Sink {
    /// A sink of `format` for rows with `columns`.
    pub(crate) fn new(format: Format, columns: &[FieldDescriptor], cap: usize) -> Result<Self> {
        let names: Vec<&str> = columns.iter().map(|c| c.name()).collect();
        let keys = names.iter().map(serde_json::to_string).collect::<Result<Vec<_>, _>>()?;
        let out: Box<dyn Write> = Box::new(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()));
        let output = match format {
            Format::Table => Output::Table { table: style::table(&names), cap, shown: 0, left_out: 0 },
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(out);
                writer.write_record(&names)?;
                Output::Csv(writer)
            }
            Format::Json => {
                let mut out = out;
                out.write_all(b"[")?;
                Output::Json { out, first: true, keys }
            }
            Format::Ndjson => Output::Ndjson { out, keys },
        };
        // Tables are for people: always escaped. Other formats only on a terminal.
        let escape = format == Format::Table || std::io::stdout().is_terminal();
        Ok(Sink { output, escape })
    }

    /// Writes one row; on a terminal, its text escaped.
    pub(crate) fn row(&mut self, cells: &[Cell<'_>]) -> Result<()> {
        let unsafe_text = |c: &Cell<'_>| matches!(c, Cell::Text(t) if matches!(style::safe(&String::from_utf8_lossy(t)), Cow::Owned(_)));
        if self.escape && cells.iter().any(unsafe_text) {
            let escaped: Vec<String> = cells
                .iter()
                .map(|c| match c {
                    Cell::Text(t) => style::safe(&String::from_utf8_lossy(t)).into_owned(),
                    _ => String::new(),
                })
                .collect();
            let cells: Vec<Cell<'_>> = cells
                .iter()
                .zip(&escaped)
                .map(|(c, e)| if let Cell::Text(_) = c { Cell::Text(e.as_bytes()) } else { *c })
                .collect();
            return self.output.row(&cells);
        }
        self.output.row(cells)
    }

    /// Writes a row decoded as a message (rows with non-scalar columns).
    pub(crate) fn message(&mut self, row: &DynamicMessage, columns: &[FieldDescriptor]) -> Result<()> {
        let values: Vec<Value> = columns.iter().map(|c| row.get_field(c).into_owned()).collect();
        let rendered: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        let cells: Vec<Cell<'_>> = values
            .iter()
            .zip(&rendered)
            .map(|(value, rendered)| match value {
                Value::String(s) => Cell::Text(s.as_bytes()),
                Value::I64(n) => Cell::Int(*n),
                Value::I32(n) | Value::EnumNumber(n) => Cell::Int(i64::from(*n)),
                Value::U64(n) => Cell::UInt(*n),
                Value::U32(n) => Cell::UInt(u64::from(*n)),
                Value::F64(x) => Cell::Real(*x),
                Value::F32(x) => Cell::Real(f64::from(*x)),
                Value::Bool(b) => Cell::Bool(*b),
                Value::Bytes(b) => Cell::Text(b),
                _ => Cell::Text(rendered.as_bytes()),
            })
            .collect();
        self.row(&cells)
    }

    /// Finishes the output; `more` says rows beyond the ones fetched exist.
    pub(crate) fn finish(self, more: bool) -> Result<()> {
        self.output.finish(more)
    }
}

impl Output {
    fn row(&mut self, cells: &[Cell<'_>]) -> Result<()> {
        match self {
            Output::Table { table, cap, shown, left_out } => {
                if *shown < *cap {
                    table.add_row(cells.iter().map(|c| TableCell::new(text(c))));
                    *shown += 1;
                } else {
                    *left_out += 1;
                }
            }
            Output::Csv(writer) => {
                let mut number = itoa::Buffer::new();
                for cell in cells {
                    match cell {
                        Cell::Text(bytes) => writer.write_field(bytes)?,
                        Cell::Int(n) => writer.write_field(number.format(*n))?,
                        Cell::UInt(n) => writer.write_field(number.format(*n))?,
                        other => writer.write_field(text(other))?,
                    }
                }
                writer.write_record(None::<&[u8]>)?;
            }
            Output::Json { out, first, keys } => {
                if !*first {
                    out.write_all(b",")?;
                }
                *first = false;
                out.write_all(b"\n")?;
                object(out, keys, cells)?;
            }
            Output::Ndjson { out, keys } => {
                object(out, keys, cells)?;
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    fn finish(self, more: bool) -> Result<()> {
        match self {
            Output::Table { table, shown, left_out, cap } => {
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
            Output::Csv(mut writer) => writer.flush()?,
            Output::Json { mut out, first, .. } => {
                out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
                out.flush()?;
            }
            Output::Ndjson { mut out, .. } => out.flush()?,
        }
        Ok(())
    }
}

/// A value as text for tables and CSV.
fn text(cell: &Cell<'_>) -> String {
    match cell {
        Cell::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Cell::Int(n) => n.to_string(),
        Cell::UInt(n) => n.to_string(),
        Cell::Real(x) => x.to_string(),
        Cell::Bool(b) => b.to_string(),
    }
}

/// Writes a row as a JSON object with the proto field names.
fn object(out: &mut dyn Write, keys: &[String], cells: &[Cell<'_>]) -> Result<()> {
    out.write_all(b"{")?;
    let mut number = itoa::Buffer::new();
    for (i, (key, cell)) in keys.iter().zip(cells).enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(key.as_bytes())?;
        out.write_all(b":")?;
        match cell {
            Cell::Text(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => serde_json::to_writer(&mut *out, text)?,
                Err(_) => serde_json::to_writer(&mut *out, &String::from_utf8_lossy(bytes))?,
            },
            Cell::Int(n) => out.write_all(number.format(*n).as_bytes())?,
            Cell::UInt(n) => out.write_all(number.format(*n).as_bytes())?,
            Cell::Real(x) => serde_json::to_writer(&mut *out, x)?,
            Cell::Bool(b) => out.write_all(if *b { b"true" } else { b"false" })?,
        }
    }
    out.write_all(b"}")?;
    Ok(())
}
