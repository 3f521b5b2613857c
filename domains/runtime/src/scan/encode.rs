//! Writing rows straight from the database into protobuf wire format, with
//! the field numbers and types of the row message: no message object per row.

use crate::error::Result;
use crate::query::pseudonym::{PSEUDONYM_DIGITS, PseudonymKey};
use crate::values::cell::{Cell, CellRow, put_varint};
use crate::values::schema::{ColumnDef, ColumnKind};

const WIRE_VARINT: u32 = 0;
const WIRE_FIXED64: u32 = 1;
const WIRE_LEN: u32 = 2;
const WIRE_FIXED32: u32 = 5;

pub(crate) use mesh_rows::wire::put_len_field;

/// How to write one projected column.
#[derive(Debug, Clone)]
struct FieldWriter {
    tag: Vec<u8>,
    kind: ColumnKind,
    zigzag: bool,
    float32: bool,
    /// Delivered as a pseudonym.
    pseudonym: bool,
}

/// What a consumer receives for a cell: the cell itself, or with `key`
/// (the column is delivered as pseudonyms) its pseudonym, a text one
/// written into `buf`. Empty text stays empty. Every encoding of rows
/// (protobuf, Arrow) delivers cells through here.
#[inline]
pub(crate) fn delivered<'a>(
    cell: Cell<'a>,
    key: Option<&PseudonymKey>,
    buf: &'a mut [u8; PSEUDONYM_DIGITS],
) -> Cell<'a> {
    match (cell, key) {
        (cell, None) => cell,
        (Cell::Text(text), Some(key)) if !text.is_empty() => {
            key.text(text, buf);
            Cell::Text(&buf[..])
        }
        (Cell::Integer(n), Some(key)) => Cell::Integer(key.integer(n)),
        (empty @ Cell::Text(_), Some(_)) => empty,
        // No other kind has a pseudonym: nothing rather than the raw value.
        (_, Some(_)) => Cell::Null,
    }
}

/// The key a pseudonymized column is delivered under: a column marked so
/// without one is an error, never delivered raw.
#[inline]
pub(crate) fn pseudonym_key(key: Option<&PseudonymKey>) -> Result<&PseudonymKey> {
    key.ok_or_else(|| {
        crate::error::DomainError::Internal("a pseudonymized column has no pseudonym key".into())
    })
}

/// Encodes the projected columns of result rows as row messages, with the
/// values of pseudonymized columns replaced by the caller's pseudonyms.
#[derive(Debug, Clone)]
pub(crate) struct RowEncoder {
    fields: Vec<FieldWriter>,
    pseudonyms: Option<PseudonymKey>,
}

impl RowEncoder {
    /// An encoder for `columns`, which are the first columns of each result
    /// row, delivering those marked in `pseudonymized` as pseudonyms under
    /// `pseudonyms` (which must be given if any is marked).
    pub(crate) fn new<'a>(
        columns: impl IntoIterator<Item = &'a ColumnDef>,
        pseudonymized: &[bool],
        pseudonyms: Option<PseudonymKey>,
    ) -> Self {
        let fields = columns
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let wire = match c.kind {
                    ColumnKind::String => WIRE_LEN,
                    ColumnKind::Integer | ColumnKind::Bool => WIRE_VARINT,
                    ColumnKind::Real if c.float32 => WIRE_FIXED32,
                    ColumnKind::Real => WIRE_FIXED64,
                };
                let mut tag = Vec::new();
                put_varint(&mut tag, u64::from(c.number << 3 | wire));
                let pseudonym = pseudonymized.get(i).copied().unwrap_or(false);
                FieldWriter { tag, kind: c.kind, zigzag: c.zigzag, float32: c.float32, pseudonym }
            })
            .collect();
        Self { fields, pseudonyms }
    }

    /// Appends the row message for `row` to `out` (proto3: default values
    /// are left out, as any encoder does).
    pub(crate) fn encode(&self, row: &impl CellRow, out: &mut Vec<u8>) -> Result<()> {
        let mut pseudonym = [0u8; PSEUDONYM_DIGITS];
        for (i, field) in self.fields.iter().enumerate() {
            let key = if field.pseudonym { Some(pseudonym_key(self.pseudonyms.as_ref())?) } else { None };
            match (field.kind, delivered(row.cell(i)?, key, &mut pseudonym)) {
                (ColumnKind::String, Cell::Text(text)) if !text.is_empty() => {
                    out.extend_from_slice(&field.tag);
                    put_varint(out, text.len() as u64);
                    out.extend_from_slice(text);
                }
                (ColumnKind::Integer | ColumnKind::Bool, Cell::Integer(n)) if n != 0 => {
                    out.extend_from_slice(&field.tag);
                    let wire = if field.zigzag { ((n << 1) ^ (n >> 63)) as u64 } else { n as u64 };
                    put_varint(out, wire);
                }
                (ColumnKind::Real, value) => {
                    let x = match value {
                        Cell::Real(x) => x,
                        Cell::Integer(n) => n as f64,
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

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_reflect::{DynamicMessage, Value};

    use super::*;
    use crate::values::test_schema::schema;

    #[test]
    fn varints_are_little_endian_groups_of_seven_bits() {
        let cases: [(u64, &[u8]); 5] = [
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (300, &[0xac, 0x02]),
            (u64::MAX, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        ];
        for (value, expected) in cases {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(buf, expected, "{value}");
        }
        let mut buf = Vec::new();
        put_len_field(&mut buf, 1, b"ab");
        assert_eq!(buf, [0x0a, 2, b'a', b'b']);
    }

    /// Encodes one row of (name, amount, score, flag, seq) with the test
    /// schema's encoder and decodes it with prost-reflect.
    fn round_trip(row: &[Cell<'_>]) -> DynamicMessage {
        let schema = schema();
        let mut out = Vec::new();
        RowEncoder::new(&schema.columns, &[], None).encode(&row, &mut out).unwrap();
        DynamicMessage::decode(schema.message.clone(), out.as_slice()).unwrap()
    }

    #[test]
    fn rows_decode_as_the_row_message() {
        let row = round_trip(&[
            Cell::Text("서울".as_bytes()),
            Cell::Integer(-42),
            Cell::Real(2.5),
            Cell::Integer(1),
            Cell::Text(b"0001"),
        ]);
        assert_eq!(row.get_field_by_name("name").unwrap().as_ref(), &Value::String("서울".into()));
        assert_eq!(row.get_field_by_name("amount").unwrap().as_ref(), &Value::I64(-42));
        assert_eq!(row.get_field_by_name("score").unwrap().as_ref(), &Value::F64(2.5));
        assert_eq!(row.get_field_by_name("flag").unwrap().as_ref(), &Value::Bool(true));
        assert_eq!(row.get_field_by_name("seq").unwrap().as_ref(), &Value::String("0001".into()));
    }

    #[test]
    fn a_pseudonymized_column_never_goes_out_raw() {
        let schema = schema();
        let row =
            [Cell::Text(b"a"), Cell::Integer(1), Cell::Real(2.5), Cell::Integer(0), Cell::Text(b"0001")];
        // Marked, but no key: an error, not the raw value.
        let mut out = Vec::new();
        let unkeyed = RowEncoder::new(&schema.columns, &[false, false, false, false, true], None);
        assert!(unkeyed.encode(&row.as_slice(), &mut out).is_err());
        // A kind with no pseudonym is delivered as nothing.
        let key = PseudonymKey::for_tests();
        let mut buf = [0u8; PSEUDONYM_DIGITS];
        assert_eq!(delivered(Cell::Real(2.5), Some(&key), &mut buf), Cell::Null);
        assert_eq!(delivered(Cell::Text(b""), Some(&key), &mut buf), Cell::Text(b""));
        assert_ne!(delivered(Cell::Text(b"0001"), Some(&key), &mut buf), Cell::Text(b"0001"));
        assert_eq!(delivered(Cell::Real(2.5), None, &mut buf), Cell::Real(2.5));
    }

    #[test]
    fn default_values_are_left_out_and_integers_in_real_columns_are_widened() {
        let row = round_trip(&[
            Cell::Text(b""),
            Cell::Integer(0),
            Cell::Real(0.0),
            Cell::Integer(0),
            Cell::Text(b""),
        ]);
        assert_eq!(row.encode_to_vec(), Vec::<u8>::new());
        let row = round_trip(&[
            Cell::Text(b"a"),
            Cell::Integer(1),
            Cell::Integer(3),
            Cell::Integer(0),
            Cell::Text(b"b"),
        ]);
        assert_eq!(row.get_field_by_name("score").unwrap().as_ref(), &Value::F64(3.0));
    }
}
