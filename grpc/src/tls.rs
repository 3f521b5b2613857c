//! TLS for every mesh server and client, with rustls: a server's
//! certificate and key (and, for mutual TLS, the CA its clients'
//! certificates must chain to), offering HTTP/2 and HTTP/1.1 by ALPN so
//! gRPC, REST clients and browsers share the port; and what clients trust
//! (through tonic's rustls support). A server refuses to
//! serve plaintext on an address other than loopback unless told so with a
//! flag named to be noticed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::error::{GrpcError, Result};

/// How a server secures its connections.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// PEM certificate chain to serve TLS with (give --tls-key too).
    #[arg(long, env = "MESH_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "MESH_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates that chain to this PEM CA (mutual TLS).
    #[arg(long, env = "MESH_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Serve without TLS on an address other than loopback. Only for a
    /// server behind a proxy that terminates TLS: everything, tokens
    /// included, would otherwise cross the network in clear.
    #[arg(long, env = "MESH_INSECURE_PLAINTEXT")]
    pub insecure_plaintext: bool,
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| GrpcError::Tls(format!("cannot read the {what} {}: {e}", path.display())))
}

impl TlsArgs {
    /// The TLS acceptor the flags describe, if any: TLS 1.2 and 1.3,
    /// HTTP/2 and HTTP/1.1 offered by ALPN, client certificates required
    /// when --tls-client-ca names their CA.
    pub fn acceptor(&self) -> Result<Option<tokio_rustls::TlsAcceptor>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let bad = |what: &str, path: &Path, error: &dyn std::fmt::Display| {
            GrpcError::Tls(format!("the {what} {} is not usable: {error}", path.display()))
        };
        let certs = CertificateDer::pem_slice_iter(&read("TLS certificate", cert)?)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad("TLS certificate", cert, &e))?;
        let private_key =
            PrivateKeyDer::from_pem_slice(&read("TLS key", key)?).map_err(|e| bad("TLS key", key, &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| GrpcError::Tls(e.to_string()))?;
        let builder = match &self.tls_client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for root in CertificateDer::pem_slice_iter(&read("client CA", ca)?) {
                    roots
                        .add(root.map_err(|e| bad("client CA", ca, &e))?)
                        .map_err(|e| bad("client CA", ca, &e))?;
                }
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| bad("client CA", ca, &e))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config =
            builder.with_single_cert(certs, private_key).map_err(|e| bad("TLS certificate", cert, &e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    /// Refuses plaintext on `addr` unless it is loopback or the operator
    /// said so.
    pub fn check_plaintext(&self, addr: SocketAddr) -> Result<()> {
        if addr.ip().is_loopback() || self.insecure_plaintext {
            return Ok(());
        }
        Err(GrpcError::PlaintextRefused { addr })
    }
}

/// What clients trust and present: the CA their servers' certificates
/// chain to (none: the public web roots) and, for mutual TLS, their own
/// certificate and key.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "TLS")]
pub struct ClientTlsArgs {
    /// PEM CA that `https://` servers' certificates must chain to
    /// [default: the public web roots].
    #[arg(long, global = true, env = "MESH_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// PEM certificate to present to servers that require one (mutual TLS).
    #[arg(long, global = true, env = "MESH_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of --client-cert.
    #[arg(long, global = true, env = "MESH_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// What this process's clients trust; set once at start by the binaries.
static CLIENT_TLS: RwLock<Option<ClientTlsArgs>> = RwLock::new(None);

/// Makes every channel this process opens to an `https://` URL use `args`.
pub fn set_client_tls(args: ClientTlsArgs) {
    *CLIENT_TLS.write().unwrap_or_else(|p| p.into_inner()) = Some(args);
}

/// The PEM CA the process's clients trust, if one is set.
pub(crate) fn client_ca_pem() -> Result<Option<Vec<u8>>> {
    let args = CLIENT_TLS.read().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default();
    args.ca_file.as_deref().map(|ca| read("CA file", ca)).transpose()
}

/// The client certificate and key (PEM) the process's clients present, if set.
pub(crate) fn client_identity_pem() -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let args = CLIENT_TLS.read().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default();
    match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => Ok(Some((read("client certificate", cert)?, read("client key", key)?))),
        _ => Ok(None),
    }
}

/// The client TLS configuration for `host`: the configured CA (or the
/// public web roots) and client certificate.
pub(crate) fn client_config(host: &str) -> Result<ClientTlsConfig> {
    let args = CLIENT_TLS.read().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default();
    let mut config = ClientTlsConfig::new().domain_name(host);
    config = match &args.ca_file {
        Some(ca) => config.ca_certificate(Certificate::from_pem(read("CA file", ca)?)),
        None => config.with_webpki_roots(),
    };
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        config =
            config.identity(Identity::from_pem(read("client certificate", cert)?, read("client key", key)?));
    }
    Ok(config)
}
