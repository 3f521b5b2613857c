//! The generic domain server: one process serving every product a domain
//! declares in product files, with everything a domain has (gRPC with
//! reflection and health, REST, Arrow Flight, agreements, pseudonyms, the
//! read log, limits, TLS, tokens, registration, SQLite or PostgreSQL,
//! replicas) and no code of the domain's own.
//!
//! - [`published`]: a declared product opened over the domain's store, its
//!   quality rules compiled (each [`condition`] checked first);
//! - [`load`]: loading a CSV or TSV source when its content changed;
//! - [`derived`]: building a derived product from SQL over its inputs,
//!   read with the domain's own identity under the agreements it asks for
//!   ([`agreements`]);
//! - [`refresh`]: loading again when the source changes, on a schedule or
//!   when an input loads; [`methods`]: loading again when an owner asks;
//! - [`serve`]: the whole server, as `mesh domain serve` and `mesh-domain`
//!   run it.

pub mod agreements;
pub mod args;
pub mod condition;
pub mod derived;
pub mod load;
pub mod methods;
pub mod published;
pub mod refresh;
pub mod serve;

pub use args::ServeArgs;
pub use serve::{Prepared, prepare, run, run_until_signal};
