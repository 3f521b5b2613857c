//! Result batches as rows of the mesh's cells, so the row-format writers
//! (CSV, JSON, NDJSON) and tables print SQL results as they print a
//! product's rows. Values of types rows do not have (dates, decimals,
//! lists) are written as Arrow displays them.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use mesh_rows::Cell;

/// One batch, read row by row as cells.
pub struct BatchCells {
    columns: Vec<Column>,
    rows: usize,
}

/// One column, cast once to the kind its cells are read from.
enum Column {
    Signed(Vec<Option<i64>>),
    Unsigned(Vec<Option<u64>>),
    Real(ArrayRef),
    Float(ArrayRef),
    Bool(ArrayRef),
    Text(ArrayRef),
    /// Written as displayed: `None` for a null.
    Shown(Vec<Option<String>>),
}

impl BatchCells {
    /// The rows of `batch`.
    pub fn new(batch: &RecordBatch) -> Self {
        let columns = batch.columns().iter().map(Column::of).collect();
        Self { columns, rows: batch.num_rows() }
    }

    /// How many rows the batch has.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The cells of row `row` into `cells` (cleared first).
    pub fn row<'a>(&'a self, row: usize, cells: &mut Vec<Cell<'a>>) {
        cells.clear();
        cells.extend(self.columns.iter().map(|column| column.cell(row)));
    }
}

impl Column {
    fn of(array: &ArrayRef) -> Self {
        let signed = |values: Vec<Option<i64>>| Self::Signed(values);
        match array.data_type() {
            DataType::Int64 => signed(array.as_primitive::<Int64Type>().iter().collect()),
            DataType::Int32 => {
                signed(array.as_primitive::<Int32Type>().iter().map(|v| v.map(i64::from)).collect())
            }
            DataType::Int16 => {
                signed(array.as_primitive::<Int16Type>().iter().map(|v| v.map(i64::from)).collect())
            }
            DataType::Int8 => {
                signed(array.as_primitive::<Int8Type>().iter().map(|v| v.map(i64::from)).collect())
            }
            DataType::UInt64 => Self::Unsigned(array.as_primitive::<UInt64Type>().iter().collect()),
            DataType::UInt32 => {
                Self::Unsigned(array.as_primitive::<UInt32Type>().iter().map(|v| v.map(u64::from)).collect())
            }
            DataType::UInt16 => {
                Self::Unsigned(array.as_primitive::<UInt16Type>().iter().map(|v| v.map(u64::from)).collect())
            }
            DataType::UInt8 => {
                Self::Unsigned(array.as_primitive::<UInt8Type>().iter().map(|v| v.map(u64::from)).collect())
            }
            DataType::Float64 => Self::Real(array.clone()),
            DataType::Float32 => Self::Float(array.clone()),
            DataType::Boolean => Self::Bool(array.clone()),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Self::Text(array.clone()),
            _ => Self::Shown(shown(array)),
        }
    }

    fn cell(&self, row: usize) -> Cell<'_> {
        let null = |array: &ArrayRef| array.is_null(row);
        match self {
            Self::Signed(values) => values[row].map_or(Cell::Null, Cell::Integer),
            Self::Unsigned(values) => values[row].map_or(Cell::Null, Cell::Unsigned),
            Self::Real(array) if !null(array) => Cell::Real(array.as_primitive::<Float64Type>().value(row)),
            Self::Float(array) if !null(array) => Cell::Float(array.as_primitive::<Float32Type>().value(row)),
            Self::Bool(array) if !null(array) => Cell::Bool(array.as_boolean().value(row)),
            Self::Text(array) if !null(array) => Cell::Text(text(array, row).as_bytes()),
            Self::Shown(values) => values[row].as_deref().map_or(Cell::Null, |v| Cell::Text(v.as_bytes())),
            _ => Cell::Null,
        }
    }
}

/// The string at `row` of a string array of any of Arrow's layouts.
fn text(array: &ArrayRef, row: usize) -> &str {
    match array.data_type() {
        DataType::LargeUtf8 => array.as_string::<i64>().value(row),
        DataType::Utf8View => array.as_string_view().value(row),
        _ => array.as_string::<i32>().value(row),
    }
}

/// Every value of `array` as Arrow displays it.
fn shown(array: &ArrayRef) -> Vec<Option<String>> {
    let options = FormatOptions::default();
    match ArrayFormatter::try_new(array.as_ref(), &options) {
        Ok(formatter) => (0..array.len())
            .map(|row| (!array.is_null(row)).then(|| formatter.value(row).to_string()))
            .collect(),
        Err(_) => vec![Some(format!("({})", array.data_type())); array.len()],
    }
}
