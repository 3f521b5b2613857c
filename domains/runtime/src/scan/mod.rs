//! The fourth floor: one plan run through the store on a blocking thread,
//! its rows encoded into batches with resume tokens, and the admission
//! that bounds how many run and wait.

pub mod admission;
pub mod arrow;
pub(crate) mod encode;
pub mod stream;

pub use stream::ScanStream;
