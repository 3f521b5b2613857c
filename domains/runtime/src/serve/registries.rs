//! The registries a domain calls: one URL, or several replicas of one
//! catalog used in turn while one cannot be reached.

use std::time::Duration;

use mesh_grpc::{Credentials, MeshChannel};
use tonic::{Code, Status};

/// A client of the first registry that answers.
pub(crate) struct RegistryClient<C> {
    urls: Vec<String>,
    at: usize,
    credentials: Credentials,
    timeouts: Timeouts,
    new: fn(MeshChannel) -> C,
    /// The client of the registry in use.
    pub client: C,
}

/// How long connecting, and then each call, may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// Connecting.
    pub connect: Duration,
    /// Each call.
    pub call: Duration,
}

/// A lazily connected channel to the registry at `url`.
fn channel(url: &str, credentials: &Credentials, timeouts: Timeouts) -> mesh_grpc::Result<MeshChannel> {
    let target = mesh_grpc::client::endpoint(url)?;
    let channel = target.connect_timeout(timeouts.connect).timeout(timeouts.call).connect_lazy();
    MeshChannel::new(url, channel, credentials.clone())
}

impl<C> RegistryClient<C> {
    /// A client (made by `new`) of the first of `urls`, calling with
    /// `credentials` within `timeouts`.
    pub(crate) fn new(
        urls: Vec<String>,
        credentials: Credentials,
        timeouts: Timeouts,
        new: fn(MeshChannel) -> C,
    ) -> mesh_grpc::Result<Self> {
        let client = new(channel(&urls[0], &credentials, timeouts)?);
        Ok(Self { urls, at: 0, credentials, timeouts, new, client })
    }

    /// The URL of the registry in use.
    pub(crate) fn url(&self) -> &str {
        &self.urls[self.at]
    }

    /// Moves on to the next registry when `status` says this one cannot be
    /// reached and there is another.
    pub(crate) fn fail_over(&mut self, status: &Status) -> bool {
        if status.code() != Code::Unavailable || self.urls.len() < 2 {
            return false;
        }
        let at = (self.at + 1) % self.urls.len();
        match channel(&self.urls[at], &self.credentials, self.timeouts) {
            Ok(channel) => {
                self.client = (self.new)(channel);
                self.at = at;
                tracing::warn!(registry = %self.url(), "trying the next registry");
                true
            }
            Err(error) => {
                tracing::error!(registry = %self.urls[at], %error, "cannot call the registry");
                false
            }
        }
    }
}
