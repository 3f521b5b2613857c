//! Connections to a domain under TLS: besides the host it is reached at,
//! the server's certificate must name the domain being called (a DNS name
//! equal to the domain, e.g. `payment`). A rogue endpoint registered for
//! another domain's product then gets no connection, and so no token, even
//! with a certificate from the mesh's own CA.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::error::{GrpcError, Result};

/// Checks a server's certificate as usual for the host, then that it names
/// `domain`.
#[derive(Debug)]
struct NamesDomain {
    usual: Arc<WebPkiServerVerifier>,
    domain: ServerName<'static>,
    name: String,
}

impl ServerCertVerifier for NamesDomain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verified =
            self.usual.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        let names_domain = webpki::EndEntityCert::try_from(end_entity)
            .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&self.domain).is_ok());
        if !names_domain {
            return Err(rustls::Error::General(format!(
                "the server's certificate does not name domain `{}`, so it is not that domain's endpoint; \
                 a domain's certificate must list its name (`{}`) among its DNS names",
                self.name, self.name
            )));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.usual.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.usual.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.usual.supported_verify_schemes()
    }
}

/// Opens TLS connections (HTTP/2 by ALPN) to servers whose certificates
/// name one domain; a connector for tonic's channels.
#[derive(Clone)]
pub(crate) struct DomainConnector {
    config: Arc<rustls::ClientConfig>,
    host: ServerName<'static>,
}

impl DomainConnector {
    /// A connector to `host` (the URL's host) for domain `domain`, trusting
    /// what the process's clients trust.
    pub(crate) fn new(host: &str, domain: &str) -> Result<Self> {
        let bad = |what: &str| GrpcError::Tls(format!("{what} is not a host name TLS can check"));
        let host = ServerName::try_from(host.to_owned()).map_err(|_| bad(&format!("`{host}`")))?;
        let domain_name =
            ServerName::try_from(domain.to_owned()).map_err(|_| bad(&format!("the domain `{domain}`")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        match crate::tls::client_ca_pem()? {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| GrpcError::Tls(format!("the CA file is not usable: {e}")))?;
                    roots.add(cert).map_err(|e| GrpcError::Tls(format!("the CA file is not usable: {e}")))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let usual = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| GrpcError::Tls(format!("cannot check servers' certificates: {e}")))?;
        let verifier = NamesDomain { usual, domain: domain_name, name: domain.to_owned() };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| GrpcError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        let mut config = match crate::tls::client_identity_pem()? {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(&cert)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| GrpcError::Tls(format!("the client certificate is not usable: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(&key)
                    .map_err(|e| GrpcError::Tls(format!("the client key is not usable: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| GrpcError::Tls(format!("the client certificate is not usable: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self { config: Arc::new(config), host })
    }
}

impl tower::Service<http::Uri> for DomainConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
        let host = self.host.clone();
        let address = format!("{}:{}", uri.host().unwrap_or_default(), uri.port_u16().unwrap_or(443));
        Box::pin(async move {
            let tcp = TcpStream::connect(address).await?;
            tcp.set_nodelay(true)?;
            Ok(TokioIo::new(connector.connect(host, tcp).await?))
        })
    }
}
