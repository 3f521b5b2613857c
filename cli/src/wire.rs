//! Reading result batches straight from the protobuf wire format with the
//! row type's descriptor: no message object per row, only the selected
//! columns' values, borrowed from the batch.

use std::ops::ControlFlow;

use anyhow::{Result, bail};
use prost_reflect::{FieldDescriptor, Kind};

/// One value of a row, borrowed from the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell<'a> {
    /// Text (proto `string`), as UTF-8 bytes.
    Text(&'a [u8]),
    /// Any signed integer kind.
    Int(i64),
    /// Any unsigned integer kind.
    UInt(u64),
    /// `double` or `float`.
    Real(f64),
    /// `bool`.
    Bool(bool),
}

#[derive(Debug, Clone, Copy)]
enum Decode {
    Text,
    Varint,
    ZigZag,
    Unsigned,
    Bool,
    Fixed64Real,
    Fixed32Real,
    Fixed64Signed,
    Fixed32Signed,
    Fixed64Unsigned,
    Fixed32Unsigned,
}

/// Field numbers below this are looked up in a table indexed by number;
/// larger ones (up to protobuf's 536,870,911) in a sorted list, so that a
/// contract with a huge field number cannot make the reader allocate by it.
const DENSE_FIELDS: u32 = 1024;

/// Decodes rows of a batch for a fixed list of scalar columns.
pub(crate) struct RowReader {
    rows_field: u32,
    /// For each small field number (index), the output column and how to decode it.
    slots: Vec<Option<(usize, Decode)>>,
    /// The same for field numbers from [`DENSE_FIELDS`], sorted by number.
    sparse: Vec<(u32, (usize, Decode))>,
    defaults: Vec<Cell<'static>>,
}

impl RowReader {
    /// A reader of `columns` from batches whose rows are field `rows_field`;
    /// `None` when a column is not a scalar (use dynamic decoding then).
    pub(crate) fn new(rows_field: u32, columns: &[FieldDescriptor]) -> Option<Self> {
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
                Kind::Int64 | Kind::Int32 | Kind::Enum(_) => (Decode::Varint, Cell::Int(0)),
                Kind::Sint64 | Kind::Sint32 => (Decode::ZigZag, Cell::Int(0)),
                Kind::Uint64 | Kind::Uint32 => (Decode::Unsigned, Cell::UInt(0)),
                Kind::Bool => (Decode::Bool, Cell::Bool(false)),
                Kind::Double => (Decode::Fixed64Real, Cell::Real(0.0)),
                Kind::Float => (Decode::Fixed32Real, Cell::Real(0.0)),
                Kind::Sfixed64 => (Decode::Fixed64Signed, Cell::Int(0)),
                Kind::Sfixed32 => (Decode::Fixed32Signed, Cell::Int(0)),
                Kind::Fixed64 => (Decode::Fixed64Unsigned, Cell::UInt(0)),
                Kind::Fixed32 => (Decode::Fixed32Unsigned, Cell::UInt(0)),
                Kind::Bytes | Kind::Message(_) => return None,
            };
            match column.number() {
                n if n < DENSE_FIELDS => slots[n as usize] = Some((i, decode)),
                n => sparse.push((n, (i, decode))),
            }
            defaults.push(default);
        }
        sparse.sort_by_key(|(n, _)| *n);
        Some(Self { rows_field, slots, sparse, defaults })
    }

    /// Calls `on_row` with the cells of each row in `batch`, until it says
    /// to stop; returns whether it did.
    pub(crate) fn read<'a>(
        &self,
        batch: &'a [u8],
        mut on_row: impl FnMut(&[Cell<'a>]) -> Result<ControlFlow<()>>,
    ) -> Result<ControlFlow<()>> {
        let mut cells: Vec<Cell<'a>> = self.defaults.clone();
        let mut input = batch;
        while !input.is_empty() {
            let (number, wire) = tag(&mut input)?;
            if number == self.rows_field && wire == 2 {
                let row = length_delimited(&mut input)?;
                cells.copy_from_slice(&self.defaults);
                self.fill(row, &mut cells)?;
                if on_row(&cells)?.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            } else {
                skip(&mut input, wire)?;
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The output column of field `number` and how to decode it.
    fn slot(&self, number: u32) -> Option<&(usize, Decode)> {
        if number < DENSE_FIELDS {
            return self.slots.get(number as usize)?.as_ref();
        }
        let found = self.sparse.binary_search_by_key(&number, |(n, _)| *n).ok()?;
        Some(&self.sparse[found].1)
    }

    fn fill<'a>(&self, mut row: &'a [u8], cells: &mut [Cell<'a>]) -> Result<()> {
        while !row.is_empty() {
            let (number, wire) = tag(&mut row)?;
            let Some((column, decode)) = self.slot(number) else {
                skip(&mut row, wire)?;
                continue;
            };
            cells[*column] = match (decode, wire) {
                (Decode::Text, 2) => Cell::Text(length_delimited(&mut row)?),
                (Decode::Varint, 0) => Cell::Int(varint(&mut row)? as i64),
                (Decode::ZigZag, 0) => {
                    let n = varint(&mut row)?;
                    Cell::Int((n >> 1) as i64 ^ -((n & 1) as i64))
                }
                (Decode::Unsigned, 0) => Cell::UInt(varint(&mut row)?),
                (Decode::Bool, 0) => Cell::Bool(varint(&mut row)? != 0),
                (Decode::Fixed64Real, 1) => Cell::Real(f64::from_le_bytes(fixed::<8>(&mut row)?)),
                (Decode::Fixed32Real, 5) => Cell::Real(f32::from_le_bytes(fixed::<4>(&mut row)?) as f64),
                (Decode::Fixed64Signed, 1) => Cell::Int(i64::from_le_bytes(fixed::<8>(&mut row)?)),
                (Decode::Fixed32Signed, 5) => Cell::Int(i32::from_le_bytes(fixed::<4>(&mut row)?) as i64),
                (Decode::Fixed64Unsigned, 1) => Cell::UInt(u64::from_le_bytes(fixed::<8>(&mut row)?)),
                (Decode::Fixed32Unsigned, 5) => Cell::UInt(u32::from_le_bytes(fixed::<4>(&mut row)?) as u64),
                (_, wire) => {
                    bail!("field {number} has wire type {wire}, which its declared type does not use")
                }
            };
        }
        Ok(())
    }
}

fn varint(input: &mut &[u8]) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&byte, rest)) = input.split_first() else { bail!("a batch ends inside a number") };
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    bail!("a number in a batch is longer than 10 bytes")
}

fn tag(input: &mut &[u8]) -> Result<(u32, u32)> {
    let key = varint(input)?;
    Ok(((key >> 3) as u32, (key & 7) as u32))
}

fn length_delimited<'a>(input: &mut &'a [u8]) -> Result<&'a [u8]> {
    let len = varint(input)? as usize;
    if len > input.len() {
        bail!("a batch ends inside a field");
    }
    let (value, rest) = input.split_at(len);
    *input = rest;
    Ok(value)
}

fn fixed<const N: usize>(input: &mut &[u8]) -> Result<[u8; N]> {
    if input.len() < N {
        bail!("a batch ends inside a fixed-size number");
    }
    let (value, rest) = input.split_at(N);
    *input = rest;
    Ok(value.try_into().expect("split at N"))
}

fn skip(input: &mut &[u8], wire: u32) -> Result<()> {
    match wire {
        0 => {
            varint(input)?;
        }
        1 => {
            fixed::<8>(input)?;
        }
        2 => {
            length_delimited(input)?;
        }
        5 => {
            fixed::<4>(input)?;
        }
        other => bail!("unsupported wire type {other} in a batch"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_reflect::DescriptorPool;

    use super::*;

    /// Every row of `batch`, read to the end.
    fn read_all<'a>(reader: &RowReader, batch: &'a [u8]) -> Vec<Vec<Cell<'a>>> {
        let mut seen = Vec::new();
        let flow = reader
            .read(batch, |cells| {
                seen.push(cells.to_vec());
                Ok(ControlFlow::Continue(()))
            })
            .unwrap();
        assert_eq!(flow, ControlFlow::Continue(()));
        seen
    }

    #[test]
    fn reads_what_prost_writes() {
        use mesh_contracts::woori::payment::v1::{CardSpending, QueryResponse};
        let batch = QueryResponse {
            rows: vec![
                CardSpending {
                    bas_yh: "2024Q1".into(),
                    seq: "7".into(),
                    tot_use_am: 1 << 40,
                    ..Default::default()
                },
                CardSpending { seq: "8".into(), ..Default::default() },
            ],
            resume_token: "token".into(),
        }
        .encode_to_vec();
        let pool = DescriptorPool::decode(mesh_contracts::FILE_DESCRIPTOR_SET).unwrap();
        let row = pool.get_message_by_name("woori.payment.v1.CardSpending").unwrap();
        let columns: Vec<_> =
            ["seq", "tot_use_am", "bas_yh"].iter().map(|n| row.get_field_by_name(n).unwrap()).collect();
        let reader = RowReader::new(1, &columns).unwrap();
        let seen = read_all(&reader, &batch);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], [Cell::Text(b"7"), Cell::Int(1 << 40), Cell::Text(b"2024Q1")]);
        assert_eq!(seen[1], [Cell::Text(b"8"), Cell::Int(0), Cell::Text(b"")]);

        // The reader stops where the row callback says so.
        let mut read = 0;
        let flow = reader
            .read(&batch, |_| {
                read += 1;
                Ok(ControlFlow::Break(()))
            })
            .unwrap();
        assert_eq!((flow, read), (ControlFlow::Break(()), 1));
    }

    #[test]
    fn a_huge_field_number_is_read_without_a_table_that_large() {
        use prost_types::field_descriptor_proto::{Label, Type};
        use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet};
        let field = |name: &str, number: i32| FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            label: Some(Label::Optional as i32),
            r#type: Some(Type::Int64 as i32),
            ..Default::default()
        };
        let file = FileDescriptorProto {
            name: Some("hostile.proto".into()),
            package: Some("hostile".into()),
            syntax: Some("proto3".into()),
            message_type: vec![DescriptorProto {
                name: Some("Row".into()),
                field: vec![field("small", 1), field("huge", 536_870_911)],
                ..Default::default()
            }],
            ..Default::default()
        };
        let pool = DescriptorPool::from_file_descriptor_set(FileDescriptorSet { file: vec![file] }).unwrap();
        let row = pool.get_message_by_name("hostile.Row").unwrap();
        let columns: Vec<_> = row.fields().collect();
        let reader = RowReader::new(1, &columns).unwrap();
        assert!(reader.slots.len() <= DENSE_FIELDS as usize);
        // A batch with one row: small = 5, huge = 9.
        let mut row_bytes = vec![0x08, 5];
        // Field 536,870,911 with wire type 0 (varint).
        let mut tag = 536_870_911u64 << 3;
        while tag >= 0x80 {
            row_bytes.push((tag as u8) | 0x80);
            tag >>= 7;
        }
        row_bytes.extend([tag as u8, 9]);
        let mut batch = vec![0x0a, row_bytes.len() as u8];
        batch.extend(row_bytes);
        assert_eq!(read_all(&reader, &batch), [vec![Cell::Int(5), Cell::Int(9)]]);
    }
}
