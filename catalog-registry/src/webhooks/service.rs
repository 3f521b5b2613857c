//! `SubscriptionService`: subscribing a URL to a product's events (any
//! caller who may see the product; events are then shown to the
//! subscription as to the caller's token), listing one's subscriptions
//! and how they stand, renewing them (a lifetime of 90 days, renewed with
//! the creator's current token and roles), deleting them. The secret is
//! returned once.

use mesh_contracts::catalog::subscription_service_server::SubscriptionService;
use mesh_contracts::catalog::{
    CreateSubscriptionRequest, CreateSubscriptionResponse, DeleteSubscriptionRequest,
    DeleteSubscriptionResponse, ListSubscriptionsRequest, ListSubscriptionsResponse,
    RenewSubscriptionRequest, RenewSubscriptionResponse, Subscription, SubscriptionState,
};
use mesh_grpc::auth::{ADMIN, Principal};
use tonic::{Request, Response, Status};

use super::LIFETIME_MS;
use super::dispatcher::Webhooks;
use super::{signature, target};
use crate::error::{RegistryError, Result};
use crate::events::service::Wanted;
use crate::store::sql::Sql;
use crate::store::subscriptions::{self, NewSubscription, Owner, StoredSubscription};
use crate::store::{Store, events, products, writes};
use crate::validate;

/// The most subscriptions one caller may hold.
pub const MAX_PER_OWNER: i64 = 100;
/// The most subscriptions the registry holds.
pub const MAX_TOTAL: i64 = 10_000;

/// The subscription service.
#[derive(Debug, Clone)]
pub struct Subscriptions {
    store: Store,
    webhooks: Webhooks,
}

impl Subscriptions {
    /// Serves `store`'s subscriptions, delivered by `webhooks`.
    pub fn new(store: Store, webhooks: Webhooks) -> Self {
        Self { store, webhooks }
    }

    async fn create(
        &self,
        caller: Principal,
        request: CreateSubscriptionRequest,
    ) -> Result<CreateSubscriptionResponse> {
        refuse_services(&caller)?;
        let product = validate::product_name("product", request.product.trim())?.to_owned();
        let types: Vec<String> = request.types.iter().map(|t| t.trim().to_owned()).collect();
        Wanted::checked(&product, "", &types)?;
        let url = target::checked(&request.url, self.webhooks.allow_private())?;
        let owner = Owner { issuer: caller.issuer, subject: caller.subject, roles: caller.roles };
        // Counted before the name is looked up: a caller at its quota makes no lookups.
        let (issuer, subject) = (owner.issuer.clone(), owner.subject.clone());
        self.store.read(move |db| within_quota(db, &issuer, &subject)).await?;
        target::resolves(&url, self.webhooks.allow_private()).await?;
        let id = format!("sub_{:024x}", rand::random::<u128>() >> 32);
        let secret = signature::new_secret();
        let (url, stored_secret) = (url.to_string(), secret.clone());
        let created = self
            .store
            .write(move |db| {
                // One creation at a time, so quotas hold on PostgreSQL too.
                db.lock("subscriptions")?;
                let now = db.now_ms()?;
                if products::load(db, &product, now)?.is_none() {
                    return Err(RegistryError::ProductNotFound(product));
                }
                within_quota(db, &owner.issuer, &owner.subject)?;
                let new = NewSubscription {
                    id: &id,
                    product: &product,
                    url: &url,
                    types: &types,
                    secret: &stored_secret,
                    owner: &owner,
                };
                let newest = events::latest(db)?;
                let created = subscriptions::insert(db, &new, newest, LIFETIME_MS)?;
                writes::record(db, now, &owner.subject, &format!("subscribe {id}"), &product)?;
                Ok(created)
            })
            .await?;
        self.webhooks.changed();
        Ok(CreateSubscriptionResponse {
            subscription: Some(to_proto(created, mesh_contracts::time::now_ms())),
            secret,
        })
    }

    /// Renews the caller's subscription `id` with the caller's roles now.
    async fn renew(&self, caller: Principal, id: String) -> Result<Subscription> {
        refuse_services(&caller)?;
        let id = checked_id(&id)?;
        let (renewed, now) = self
            .store
            .write(move |db| {
                let found = subscriptions::get(db, &id)?;
                let mine = found
                    .as_ref()
                    .is_some_and(|s| s.owner.issuer == caller.issuer && s.owner.subject == caller.subject);
                let renewed = match mine {
                    true => subscriptions::renew(db, &id, &caller.roles, LIFETIME_MS)?,
                    false => None,
                };
                let renewed = renewed
                    .ok_or_else(|| RegistryError::SubscriptionNotFound(id.chars().take(64).collect()))?;
                let now = db.now_ms()?;
                writes::record(
                    db,
                    now,
                    &caller.subject,
                    &format!("renew subscription {id}"),
                    &renewed.product,
                )?;
                Ok((renewed, now))
            })
            .await?;
        self.webhooks.changed();
        Ok(to_proto(renewed, now))
    }

    async fn delete(&self, caller: Principal, id: String) -> Result<()> {
        let id = id.trim().to_owned();
        if id.is_empty() {
            return Err(RegistryError::invalid(
                "subscription_id",
                "is empty; mesh subscriptions list shows yours",
            ));
        }
        self.store
            .write(move |db| {
                let found = subscriptions::get(db, &id)?;
                let mine = found.as_ref().is_some_and(|s| {
                    (s.owner.issuer == caller.issuer && s.owner.subject == caller.subject)
                        || caller.has_role(ADMIN)
                });
                let Some(found) = found.filter(|_| mine) else {
                    return Err(RegistryError::SubscriptionNotFound(id.chars().take(64).collect()));
                };
                subscriptions::delete(db, &id)?;
                let now = db.now_ms()?;
                writes::record(db, now, &caller.subject, &format!("delete subscription {id}"), &found.product)
            })
            .await?;
        self.webhooks.changed();
        Ok(())
    }
}

/// Refuses a service identity: its short-lived token may not outlive
/// itself as a webhook.
fn refuse_services(caller: &Principal) -> Result<()> {
    if caller.roles.iter().any(|role| role.starts_with("service:")) {
        return Err(RegistryError::PermissionDenied(
            "a service identity's token is short-lived by design and may not outlive itself as a webhook; \
             services follow events with Watch, people and teams subscribe with their own token"
                .into(),
        ));
    }
    Ok(())
}

/// A subscription id as asked for, trimmed.
fn checked_id(id: &str) -> Result<String> {
    match id.trim() {
        "" => Err(RegistryError::invalid("subscription_id", "is empty; mesh subscriptions list shows yours")),
        id => Ok(id.to_owned()),
    }
}

/// Refuses a new subscription of `(issuer, subject)` past the quotas.
fn within_quota(db: &mut dyn Sql, issuer: &str, subject: &str) -> Result<()> {
    let (mine, all) = subscriptions::counts(db, issuer, subject)?;
    if mine >= MAX_PER_OWNER {
        return Err(RegistryError::Quota(format!(
            "you hold {mine} subscriptions, the most one caller may; delete some (mesh subscriptions delete ID) \
             or follow events across products with mesh watch"
        )));
    }
    if all >= MAX_TOTAL {
        return Err(RegistryError::Quota(format!(
            "the registry holds {all} subscriptions, the most it delivers; ask an admin to remove unused ones"
        )));
    }
    Ok(())
}

/// `stored` as callers see it at `now` (ms).
fn to_proto(stored: StoredSubscription, now: i64) -> Subscription {
    let expired = stored.expire_time > 0 && stored.expire_time <= now;
    let state = match (stored.disabled, expired, stored.failing_since) {
        (true, _, _) => SubscriptionState::Disabled,
        (false, true, _) => SubscriptionState::Expired,
        (false, false, 0) => SubscriptionState::Active,
        (false, false, _) => SubscriptionState::Failing,
    };
    let time = |ms: i64| (ms > 0).then(|| mesh_contracts::time::timestamp(ms));
    Subscription {
        subscription_id: stored.id,
        product: stored.product,
        url: stored.url,
        types: stored.types,
        owner: format!("{} ({})", stored.owner.subject, stored.owner.issuer),
        create_time: time(stored.create_time),
        state: state as i32,
        delivered_sequence: stored.delivered,
        last_attempt_time: time(stored.last_attempt),
        last_outcome: stored.last_outcome,
        failing_since: time(stored.failing_since),
        expire_time: time(stored.expire_time),
    }
}

#[tonic::async_trait]
impl SubscriptionService for Subscriptions {
    async fn create_subscription(
        &self,
        request: Request<CreateSubscriptionRequest>,
    ) -> Result<Response<CreateSubscriptionResponse>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        Ok(Response::new(self.create(caller, request.into_inner()).await?))
    }

    async fn list_subscriptions(
        &self,
        request: Request<ListSubscriptionsRequest>,
    ) -> Result<Response<ListSubscriptionsResponse>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let product = match request.into_inner().product.trim() {
            "" => String::new(),
            name => validate::product_name("product", name)?.to_owned(),
        };
        let (listed, now) = self
            .store
            .read(move |db| {
                let listed = subscriptions::of_owner(db, &caller.issuer, &caller.subject, &product)?;
                Ok((listed, db.now_ms()?))
            })
            .await?;
        let subscriptions = listed.into_iter().map(|s| to_proto(s, now)).collect();
        Ok(Response::new(ListSubscriptionsResponse { subscriptions }))
    }

    async fn delete_subscription(
        &self,
        request: Request<DeleteSubscriptionRequest>,
    ) -> Result<Response<DeleteSubscriptionResponse>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        self.delete(caller, request.into_inner().subscription_id).await?;
        Ok(Response::new(DeleteSubscriptionResponse {}))
    }

    async fn renew_subscription(
        &self,
        request: Request<RenewSubscriptionRequest>,
    ) -> Result<Response<RenewSubscriptionResponse>, Status> {
        let caller = mesh_grpc::auth::layer::caller(request.extensions())?;
        let renewed = self.renew(caller, request.into_inner().subscription_id).await?;
        Ok(Response::new(RenewSubscriptionResponse { subscription: Some(renewed) }))
    }
}
