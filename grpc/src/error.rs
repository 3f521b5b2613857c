//! The errors of serving and calling.

/// What setting up a server or a client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// A URL given for a service is not one.
    #[error("`{url}` is not a URL; expected e.g. http://127.0.0.1:50050")]
    InvalidUrl {
        /// The text that was given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: tonic::transport::Error,
    },
    /// The reflection service could not be built from the descriptor set.
    #[error("reflection cannot be served: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// The trusted keys for tokens cannot be read.
    #[error("authentication: {0}")]
    Auth(String),
    /// No trusted issuer and no --insecure-no-auth.
    #[error(
        "authentication is not configured: give --auth-jwks FILE (MESH_AUTH_JWKS) or --auth-oidc-issuer URL \
         (MESH_AUTH_OIDC_ISSUER); --insecure-no-auth runs without it, for a throwaway service only"
    )]
    AuthNotConfigured,
    /// A setting given on the command line cannot be used.
    #[error("{0}")]
    Config(String),
    /// A TLS file cannot be read or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// Plaintext on an address other than loopback, without the flag.
    #[error(
        "refusing to serve plaintext on {addr}, which is not a loopback address: give --tls-cert and \
         --tls-key (MESH_TLS_CERT, MESH_TLS_KEY), or --insecure-plaintext if a proxy in front terminates TLS"
    )]
    PlaintextRefused {
        /// The address asked for.
        addr: std::net::SocketAddr,
    },
    /// A bearer token would cross the network in plaintext.
    #[error(
        "refusing to send a token in plaintext to {url}: use an https:// URL (with --ca-file if the \
         service's certificate is from a private CA); plaintext is allowed to loopback only"
    )]
    PlaintextToken {
        /// The URL asked for.
        url: String,
    },
    /// The listener failed.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
    /// The server stopped with an error.
    #[error("serving failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// A call to the server failed.
    #[error("{}", .0.message())]
    Call(#[from] tonic::Status),
    /// A reflection answer was not a service list.
    #[error("unexpected reflection answer: {0}")]
    UnexpectedAnswer(String),
}

/// Result of serving or calling.
pub type Result<T, E = GrpcError> = std::result::Result<T, E>;

/// The status for a failure inside the service (storage, I/O, a task):
/// the details go to the service's log under a short incident code, and
/// the client gets only the kind of failure and that code, never raw
/// database or file-system text.
pub fn internal_status(kind: &str, error: &dyn std::fmt::Display) -> tonic::Status {
    let incident = format!("{:08x}", rand::random::<u32>());
    tracing::error!(%incident, %error, "{kind} failed");
    tonic::Status::internal(format!(
        "internal {kind} error (incident {incident}); the service's log has the details"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_internal_status_hides_the_error_behind_an_incident_code() {
        let status = super::internal_status("storage", &"disk I/O error at /secret/path");
        assert_eq!(status.code(), tonic::Code::Internal);
        let message = status.message();
        assert!(message.starts_with("internal storage error (incident "), "{message}");
        assert!(!message.contains("/secret/path"), "{message}");
    }
}
