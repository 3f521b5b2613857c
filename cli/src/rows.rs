//! Writing rows as a table, CSV, JSON or NDJSON, streaming every format but
//! the table (which keeps at most its cap of rows). The text formats are
//! written by `mesh-rows`, as a domain's REST export writes them.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use anyhow::{Result, bail};
use comfy_table::Cell as TableCell;
use prost_reflect::{DynamicMessage, FieldDescriptor, Value};

use crate::commands::query::Format;
use crate::style;
use mesh_rows::{Cell, RowWriter, TextFormat};

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
    /// CSV, JSON or NDJSON, written to `out` a buffer at a time.
    Text { writer: RowWriter, out: Box<dyn Write>, buffer: Vec<u8> },
}

/// Text written is handed to the output once this much has gathered.
const WRITE_BYTES: usize = 1 << 16;

impl Sink {
    /// A sink of `format` for rows with `columns`.
    pub(crate) fn new(format: Format, columns: &[FieldDescriptor], cap: usize) -> Result<Self> {
        let names: Vec<&str> = columns.iter().map(|c| c.name()).collect();
        Self::with_names(format, &names, cap)
    }

    /// A sink of `format` for rows of columns called `names`.
    pub(crate) fn with_names(format: Format, names: &[&str], cap: usize) -> Result<Self> {
        let text = match format {
            Format::Table => None,
            Format::Csv => Some(TextFormat::Csv),
            Format::Json => Some(TextFormat::Json),
            Format::Ndjson => Some(TextFormat::Ndjson),
            Format::Arrow | Format::Parquet => {
                bail!("{} is written from Arrow batches, not rows", format.name())
            }
        };
        let output = match text {
            None => Output::Table { table: style::table(names), cap, shown: 0, left_out: 0 },
            Some(text) => {
                let mut writer = RowWriter::new(text, names);
                writer.begin()?;
                let out: Box<dyn Write> = Box::new(std::io::stdout());
                Output::Text { writer, out, buffer: Vec::with_capacity(2 * WRITE_BYTES) }
            }
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
                Value::I64(n) => Cell::Integer(*n),
                Value::I32(n) | Value::EnumNumber(n) => Cell::Integer(i64::from(*n)),
                Value::U64(n) => Cell::Unsigned(*n),
                Value::U32(n) => Cell::Unsigned(u64::from(*n)),
                Value::F64(x) => Cell::Real(*x),
                Value::F32(x) => Cell::Float(*x),
                Value::Bool(b) => Cell::Bool(*b),
                Value::Bytes(b) => Cell::Text(b),
                _ => Cell::Text(rendered.as_bytes()),
            })
            .collect();
        self.row(&cells)
    }

    /// Ends a batch of rows: their text goes out once enough has gathered.
    pub(crate) fn end_batch(&mut self) -> Result<()> {
        self.output.flush_batch()
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
            Output::Text { writer, .. } => writer.row(cells)?,
        }
        Ok(())
    }

    /// Hands the text of the rows written so far to the output once enough
    /// has gathered (after each batch).
    fn flush_batch(&mut self) -> Result<()> {
        if let Output::Text { writer, out, buffer } = self {
            writer.take(buffer)?;
            if buffer.len() >= WRITE_BYTES {
                out.write_all(buffer)?;
                buffer.clear();
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
            Output::Text { mut writer, mut out, mut buffer } => {
                writer.end(b"");
                writer.take(&mut buffer)?;
                out.write_all(&buffer)?;
                out.flush()?;
            }
        }
        Ok(())
    }
}

/// A value as text for tables.
fn text(cell: &Cell<'_>) -> String {
    match cell {
        Cell::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Cell::Integer(n) => n.to_string(),
        Cell::Unsigned(n) => n.to_string(),
        Cell::Real(x) => x.to_string(),
        Cell::Float(x) => x.to_string(),
        Cell::Bool(b) => b.to_string(),
        Cell::Null => String::new(),
    }
}
