//! Certificates for a mesh without a company PKI: a fresh CA signs one
//! certificate per service (for the names and addresses it is reached by),
//! and its key is then dropped, so nobody can sign more with it. Used by
//! `mesh init` (compose's init service) and by tests.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::error::{GrpcError, Result};

/// A service to make a certificate for.
#[derive(Debug, Clone)]
pub struct ServiceCert {
    /// The file name stem: `<name>.pem` and `<name>-key.pem`.
    pub name: String,
    /// DNS names and IP addresses the certificate is valid for.
    pub hosts: Vec<String>,
}

/// Where [`create`] put a service's files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, mode 0600).
    pub key: PathBuf,
}

fn failed(what: &str, error: impl std::fmt::Display) -> GrpcError {
    GrpcError::Tls(format!("cannot {what}: {error}"))
}

/// Makes a new CA in `dir` (`ca.pem`) and a certificate and key for each
/// service, replacing earlier ones; returns the services' files in order.
pub fn create(dir: &Path, services: &[ServiceCert]) -> Result<Vec<CertFiles>> {
    crate::private_files::create_private_dir(dir)
        .map_err(|e| failed(&format!("create {}", dir.display()), e))?;
    let ca_key = KeyPair::generate().map_err(|e| failed("make the CA key", e))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| failed("make the CA", e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.distinguished_name.push(DnType::CommonName, "woori mesh local CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| failed("sign the CA", e))?;
    let issuer = Issuer::new(ca_params, ca_key);
    write(&dir.join("ca.pem"), ca_cert.pem().as_bytes())?;
    let mut made = Vec::new();
    for service in services {
        let key = KeyPair::generate().map_err(|e| failed("make a key", e))?;
        let mut params = CertificateParams::new(service.hosts.clone())
            .map_err(|e| failed(&format!("name {}", service.name), e))?;
        params.distinguished_name.push(DnType::CommonName, service.name.clone());
        let cert = params.signed_by(&key, &issuer).map_err(|e| failed("sign a certificate", e))?;
        let files = CertFiles {
            cert: dir.join(format!("{}.pem", service.name)),
            key: dir.join(format!("{}-key.pem", service.name)),
        };
        write(&files.cert, cert.pem().as_bytes())?;
        write(&files.key, key.serialize_pem().as_bytes())?;
        made.push(files);
    }
    Ok(made)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::private_files::write_private(path, bytes)
        .map_err(|e| failed(&format!("write {}", path.display()), e))
}
