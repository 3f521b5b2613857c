//! The whole mesh in one process: the catalog registry and the customer,
//! payment and insight domains over one data directory, each on its own
//! port with its own SQLite file (the ownership boundaries stay real).
//!
//! `mesh up`, the CLI's end-to-end tests, the benchmark and the insight
//! domain's tests all start the mesh here. [`LocalMesh::start`] returns once
//! every product is serving with data, as the registry reports it.

mod config;
mod error;
mod mesh;
mod services;

pub use catalog_registry::web::LINK_TTL as SIGN_IN_LINK_TTL;
pub use catalog_registry::webhooks::WebhookArgs;
pub use config::{MeshConfig, Ports};
pub use error::{LocalError, Result};
pub use mesh::{ADMIN_TOKEN_TTL, LocalMesh};
pub use mesh_runtime::ServeLimits;
