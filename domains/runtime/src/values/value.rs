//! A value bound into a statement or kept in a resume point: the runtime's
//! own, so that no database crate's type travels above the store.

/// One SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer (booleans are 0 and 1).
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes (a consumer's order key).
    Blob(Vec<u8>),
}
