//! Channels to mesh services, made one way for every client.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::error::{GrpcError, Result};

/// The endpoint at `url`, checked.
pub fn endpoint(url: &str) -> Result<Endpoint> {
    Endpoint::from_shared(url.to_owned())
        .map_err(|source| GrpcError::InvalidUrl { url: url.to_owned(), source })
        .map(|endpoint| endpoint.tcp_nodelay(true))
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
