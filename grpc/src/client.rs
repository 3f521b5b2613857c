//! Channels to mesh services, made one way for every client.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::error::{GrpcError, Result};

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

/// A lazily connected channel to `url`: `timeout` bounds connecting and
/// each call.
pub fn channel(url: &str, timeout: Duration) -> Result<Channel> {
    Ok(endpoint(url)?.connect_timeout(timeout).timeout(timeout).connect_lazy())
}

/// A lazily connected channel for streaming rows: `timeout` bounds
/// connecting only, since an export of millions of rows may rightly take
/// minutes.
pub fn stream_channel(url: &str, timeout: Duration) -> Result<Channel> {
    Ok(endpoint(url)?.connect_timeout(timeout).connect_lazy())
}
