//! One value of a row, whichever side read it: a scan reading storage, a
//! client reading a batch.

/// One value of a row, borrowed from the storage row or the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// No value (storage only: a row message always has one).
    Null,
    /// Any signed integer kind (and a bool stored as 0/1).
    Integer(i64),
    /// Any unsigned integer kind.
    Unsigned(u64),
    /// A `double`.
    Real(f64),
    /// A `float`, kept as written so it prints as written.
    Float(f32),
    /// A `bool`.
    Bool(bool),
    /// Text (proto `string`), as UTF-8 bytes.
    Text(&'a [u8]),
}

impl Cell<'_> {
    /// The cell as the bytes of one CSV field, given to `field`: numbers as
    /// digits, text as it is, NULL as nothing.
    pub fn with_text<T>(&self, field: impl FnOnce(&[u8]) -> T) -> T {
        let mut number = itoa::Buffer::new();
        match *self {
            Cell::Text(text) => field(text),
            Cell::Integer(n) => field(number.format(n).as_bytes()),
            Cell::Unsigned(n) => field(number.format(n).as_bytes()),
            Cell::Bool(b) => field(if b { b"true" } else { b"false" }),
            Cell::Real(x) => field(x.to_string().as_bytes()),
            Cell::Float(x) => field(x.to_string().as_bytes()),
            Cell::Null => field(b""),
        }
    }
}
