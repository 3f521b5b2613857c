//! One file per subcommand.

pub(crate) mod access;
pub(crate) mod audit;
pub(crate) mod completions;
pub(crate) mod describe;
#[cfg(feature = "local")]
pub(crate) mod domain;
pub(crate) mod domains;
#[cfg(feature = "local")]
pub(crate) mod generate;
pub(crate) mod health;
pub(crate) mod init;
pub(crate) mod lineage;
pub(crate) mod login;
pub(crate) mod product;
pub(crate) mod product_init;
pub(crate) mod products;
pub(crate) mod query;
pub(crate) mod query_arrow;
#[cfg(feature = "sql")]
pub(crate) mod sql;
pub(crate) mod subscriptions;
pub(crate) mod token;
#[cfg(feature = "local")]
pub(crate) mod up;
pub(crate) mod watch;
pub(crate) mod whoami;
