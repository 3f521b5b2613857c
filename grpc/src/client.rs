//! Channels to mesh services, made one way for every client: TLS for
//! `https://` URLs, and the caller's bearer token on every call, never sent
//! in plaintext to anything but loopback.

use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};

use crate::auth::credentials::{Credentials, is_loopback_host};
use crate::error::{GrpcError, Result};
use crate::unary::BoxFuture;

/// The endpoint at `url`, checked; an `https://` URL gets TLS with what
/// the process trusts ([`crate::set_client_tls`]).
pub fn endpoint(url: &str) -> Result<Endpoint> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|source| GrpcError::InvalidUrl { url: url.to_owned(), source })?
        .tcp_nodelay(true);
    let uri = endpoint.uri();
    if uri.scheme_str() != Some("https") {
        return Ok(endpoint);
    }
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
    endpoint
        .tls_config(crate::tls::client_config(&host)?)
        .map_err(|e| GrpcError::Tls(format!("cannot use TLS for {url}: {e}")))
}

/// A channel that puts the caller's token on every call.
#[derive(Debug, Clone)]
pub struct MeshChannel {
    channel: Channel,
    credentials: Credentials,
}

impl MeshChannel {
    /// `channel` carrying `credentials`, refused if they would cross the
    /// network in plaintext: a token goes over `http://` to loopback only.
    pub fn new(url: &str, channel: Channel, credentials: Credentials) -> Result<Self> {
        let uri: http::Uri = url.parse().map_err(|_| GrpcError::Auth(format!("`{url}` is not a URL")))?;
        if credentials.is_some()
            && uri.scheme_str() != Some("https")
            && !is_loopback_host(uri.host().unwrap_or_default())
        {
            return Err(GrpcError::PlaintextToken { url: url.to_owned() });
        }
        Ok(Self { channel, credentials })
    }
}

impl tower::Service<http::Request<Body>> for MeshChannel {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.channel, cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        crate::telemetry::inject(request.headers_mut());
        match self.credentials.header() {
            Ok(Some(value)) => {
                request.headers_mut().insert(http::header::AUTHORIZATION, value);
            }
            Ok(None) => {}
            Err(error) => {
                let response = tonic::Status::unauthenticated(error.to_string()).into_http();
                return Box::pin(async move { Ok(response) });
            }
        }
        Box::pin(tower::Service::call(&mut self.channel, request))
    }
}

/// A lazily connected channel to `url` carrying `credentials`: `timeout`
/// bounds connecting and each call.
pub fn channel(url: &str, timeout: Duration, credentials: &Credentials) -> Result<MeshChannel> {
    let channel = connect_lazy(url, credentials, |e| e.connect_timeout(timeout).timeout(timeout))?;
    MeshChannel::new(url, channel, credentials.clone())
}

/// A lazily connected channel for streaming rows: `timeout` bounds
/// connecting only, since an export of millions of rows may rightly take
/// minutes.
pub fn stream_channel(url: &str, timeout: Duration, credentials: &Credentials) -> Result<MeshChannel> {
    let channel = connect_lazy(url, credentials, |e| e.connect_timeout(timeout))?;
    MeshChannel::new(url, channel, credentials.clone())
}

/// The channel to `url`, set up by `configure`: when `credentials` are one
/// domain's and the URL is `https://`, the server's certificate must name
/// that domain as well as the host.
fn connect_lazy(
    url: &str,
    credentials: &Credentials,
    configure: impl FnOnce(Endpoint) -> Endpoint,
) -> Result<Channel> {
    let invalid = |source| GrpcError::InvalidUrl { url: url.to_owned(), source };
    let uri: http::Uri = url.parse().map_err(|_| GrpcError::Auth(format!("`{url}` is not a URL")))?;
    let Some(domain) = credentials.domain().filter(|_| uri.scheme_str() == Some("https")) else {
        return Ok(configure(endpoint(url)?).connect_lazy());
    };
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
    let connector = crate::tls_domain::DomainConnector::new(&host, &domain)?;
    // The connector makes the TLS connection itself; tonic sees a plain one
    // and writes the `https` origin on each request.
    let plain = url.replacen("https://", "http://", 1);
    let endpoint = Endpoint::from_shared(plain).map_err(invalid)?.origin(uri).tcp_nodelay(true);
    Ok(configure(endpoint).connect_with_connector_lazy(connector))
}
