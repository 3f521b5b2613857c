//! Webhooks: subscriptions to a product's events ([`service`]), where they
//! may point ([`target`]), how deliveries are signed ([`signature`]) and
//! made ([`deliver`]), and the one task per registry that runs them
//! ([`dispatcher`]). The outbox is the event log itself: each subscription
//! remembers the last event it delivered.

pub mod deliver;
pub mod dispatcher;
pub mod service;
pub mod signature;
pub mod target;

pub use dispatcher::Webhooks;
pub use service::Subscriptions;

use std::time::Duration;

/// How long a subscription delivers unless its creator renews it (ms).
pub const LIFETIME_MS: i64 = 90 * 24 * 3600 * 1000;

/// How webhooks are delivered.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct WebhookArgs {
    /// How long a webhook receiver may take to answer a delivery.
    #[arg(long, env = "MESH_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,

    /// How long deliveries to a subscription may keep failing before it is
    /// disabled (its state says so).
    #[arg(long, env = "MESH_WEBHOOK_DISABLE_AFTER", default_value = "1d", value_parser = humantime::parse_duration)]
    pub webhook_disable_after: Duration,

    /// The most webhook deliveries in flight at once.
    #[arg(long, env = "MESH_WEBHOOK_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub webhook_concurrency: u16,

    /// INSECURE: lets webhooks go to loopback, link-local and private
    /// addresses and over plain http, so that a subscription can make the
    /// registry call into its own network. For tests and local meshes only.
    #[arg(long, env = "MESH_INSECURE_WEBHOOK_TARGETS")]
    pub insecure_webhook_targets: bool,
}

impl Default for WebhookArgs {
    fn default() -> Self {
        Self {
            webhook_timeout: Duration::from_secs(10),
            webhook_disable_after: Duration::from_secs(24 * 3600),
            webhook_concurrency: 32,
            insecure_webhook_targets: false,
        }
    }
}
