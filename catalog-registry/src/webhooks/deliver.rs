//! Delivering one subscription: its events (those its owner may see, as
//! `Watch` would stream them to the owner) in log order, one at a time,
//! each POSTed as a CloudEvent signed as a Standard Webhook and retried
//! with exponential backoff and jitter until the receiver answers 2xx; the
//! position moves on only then (at least once, in order, a redelivery with
//! the same `webhook-id`). A subscription failing for longer than the
//! registry allows is disabled. The receiver's body is never read.

use std::sync::Arc;
use std::time::Duration;

use mesh_contracts::catalog::Event;
use mesh_grpc::auth::Principal;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::LIFETIME_MS;
use super::signature::sign;
use super::target;
use crate::error::RegistryError;
use crate::events::Events;
use crate::events::service::{Position, Wanted};
use crate::store::Store;
use crate::store::subscriptions::{self, StoredSubscription};

/// The first wait before retrying a failed delivery; it doubles up to
/// [`MAX_RETRY`], each wait drawn between half and all of it.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between attempts.
const MAX_RETRY: Duration = Duration::from_secs(300);
/// Deliveries in flight at once for the subscriptions of one owner.
const PER_OWNER: usize = 4;
/// How often a position moved past events the subscription does not get
/// is saved (a restart redelivers nothing, it only reads them again).
const SAVE_EVERY: Duration = Duration::from_secs(15);

/// How deliveries are made, shared by every subscription's task.
#[derive(Debug)]
pub struct Deliverer {
    pub(super) store: Store,
    pub(super) events: Events,
    pub(super) client: reqwest::Client,
    /// Deliveries in flight at once, across subscriptions.
    pub(super) in_flight: Semaphore,
    /// When delivering began here: an event is not behind for the time
    /// the registry was down.
    pub(super) started: Instant,
    /// Each owner's share of them ([`PER_OWNER`]), by issuer and subject.
    pub(super) per_owner: std::sync::Mutex<std::collections::HashMap<String, Arc<Semaphore>>>,
    /// How long a receiver may take to answer.
    pub(super) timeout: Duration,
    /// Failing this long disables a subscription.
    pub(super) give_up_after: Duration,
    /// Whether private targets and plain HTTP are allowed.
    pub(super) allow_private: bool,
}

impl Deliverer {
    /// Delivers `subscription`'s events until it is deleted or disabled,
    /// the registry stops, or its stream fails (the dispatcher starts it
    /// again).
    pub async fn run(self: Arc<Self>, subscription: StoredSubscription) {
        let id = subscription.id.clone();
        let owner = Principal {
            subject: subscription.owner.subject.clone(),
            issuer: subscription.owner.issuer.clone(),
            roles: subscription.owner.roles.clone(),
        };
        let wanted = match Wanted::checked(&subscription.product, "", &subscription.types) {
            Ok(wanted) => wanted,
            Err(error) => {
                return tracing::warn!(subscription = %id, %error, "a stored subscription is unreadable");
            }
        };
        let position = Position { after: subscription.delivered, from_now: false };
        let mut stream = match self.events.follow(owner, wanted, position).await {
            Ok(stream) => stream,
            Err(error) => {
                // A position the log no longer has (restored, or trimmed) is the
                // subscription's to know; anything else is the registry's.
                if let RegistryError::InvalidArgument { .. } | RegistryError::EventsTrimmed { .. } = error {
                    let why = format!("cannot go on after event {}: {error}", subscription.delivered);
                    let _ = self.store.write(move |db| subscriptions::disable(db, &id, &why)).await;
                } else {
                    tracing::warn!(subscription = %id, %error, "cannot read the subscription's events");
                }
                return;
            }
        };
        let (mut saved, mut saved_at) = (subscription.delivered, Instant::now());
        while let Some(response) = stream.recv().await {
            let Ok(response) = response else { return };
            match response.event {
                Some(event) => {
                    if !self.deliver(&subscription, &event).await {
                        return;
                    }
                    (saved, saved_at) = (event.sequence, Instant::now());
                }
                None if response.resume_after > saved && saved_at.elapsed() >= SAVE_EVERY => {
                    let (id, at) = (id.clone(), response.resume_after);
                    if self.store.write(move |db| subscriptions::delivered(db, &id, at, None)).await.is_ok() {
                        (saved, saved_at) = (at, Instant::now());
                    }
                }
                None => {}
            }
        }
    }

    /// Delivers `event` until the receiver takes it; false when the
    /// subscription is gone or was disabled meanwhile.
    async fn deliver(&self, subscription: &StoredSubscription, event: &Event) -> bool {
        let body = mesh_contracts::cloudevent::to_json(event).to_string().into_bytes();
        let mut wait = FIRST_RETRY;
        let written = event.time.as_ref().map(mesh_contracts::time::ms).unwrap_or_default();
        loop {
            // A subscription may not hold the log back longer than it may fail
            // (counted from when this registry could first deliver it, or the
            // subscription was last renewed, whichever came later).
            let since_start = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let renewed = subscription.expire_time.saturating_sub(LIFETIME_MS);
            let now = mesh_contracts::time::now_ms();
            let behind = (now - written.max(renewed)).min(since_start);
            if behind > i64::try_from(self.give_up_after.as_millis()).unwrap_or(i64::MAX) {
                let id = subscription.id.clone();
                let why = format!(
                    "event {} was written {:?} ago and is still not taken: the receiver fell too far behind",
                    event.sequence,
                    Duration::from_millis(behind.unsigned_abs() / 1000 * 1000)
                );
                let _ = self.store.write(move |db| subscriptions::disable(db, &id, &why)).await;
                tracing::warn!(subscription = %subscription.id, "webhook receiver too far behind: disabled");
                return false;
            }
            let id = subscription.id.clone();
            let secret = match self.store.read(move |db| subscriptions::secret(db, &id)).await {
                Ok(Some(secret)) => secret,
                Ok(None) => return false,
                Err(error) => {
                    tracing::warn!(%error, "reading a subscription failed; trying again");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            let outcome = self.post(subscription, &secret, &event.id, &body).await;
            let (id, sequence) = (subscription.id.clone(), event.sequence);
            match outcome {
                Ok(answer) => {
                    let answer = format!("delivered event {sequence}: {answer}");
                    let saved = self
                        .store
                        .write(move |db| subscriptions::delivered(db, &id, sequence, Some(&answer)))
                        .await;
                    if let Err(error) = saved {
                        // Delivered again after a restart: at least once.
                        tracing::warn!(%error, "recording a delivery failed");
                    }
                    return true;
                }
                Err(why) => {
                    let give_up = i64::try_from(self.give_up_after.as_millis()).unwrap_or(i64::MAX);
                    let why = format!("event {sequence}: {why}");
                    if let Ok(false) =
                        self.store.write(move |db| subscriptions::failed(db, &id, &why, give_up)).await
                    {
                        tracing::warn!(subscription = %subscription.id, "webhook deliveries stopped: disabled or deleted");
                        return false;
                    }
                }
            }
            tokio::time::sleep(jittered(wait)).await;
            wait = (wait * 2).min(MAX_RETRY);
        }
    }

    /// POSTs one signed delivery; the receiver's status, or why it failed.
    async fn post(
        &self,
        subscription: &StoredSubscription,
        secret: &str,
        id: &str,
        body: &[u8],
    ) -> Result<String, String> {
        // The owner's share first: slow receivers of one owner hold up no one else's.
        let share = {
            let mut shares = self.per_owner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let owner = format!("{}\n{}", subscription.owner.issuer, subscription.owner.subject);
            Arc::clone(shares.entry(owner).or_insert_with(|| Arc::new(Semaphore::new(PER_OWNER))))
        };
        let stopping = |_| "the registry is stopping".to_owned();
        let _share = share.acquire().await.map_err(stopping)?;
        let _permit = self.in_flight.acquire().await.map_err(stopping)?;
        // Checked at every attempt: the rules may have changed since.
        let url = target::checked(&subscription.url, self.allow_private).map_err(|e| e.to_string())?;
        let timestamp = mesh_contracts::time::now_ms() / 1000;
        let signature = sign(secret, id, timestamp, body).ok_or("the subscription's secret is unreadable")?;
        let sent = self
            .client
            .post(url)
            .timeout(self.timeout)
            .header(http::header::CONTENT_TYPE, "application/cloudevents+json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await;
        // The answer's body is dropped unread.
        match sent {
            Ok(answer) if answer.status().is_success() => Ok(format!("HTTP {}", answer.status().as_u16())),
            Ok(answer) if answer.status().is_redirection() => {
                Err(format!("HTTP {} (redirects are not followed)", answer.status().as_u16()))
            }
            Ok(answer) => Err(format!("HTTP {}", answer.status().as_u16())),
            // Coarse on purpose: the outcome is no port scanner's report.
            Err(error) if error.is_timeout() => Err(format!("no answer within {:?}", self.timeout)),
            Err(error) if error.is_connect() => {
                Err("could not connect (refused, TLS failed, or no public address)".to_owned())
            }
            Err(_) => Err("the request failed before an answer came".to_owned()),
        }
    }
}

/// A wait between half and all of `wait`.
fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(rand::random_range(0.5..=1.0))
}
