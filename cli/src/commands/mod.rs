//! One file per subcommand.

pub mod completions;
pub mod describe;
pub mod domains;
pub mod generate;
pub mod health;
pub mod products;
pub mod query;
pub mod up;
