//! The row format of the mesh, shared by the domains and the `mesh` CLI so
//! that a REST text export and `mesh query` write the same bytes by
//! construction:
//!
//! - [`Cell`]: one value of a row, borrowed from where it was read;
//! - [`RowReader`]: the rows of a `QueryResponse` batch read straight from
//!   the protobuf wire format (no message per row), its resume token in the
//!   same pass;
//! - [`RowWriter`]: rows written as CSV (quoted by the `csv` crate), JSON,
//!   NDJSON or one JSON page;
//! - [`wire`]: the varints and length-delimited fields both sides write.

mod cell;
mod reader;
pub mod wire;
mod writer;

pub use cell::Cell;
pub use reader::{Batch, RowReader};
pub use writer::{RowWriter, TextFormat};

/// A batch or row that does not read as its contract says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError(pub String);

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RowError {}
