//! Reading the rows of a `QueryResponse` batch straight from the protobuf
//! wire format with the row type's descriptor: no message object per row,
//! only the selected columns' values, borrowed from the batch, and the
//! resume token in the same pass.

use std::ops::ControlFlow;

use prost_reflect::{FieldDescriptor, Kind};

use crate::wire::{self, Value};
use crate::{Cell, RowError};

/// How a column's field is decoded from the wire.
#[derive(Debug, Clone, Copy)]
enum Decode {
    Text,
    Varint,
    ZigZag,
    Unsigned,
    Bool,
    Double,
    Float,
    Fixed64Signed,
    Fixed32Signed,
    Fixed64Unsigned,
    Fixed32Unsigned,
}

/// Field numbers below this are looked up in a table indexed by number;
/// larger ones (up to protobuf's 536,870,911) in a sorted list, so that a
/// contract with a huge field number cannot make the reader allocate by it.
const DENSE_FIELDS: u32 = 1024;

/// What one batch held besides its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch<'a> {
    /// The row callback asked to stop before the batch ended.
    pub stopped: bool,
    /// The resume token after the batch's last row, when the batch was
    /// read to its end and carried one.
    pub token: Option<&'a [u8]>,
}

/// Decodes the rows of batches for a fixed list of scalar columns.
#[derive(Debug, Clone)]
pub struct RowReader {
    rows_field: u32,
    token_field: Option<u32>,
    /// For each small field number (index), the output column and how to decode it.
    slots: Vec<Option<(usize, Decode)>>,
    /// The same for field numbers from [`DENSE_FIELDS`], sorted by number.
    sparse: Vec<(u32, (usize, Decode))>,
    defaults: Vec<Cell<'static>>,
}

impl RowReader {
    /// A reader of `columns` (in output order) from batches whose rows are
    /// field `rows_field` and whose resume token is field `token_field`;
    /// `None` when a column is not a scalar (decode messages then).
    pub fn new(rows_field: u32, token_field: Option<u32>, columns: &[FieldDescriptor]) -> Option<Self> {
        let dense = columns.iter().map(|c| c.number()).filter(|&n| n < DENSE_FIELDS).max().unwrap_or(0);
        let mut slots = vec![None; dense as usize + 1];
        let mut sparse = Vec::new();
        let mut defaults = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            if column.is_list() || column.is_map() {
                return None;
            }
            let (decode, default) = match column.kind() {
                Kind::String => (Decode::Text, Cell::Text(b"")),
                Kind::Int64 | Kind::Int32 | Kind::Enum(_) => (Decode::Varint, Cell::Integer(0)),
                Kind::Sint64 | Kind::Sint32 => (Decode::ZigZag, Cell::Integer(0)),
                Kind::Uint64 | Kind::Uint32 => (Decode::Unsigned, Cell::Unsigned(0)),
                Kind::Bool => (Decode::Bool, Cell::Bool(false)),
                Kind::Double => (Decode::Double, Cell::Real(0.0)),
                Kind::Float => (Decode::Float, Cell::Float(0.0)),
                Kind::Sfixed64 => (Decode::Fixed64Signed, Cell::Integer(0)),
                Kind::Sfixed32 => (Decode::Fixed32Signed, Cell::Integer(0)),
                Kind::Fixed64 => (Decode::Fixed64Unsigned, Cell::Unsigned(0)),
                Kind::Fixed32 => (Decode::Fixed32Unsigned, Cell::Unsigned(0)),
                Kind::Bytes | Kind::Message(_) => return None,
            };
            match column.number() {
                n if n < DENSE_FIELDS => slots[n as usize] = Some((i, decode)),
                n => sparse.push((n, (i, decode))),
            }
            defaults.push(default);
        }
        sparse.sort_by_key(|(n, _)| *n);
        Some(Self { rows_field, token_field, slots, sparse, defaults })
    }

    /// Calls `on_row` with the cells of each row of `batch` (proto3's
    /// left-out defaults filled in) until it says to stop; then what else
    /// the batch held.
    pub fn read<'a, E: From<RowError>>(
        &self,
        batch: &'a [u8],
        mut on_row: impl FnMut(&[Cell<'a>]) -> Result<ControlFlow<()>, E>,
    ) -> Result<Batch<'a>, E> {
        let mut cells: Vec<Cell<'a>> = self.defaults.clone();
        let mut input = batch;
        let mut token = None;
        while !input.is_empty() {
            match wire::field(&mut input)? {
                (number, Value::Len(row)) if number == self.rows_field => {
                    cells.copy_from_slice(&self.defaults);
                    self.fill(row, &mut cells)?;
                    if on_row(&cells)?.is_break() {
                        return Ok(Batch { stopped: true, token: None });
                    }
                }
                (number, Value::Len(bytes)) if Some(number) == self.token_field => token = Some(bytes),
                _ => {}
            }
        }
        Ok(Batch { stopped: false, token })
    }

    /// The output column of field `number` and how to decode it.
    #[inline]
    fn slot(&self, number: u32) -> Option<&(usize, Decode)> {
        if number < DENSE_FIELDS {
            return self.slots.get(number as usize)?.as_ref();
        }
        let found = self.sparse.binary_search_by_key(&number, |(n, _)| *n).ok()?;
        Some(&self.sparse[found].1)
    }

    fn fill<'a>(&self, mut row: &'a [u8], cells: &mut [Cell<'a>]) -> Result<(), RowError> {
        while !row.is_empty() {
            let (number, value) = wire::field(&mut row)?;
            let Some(&(column, decode)) = self.slot(number) else { continue };
            cells[column] = match (decode, value) {
                (Decode::Text, Value::Len(text)) => Cell::Text(text),
                (Decode::Varint, Value::Varint(n)) => Cell::Integer(n as i64),
                (Decode::ZigZag, Value::Varint(n)) => Cell::Integer((n >> 1) as i64 ^ -((n & 1) as i64)),
                (Decode::Unsigned, Value::Varint(n)) => Cell::Unsigned(n),
                (Decode::Bool, Value::Varint(n)) => Cell::Bool(n != 0),
                (Decode::Double, Value::Fixed64(bytes)) => Cell::Real(f64::from_le_bytes(bytes)),
                (Decode::Float, Value::Fixed32(bytes)) => Cell::Float(f32::from_le_bytes(bytes)),
                (Decode::Fixed64Signed, Value::Fixed64(bytes)) => Cell::Integer(i64::from_le_bytes(bytes)),
                (Decode::Fixed32Signed, Value::Fixed32(bytes)) => {
                    Cell::Integer(i64::from(i32::from_le_bytes(bytes)))
                }
                (Decode::Fixed64Unsigned, Value::Fixed64(bytes)) => Cell::Unsigned(u64::from_le_bytes(bytes)),
                (Decode::Fixed32Unsigned, Value::Fixed32(bytes)) => {
                    Cell::Unsigned(u64::from(u32::from_le_bytes(bytes)))
                }
                _ => {
                    return Err(RowError(format!(
                        "field {number} has a wire type its declared type does not use"
                    )));
                }
            };
        }
        Ok(())
    }
}
