//! TLS to the database with rustls: required for a server off this
//! machine unless the operator says otherwise with a loud flag.

use std::net::IpAddr;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::args::DatabaseArgs;
use crate::error::{DbError, Result};

/// The TLS connector for `config`, after checking that a remote server is
/// reached with TLS required (`sslmode=require`).
pub(crate) fn connector(config: &tokio_postgres::Config, args: &DatabaseArgs) -> Result<MakeRustlsConnect> {
    let remote = config.get_hosts().iter().any(|host| match host {
        Host::Tcp(name) => !is_loopback(name),
        Host::Unix(_) => false,
    });
    if remote && config.get_ssl_mode() != SslMode::Require && !args.database_insecure_plaintext {
        return Err(DbError::Config(format!(
            "the database {} is not on this machine, so its connections must use TLS: add sslmode=require to \
             --database-url (with --database-ca for a private CA), or pass --database-insecure-plaintext if \
             the network is encrypted by other means",
            crate::args::describe(config)
        )));
    }
    let mut roots = rustls::RootCertStore::empty();
    match &args.database_ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| DbError::Config(format!("cannot read --database-ca {}: {e}", path.display())))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    DbError::Config(format!("--database-ca {} is not PEM: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    DbError::Config(format!(
                        "--database-ca {} holds an unusable certificate: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(tls))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> Option<String> {
        let config: tokio_postgres::Config = url.parse().unwrap();
        connector(&config, &DatabaseArgs::default()).err().map(|e| e.to_string())
    }

    #[test]
    fn a_remote_server_needs_tls_and_loopback_does_not() {
        assert_eq!(refused("postgres://mesh:pw@127.0.0.1:5432/mesh"), None);
        assert_eq!(refused("postgres://mesh:pw@localhost/mesh"), None);
        assert_eq!(refused("postgres://mesh:pw@db.internal/mesh?sslmode=require"), None);
        // The password is not in the message.
        assert_eq!(
            refused("postgres://mesh:secret@db.internal/mesh").unwrap(),
            "database configuration: the database db.internal:5432/mesh is not on this machine, so its \
             connections must use TLS: add sslmode=require to --database-url (with --database-ca for a private \
             CA), or pass --database-insecure-plaintext if the network is encrypted by other means"
        );
        let config: tokio_postgres::Config = "postgres://mesh:pw@db.internal/mesh".parse().unwrap();
        let args = DatabaseArgs { database_insecure_plaintext: true, ..DatabaseArgs::default() };
        assert!(connector(&config, &args).is_ok());
    }
}
