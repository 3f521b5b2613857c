//! The first floor: a product's row type as a table, the cells of a row as
//! storage hands them up, and the runtime's own value type.

pub mod cell;
pub mod schema;
#[cfg(test)]
pub(crate) mod test_schema;
pub mod value;

pub use value::Value;
