//! The Woori Card customer-spending file (`EDU_DATA_F`): its 55-column
//! layout, the category hierarchy behind its invariants, a deterministic
//! generator of synthetic files, and the invariants as data.
//!
//! Data only: no runtime, no async, no command line. The `runtime` feature
//! adds what the source domains need to serve it (the generator as a record
//! source and as flags, the invariants as quality rules).

pub mod generator;
pub mod layout;
pub mod rules;
#[cfg(feature = "runtime")]
pub mod runtime;

pub use generator::Generator;
