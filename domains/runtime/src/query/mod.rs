//! The second floor: what a request compiles to. The filter's syntax tree
//! (from `mesh-filter`) written in a [`dialect::Dialect`], the plan of one
//! statement under the caller's [`grant::Grant`], pseudonyms, resume
//! tokens and the [`part::Part`]s a whole-product read is split into.

pub mod dialect;
pub(crate) mod filter;
pub mod grant;
pub mod part;
pub mod plan;
pub mod pseudonym;
pub(crate) mod resume;
