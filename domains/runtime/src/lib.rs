//! The shared runtime of the mesh's domains: serving data products from a
//! domain's own database (SQLite or PostgreSQL) over gRPC and REST (filter,
//! projection, order, limit, streaming with resume tokens) under each
//! consumer's agreement, loading and checking data, and keeping the
//! products registered in the catalog.
//!
//! It is built in floors, each a folder, and a floor imports only from the
//! floors below it (`scripts/floors.sh` checks this):
//!
//! 1. [`values`]: a product's row type as a table ([`schema`]), the cells
//!    of a row read from storage, and the runtime's own [`values::Value`].
//! 2. [`query`]: what a request compiles to — the filter syntax tree
//!    written per [`query::dialect::Dialect`], the plan of one statement,
//!    resume tokens, the caller's grant and pseudonyms.
//! 3. [`store`]: the [`store::Storage`] trait both backends implement
//!    (`store/sqlite`, `store/postgres`), with everything a load or a scan
//!    hands it; no type of a database crate is seen above it.
//! 4. [`scan`]: running one plan on a blocking thread into encoded
//!    batches, and admission (scan slots, queue, streams per connection).
//! 5. [`ingest`]: parsing records into rows, loading them, quality rules.
//! 6. [`serve`]: the product, gRPC and REST services, registration,
//!    governance (agreements), the read log and the process around them.
//!
//! [`error`] and [`heap`] (how the C allocator keeps freed memory) are
//! below every floor.

pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod heap;
pub mod ingest;
pub mod query;
pub mod scan;
pub mod serve;
pub mod store;
pub mod values;

pub use error::{DomainError, Result};
pub use ingest::quality;
pub use query::grant::{self, Grant};
pub use query::pseudonym::{self, PseudonymKey};
pub use scan::admission::{self, Admission};
pub use serve::config::{self, DomainArgs, ServeLimits};
pub use serve::governance::{self, Governance};
pub use serve::product::{self, Product, ProductSpec};
pub use serve::service::{self, ProductService};
pub use serve::source;
pub use serve::{audit, hosting, output, rest};
pub use store::DomainStore;
pub use values::schema;
