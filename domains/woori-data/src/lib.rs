//! The Woori Card customer-spending file (`EDU_DATA_F`): its 55-column
//! layout, the category hierarchy behind its invariants, a deterministic
//! generator of synthetic files, and the invariants as data.
//!
//! [`shipped`] writes the demo mesh's product files with their contracts
//! and generated data.
//!
//! Data only: no runtime, no async.

pub mod generator;
pub mod layout;
pub mod rules;
pub mod shipped;

pub use generator::Generator;
