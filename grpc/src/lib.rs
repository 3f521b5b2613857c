//! What every mesh service and client does the same way: logging and
//! signals, the one server builder (HTTP/2 windows, keepalive, health and
//! reflection, route overrides), the pass-through codec and raw unary
//! routes, client channels, reflection listing and signed tokens.
//!
//! The registry, the domains and the CLI all build their servers and
//! clients through this crate; none of them depends on another for plumbing.

pub mod auth;
mod auth_args;
pub mod authenticate;
pub mod certs;
pub mod client;
pub mod codec;
pub mod credentials;
mod error;
pub mod exchange;
pub mod issuer;
mod jwt_crypto;
mod keys;
pub mod oidc;
pub mod private_files;
pub mod reflection;
pub mod rest;
pub mod server;
pub mod signal;
#[cfg(feature = "test-support")]
pub mod test_tokens;
pub mod tls;
mod tls_domain;
mod tls_incoming;
pub mod token;
pub mod unary;
mod verified;

pub use auth_args::AuthArgs;
pub use client::MeshChannel;
pub use credentials::Credentials;
pub use error::{GrpcError, Result, internal_status};
pub use server::MeshServer;
pub use signal::{init_logging, init_logging_at, shutdown_signal};
pub use tls::{ClientTlsArgs, TlsArgs, set_client_tls};
pub use token::{SealedTokens, TokenError};
