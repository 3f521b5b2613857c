//! Rows kept while they are sorted, a few bytes a cell: a tag, then a
//! zigzag varint for an integer, 8 bytes for a real, a length and the
//! bytes for text. [`StoredRow`] reads one back cell by cell.

use crate::error::{DomainError, Result};
use crate::values::cell::{Cell, CellRow, put_varint};

const NULL: u8 = 0;
const INTEGER: u8 = 1;
const REAL: u8 = 2;
const TEXT: u8 = 3;

/// Appends the first `columns` cells of `row` to `out`.
pub(super) fn put(out: &mut Vec<u8>, row: &impl CellRow, columns: usize) -> Result<()> {
    for index in 0..columns {
        match row.cell(index)? {
            Cell::Null => out.push(NULL),
            // Storage gives none of the wire's other kinds; kept as SQLite would.
            Cell::Unsigned(n) => put_integer(out, n as i64),
            Cell::Bool(b) => put_integer(out, i64::from(b)),
            Cell::Float(x) => put_real(out, f64::from(x)),
            Cell::Integer(n) => put_integer(out, n),
            Cell::Real(x) => put_real(out, x),
            Cell::Text(text) => {
                out.push(TEXT);
                put_varint(out, text.len() as u64);
                out.extend_from_slice(text);
            }
        }
    }
    Ok(())
}

fn put_integer(out: &mut Vec<u8>, n: i64) {
    out.push(INTEGER);
    put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn put_real(out: &mut Vec<u8>, x: f64) {
    out.push(REAL);
    out.extend_from_slice(&x.to_le_bytes());
}

/// A kept row read back, its cells decoded once.
#[derive(Debug, Default)]
pub(crate) struct StoredRow<'a> {
    cells: Vec<Cell<'a>>,
}

impl<'a> StoredRow<'a> {
    /// Decodes the cells of `bytes`.
    pub(in crate::store::sqlite) fn read(bytes: &'a [u8]) -> Result<Self> {
        let mut row = Self { cells: Vec::with_capacity(64) };
        row.decode(bytes)?;
        Ok(row)
    }

    /// Decodes the cells of `bytes` in place of the row's, keeping the
    /// room they took (rows read one after another allocate once).
    pub(super) fn decode(&mut self, bytes: &'a [u8]) -> Result<()> {
        let cells = &mut self.cells;
        cells.clear();
        let mut at = 0;
        while let Some(&tag) = bytes.get(at) {
            at += 1;
            cells.push(match tag {
                NULL => Cell::Null,
                INTEGER => {
                    let (zigzag, size) = varint(bytes, at)?;
                    at += size;
                    Cell::Integer((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64))
                }
                REAL => {
                    let real = bytes.get(at..at + 8).ok_or_else(corrupt)?;
                    at += 8;
                    Cell::Real(f64::from_le_bytes(real.try_into().map_err(|_| corrupt())?))
                }
                TEXT => {
                    let (len, size) = varint(bytes, at)?;
                    let start = at + size;
                    at = start + len as usize;
                    Cell::Text(bytes.get(start..at).ok_or_else(corrupt)?)
                }
                _ => return Err(corrupt()),
            });
        }
        Ok(())
    }
}

impl CellRow for StoredRow<'_> {
    fn cell(&self, index: usize) -> Result<Cell<'_>> {
        self.cells.get(index).copied().ok_or_else(corrupt)
    }
}

/// The varint at `at` and its size in bytes.
pub(super) fn varint(bytes: &[u8], at: usize) -> Result<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in bytes.get(at..).unwrap_or_default().iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte < 0x80 {
            return Ok((value, i + 1));
        }
    }
    Err(corrupt())
}

fn corrupt() -> DomainError {
    DomainError::Internal("a row kept for sorting does not read back".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Cells(Vec<Cell<'static>>);

    impl CellRow for Cells {
        fn cell(&self, index: usize) -> Result<Cell<'_>> {
            Ok(self.0[index])
        }
    }

    #[test]
    fn every_kind_of_cell_reads_back_as_written() {
        let cells = vec![
            Cell::Null,
            Cell::Integer(0),
            Cell::Integer(-1),
            Cell::Integer(i64::MIN),
            Cell::Integer(i64::MAX),
            Cell::Real(-2.5),
            Cell::Real(f64::MAX),
            Cell::Text(b""),
            Cell::Text("카드 €".as_bytes()),
        ];
        let mut bytes = Vec::new();
        put(&mut bytes, &Cells(cells.clone()), cells.len()).unwrap();
        let row = StoredRow::read(&bytes).unwrap();
        let back: Vec<Cell<'_>> = (0..cells.len()).map(|i| row.cell(i).unwrap()).collect();
        assert_eq!(back, cells);
        assert!(row.cell(cells.len()).is_err(), "no cell past the last");
        assert!(StoredRow::read(&bytes[..bytes.len() - 1]).is_err(), "a cut row is refused");
    }

    #[test]
    fn a_reused_row_holds_only_the_cells_of_the_last_decoded() {
        let (mut long, mut short) = (Vec::new(), Vec::new());
        put(&mut long, &Cells(vec![Cell::Integer(1), Cell::Text(b"secret"), Cell::Integer(3)]), 3).unwrap();
        put(&mut short, &Cells(vec![Cell::Integer(7)]), 1).unwrap();
        let mut row = StoredRow::default();
        row.decode(&long).unwrap();
        row.decode(&short).unwrap();
        assert_eq!(row.cell(0).unwrap(), Cell::Integer(7));
        assert!(row.cell(1).is_err(), "no cell of the row before");
    }
}
