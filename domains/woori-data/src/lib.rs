//! The Woori Card customer-spending file (`EDU_DATA_F`): its 55-column
//! layout, the category hierarchy behind its invariants, a deterministic
//! generator of synthetic files, and the data-quality rules derived from it.

pub mod generator;
pub mod layout;
pub mod rules;
pub mod source_domain;

pub use generator::Generator;
