//! The catalog registry of the data mesh: records who owns each data product,
//! what it is for, its schema versions and where it is served.
//!
//! The library holds the whole service; the `catalog-registry` binary and
//! `mesh up` both host it through [`serve`].

pub mod access;
pub mod clock;
pub mod config;
pub mod contract;
pub mod error;
pub mod events;
pub mod exchange;
pub mod meters;
pub mod page_token;
pub mod quota;
pub mod rest;
pub mod server;
pub mod service;
pub mod service_tokens;
pub mod store;
pub mod validate;
pub mod web;
pub mod webhooks;

pub use clock::Clock;
pub use config::RegistryConfig;
pub use server::{serve, serve_with_clock};
