//! The shared runtime of the mesh's domains: serving data products from a
//! domain's own SQLite database over gRPC (filter, projection, order, limit,
//! streaming with resume tokens), loading and checking data, and keeping the
//! products registered in the catalog.

pub mod admission;
pub mod audit;
mod audit_service;
mod cell;
pub mod config;
mod encode;
pub mod error;
mod filter;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod governance;
pub mod grant;
pub mod hosting;
pub mod ingest;
pub mod output;
mod plan;
pub mod product;
pub mod pseudonym;
pub mod quality;
mod registration;
mod registries;
pub mod rest;
mod resume;
pub mod scan;
pub mod schema;
pub mod service;
#[cfg(test)]
mod sorted_scan_tests;
pub mod source;
pub mod store;
#[cfg(test)]
mod test_schema;

pub use admission::Admission;
pub use config::{DomainArgs, ServeLimits};
pub use error::{DomainError, Result};
pub use governance::Governance;
pub use grant::Grant;
pub use product::{Product, ProductSpec};
pub use pseudonym::PseudonymKey;
pub use service::ProductService;
pub use source::{SourceArgs, SourceDomain};
pub use store::DomainStore;
