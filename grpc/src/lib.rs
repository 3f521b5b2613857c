//! What every mesh service and client does the same way: logging and
//! signals, the one server builder (HTTP/2 windows, keepalive, health and
//! reflection, route overrides), the pass-through codec and raw unary
//! routes, client channels, reflection listing, TLS and sealed tokens; and
//! in [`auth`], everything about identity (verifying, issuing, sending and
//! exchanging bearer tokens).
//!
//! The registry, the domains and the CLI all build their servers and
//! clients through this crate; none of them depends on another for plumbing.

pub mod auth;
pub mod bad_request;
pub mod certs;
pub mod client;
pub mod codec;
mod error;
pub mod metrics;
pub mod private_files;
pub mod reflection;
pub mod rest;
pub mod sealed_tokens;
pub mod server;
pub mod signal;
pub mod telemetry;
pub mod tls;
mod tls_domain;
mod tls_incoming;
pub mod unary;

pub use auth::args::AuthArgs;
pub use auth::credentials::Credentials;
pub use client::MeshChannel;
pub use error::{GrpcError, Result, internal_status};
pub use sealed_tokens::{SealedTokens, TokenError};
pub use server::MeshServer;
pub use signal::{init_logging, init_logging_at, shutdown_signal};
pub use tls::{ClientTlsArgs, TlsArgs, set_client_tls};
