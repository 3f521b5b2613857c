//! A result row as every layer reads it: cell by cell, each cell one
//! [`Cell`] of the row format the CLI shares (storage gives NULL, integers,
//! reals and text), whichever backend produced it; and the varint both the
//! protobuf wire and the kept rows of a sorting scan write lengths in.

use crate::error::Result;

pub use mesh_rows::Cell;
pub(crate) use mesh_rows::wire::put_varint;

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
