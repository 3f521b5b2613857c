//! The protobuf wire format, as far as the row format needs it: varints,
//! tags and fields read and written without a message object.

use crate::RowError;

/// Appends `value` as a protobuf varint.
#[inline]
pub fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Appends a length-delimited field (`number`, wire type 2) holding `bytes`.
#[inline]
pub fn put_len_field(buf: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_len_prefix(buf, number, bytes.len());
    buf.extend_from_slice(bytes);
}

/// Appends the key and length of a length-delimited field (`number`,
/// wire type 2) of `len` bytes, which the caller sends after it.
pub fn put_len_prefix(buf: &mut Vec<u8>, number: u32, len: usize) {
    put_varint(buf, (u64::from(number) << 3) | 2);
    put_varint(buf, len as u64);
}

/// A field's value as the wire carries it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Len(&'a [u8]),
    Fixed32([u8; 4]),
}

/// Reads the next field of `input`: its number and value.
#[inline]
pub(crate) fn field<'a>(input: &mut &'a [u8]) -> Result<(u32, Value<'a>), RowError> {
    let key = varint(input)?;
    let number = (key >> 3) as u32;
    let value = match key & 7 {
        0 => Value::Varint(varint(input)?),
        1 => Value::Fixed64(fixed(input)?),
        2 => {
            let len = varint(input)?;
            if len > input.len() as u64 {
                return Err(RowError("a batch ends inside a field".into()));
            }
            let (value, rest) = input.split_at(len as usize);
            *input = rest;
            Value::Len(value)
        }
        5 => Value::Fixed32(fixed(input)?),
        other => return Err(RowError(format!("unsupported wire type {other} in a batch"))),
    };
    Ok((number, value))
}

#[inline]
fn varint(input: &mut &[u8]) -> Result<u64, RowError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&byte, rest)) = input.split_first() else {
            return Err(RowError("a batch ends inside a number".into()));
        };
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(RowError("a number in a batch is longer than 10 bytes".into()))
}

#[inline]
fn fixed<const N: usize>(input: &mut &[u8]) -> Result<[u8; N], RowError> {
    let Some((value, rest)) = input.split_first_chunk::<N>() else {
        return Err(RowError("a batch ends inside a fixed-size number".into()));
    };
    *input = rest;
    Ok(*value)
}
