//! A result row as every layer reads it: cell by cell, each cell a value
//! of one of four kinds, whichever backend produced it; and the varint both
//! the protobuf wire and the kept rows of a sorting scan write lengths in.

use crate::error::Result;

/// Appends `value` as a protobuf varint.
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// One value of a result row, as either backend returns it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// No value.
    Null,
    /// An integer (also a bool as 0/1).
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// UTF-8 text.
    Text(&'a [u8]),
}

/// A result row of either backend, read cell by cell.
pub trait CellRow {
    /// The value of column `index`.
    fn cell(&self, index: usize) -> Result<Cell<'_>>;
}

/// Cells already in hand (a row built in memory) read as a result row.
impl CellRow for &[Cell<'_>] {
    fn cell(&self, index: usize) -> Result<Cell<'_>> {
        Ok(self.get(index).copied().unwrap_or(Cell::Null))
    }
}
