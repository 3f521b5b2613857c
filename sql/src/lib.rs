//! SQL over data products.
//!
//! - [`flight`]: reading one product's query over its domain's Arrow
//!   Flight service, going on at another of its [`replicas`] from the last
//!   batch when one fails (used by `mesh query --format arrow|parquet`);
//! - `engine` (feature `engine`): DataFusion planning SQL over every
//!   product a caller can see, each scan a Flight read with the caller's
//!   own token and the filters, columns and limit pushed into the owner's
//!   governed read (`mesh sql`), and [`server`] serving it over Flight SQL
//!   (`mesh sql serve`).

pub mod flight;
pub mod replicas;

#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "engine")]
pub mod server;

pub use replicas::Replicas;
