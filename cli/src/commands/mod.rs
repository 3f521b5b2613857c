//! One file per subcommand.

pub mod completions;
pub mod describe;
pub mod domains;
#[cfg(feature = "local")]
pub mod generate;
pub mod health;
pub mod products;
pub mod query;
#[cfg(feature = "local")]
pub mod up;
