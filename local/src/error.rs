//! What starting the in-process mesh can fail with.

/// Why the mesh did not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A port is taken.
    #[error("{0}; is another mesh running? (--base-port picks other ports)")]
    Bind(#[source] mesh_grpc::GrpcError),
    /// A domain failed to load or serve.
    #[error("the {domain} domain failed: {source}")]
    Domain {
        /// The domain's name.
        domain: &'static str,
        /// What failed.
        #[source]
        source: mesh_runtime::DomainError,
    },
    /// The registry failed.
    #[error("the registry failed: {0}")]
    Registry(#[from] catalog_registry::error::RegistryError),
    /// A client of the registry could not be made.
    #[error("{0}")]
    Grpc(#[from] mesh_grpc::GrpcError),
    /// A file of the mesh's data directory could not be made.
    #[error("cannot write {path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The products did not all serve in time.
    #[error("the mesh did not become ready within {seconds} s: {waiting}")]
    NotReady {
        /// How long was waited.
        seconds: u64,
        /// What was still missing.
        waiting: String,
    },
    /// A service's task panicked.
    #[error("a service panicked: {0}")]
    Panicked(#[from] tokio::task::JoinError),
}

/// Result of starting or stopping the mesh.
pub type Result<T, E = LocalError> = std::result::Result<T, E>;
