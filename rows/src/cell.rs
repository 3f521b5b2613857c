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
