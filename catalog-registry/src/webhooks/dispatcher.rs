//! The one task that runs webhook deliveries: it holds the right to
//! deliver (one registry replica at a time, renewed every few seconds and
//! taken over when its holder stops renewing), starts a delivery task per
//! active subscription and stops those deleted or disabled. Creating or
//! deleting a subscription on this replica wakes it at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::WebhookArgs;
use super::deliver::Deliverer;
use super::target::PublicResolver;
use crate::error::{RegistryError, Result};
use crate::events::Events;
use crate::store::Store;
use crate::store::subscriptions;

/// How often the dispatcher renews its right and looks for new, deleted
/// and disabled subscriptions.
const RECHECK: Duration = Duration::from_secs(5);
/// How long the right to deliver lasts unless renewed.
const LEASE: Duration = Duration::from_secs(20);
/// How long a delivery may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle on the dispatcher.
#[derive(Debug, Clone)]
pub struct Webhooks {
    changed: Arc<Notify>,
    allow_private: bool,
}

impl Webhooks {
    /// Starts delivering `store`'s subscriptions as `args` say, until
    /// `stopping` turns true.
    pub fn start(
        store: Store,
        events: Events,
        args: &WebhookArgs,
        stopping: watch::Receiver<bool>,
    ) -> Result<Self> {
        let allow_private = args.insecure_webhook_targets;
        if allow_private {
            tracing::warn!(
                "WEBHOOKS MAY CALL PRIVATE ADDRESSES (--insecure-webhook-targets): loopback, link-local and private \
                 hosts and plain http are accepted as webhook targets"
            );
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .dns_resolver(Arc::new(PublicResolver { allow_private }))
            .user_agent(concat!("mesh-catalog-registry/", env!("CARGO_PKG_VERSION"), " (webhooks)"))
            .build()
            .map_err(|e| RegistryError::Config(format!("cannot build the webhook client: {e}")))?;
        let deliverer = Arc::new(Deliverer {
            store,
            events,
            client,
            in_flight: Semaphore::new(usize::from(args.webhook_concurrency)),
            started: Instant::now(),
            per_owner: Default::default(),
            timeout: args.webhook_timeout,
            give_up_after: args.webhook_disable_after,
            allow_private,
        });
        let changed = Arc::new(Notify::new());
        tokio::spawn(dispatch(deliverer, Arc::clone(&changed), stopping));
        Ok(Self { changed, allow_private })
    }

    /// Whether private targets and plain HTTP are allowed.
    pub fn allow_private(&self) -> bool {
        self.allow_private
    }

    /// Tells the dispatcher that subscriptions changed.
    pub fn changed(&self) {
        self.changed.notify_one();
    }
}

async fn dispatch(deliverer: Arc<Deliverer>, changed: Arc<Notify>, mut stopping: watch::Receiver<bool>) {
    let holder = format!("{:032x}", rand::random::<u128>());
    let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
    // Until when this replica surely holds the right, by its own clock.
    let mut held_until = Instant::now();
    loop {
        let store = &deliverer.store;
        let holder_now = holder.clone();
        let lease = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        let asked = Instant::now();
        // A claim that hangs counts as failed once the right may have run out.
        let claiming = store.write(move |db| subscriptions::claim_dispatch(db, &holder_now, lease));
        let claimed = match tokio::time::timeout(RECHECK, claiming).await {
            Ok(claimed) => claimed,
            Err(_) => {
                Err(crate::error::RegistryError::Internal("renewing the right to deliver timed out".into()))
            }
        };
        let wanted = match claimed {
            Ok(true) => {
                held_until = asked + LEASE - RECHECK;
                store.read(subscriptions::active).await
            }
            Ok(false) => Ok(Vec::new()),
            // Unsure: deliveries stop before another replica may take over.
            Err(error) if Instant::now() >= held_until => {
                tracing::warn!(%error, "cannot renew the right to deliver webhooks; stopping deliveries");
                Ok(Vec::new())
            }
            Err(error) => Err(error),
        };
        match wanted {
            Ok(wanted) => {
                running.retain(|id, task| {
                    let keep = !task.is_finished() && wanted.iter().any(|s| &s.id == id);
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for subscription in wanted {
                    if !running.contains_key(&subscription.id) {
                        let id = subscription.id.clone();
                        running.insert(id, tokio::spawn(Arc::clone(&deliverer).run(subscription)));
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "checking webhook subscriptions failed; trying again"),
        }
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(RECHECK) => {}
            _ = stopping.wait_for(|stopping| *stopping) => break,
        }
    }
    for task in running.values() {
        task.abort();
    }
}
