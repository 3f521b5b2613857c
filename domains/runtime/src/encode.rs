//! Writing rows straight from SQLite into protobuf wire format, with the
//! field numbers and types of the row message: no message object per row.

use rusqlite::types::ValueRef;

use crate::schema::{ColumnDef, ColumnKind};

/// Appends `value` as a protobuf varint.
pub fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

const WIRE_VARINT: u32 = 0;
const WIRE_FIXED64: u32 = 1;
const WIRE_LEN: u32 = 2;
const WIRE_FIXED32: u32 = 5;

/// Appends a length-delimited field: tag, length, bytes.
pub fn put_len_field(buf: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_varint(buf, u64::from(number << 3 | WIRE_LEN));
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// How to write one projected column.
#[derive(Debug, Clone)]
struct FieldWriter {
    tag: Vec<u8>,
    kind: ColumnKind,
    zigzag: bool,
    float32: bool,
}

/// Encodes the projected columns of result rows as row messages.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    fields: Vec<FieldWriter>,
}

impl RowEncoder {
    /// An encoder for `columns`, which are the first columns of each result row.
    pub fn new<'a>(columns: impl IntoIterator<Item = &'a ColumnDef>) -> Self {
        let fields = columns
            .into_iter()
            .map(|c| {
                let wire = match c.kind {
                    ColumnKind::String => WIRE_LEN,
                    ColumnKind::Integer | ColumnKind::Bool => WIRE_VARINT,
                    ColumnKind::Real if c.float32 => WIRE_FIXED32,
                    ColumnKind::Real => WIRE_FIXED64,
                };
                let mut tag = Vec::new();
                put_varint(&mut tag, u64::from(c.number << 3 | wire));
                FieldWriter { tag, kind: c.kind, zigzag: c.zigzag, float32: c.float32 }
            })
            .collect();
        Self { fields }
    }

    /// Appends the row message for `row` to `out` (proto3: default values
    /// are left out, as any encoder does).
    pub fn encode(&self, row: &rusqlite::Row<'_>, out: &mut Vec<u8>) -> rusqlite::Result<()> {
        for (i, field) in self.fields.iter().enumerate() {
            match (field.kind, row.get_ref(i)?) {
                (ColumnKind::String, ValueRef::Text(text)) if !text.is_empty() => {
                    out.extend_from_slice(&field.tag);
                    put_varint(out, text.len() as u64);
                    out.extend_from_slice(text);
                }
                (ColumnKind::Integer | ColumnKind::Bool, ValueRef::Integer(n)) if n != 0 => {
                    out.extend_from_slice(&field.tag);
                    let wire = if field.zigzag { ((n << 1) ^ (n >> 63)) as u64 } else { n as u64 };
                    put_varint(out, wire);
                }
                (ColumnKind::Real, value) => {
                    let x = match value {
                        ValueRef::Real(x) => x,
                        ValueRef::Integer(n) => n as f64,
                        _ => 0.0,
                    };
                    if x != 0.0 {
                        out.extend_from_slice(&field.tag);
                        if field.float32 {
                            out.extend_from_slice(&(x as f32).to_le_bytes());
                        } else {
                            out.extend_from_slice(&x.to_le_bytes());
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
