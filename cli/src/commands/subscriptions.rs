//! `mesh subscribe` and `mesh subscriptions`: webhooks. The registry POSTs
//! each event about a product (those the subscriber may see) to a URL as a
//! CloudEvent, signed as a Standard Webhook with a secret shown once, for
//! 90 days unless renewed.

use anyhow::{Context, Result};
use clap::Subcommand;
use mesh_contracts::catalog::{
    CreateSubscriptionRequest, DeleteSubscriptionRequest, ListSubscriptionsRequest, RenewSubscriptionRequest,
    Subscription, SubscriptionState,
};

use crate::cli::Cli;
use crate::registry::Registry;
use crate::style::{self, safe};

/// Flags of `mesh subscribe`.
#[derive(Debug, clap::Args)]
pub(crate) struct SubscribeArgs {
    /// The product, e.g. `payment.card_spending`.
    pub product: String,
    /// Where to deliver: an `https://` URL that answers 2xx to a POST.
    #[arg(long)]
    pub url: String,
    /// Only events of this type, or of a prefix ending in `*` (repeat for
    /// more), e.g. `mesh.data.*` [default: every event].
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
}

/// `mesh subscriptions ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum SubscriptionsCommand {
    /// List your subscriptions and how their deliveries stand.
    List(ListArgs),
    /// Delete a subscription: nothing more is delivered.
    Delete(IdArgs),
    /// Renew a subscription for another 90 days with your current token
    /// (and roles); a disabled or expired one delivers again from where it
    /// stopped.
    Renew(IdArgs),
}

/// Flags of `mesh subscriptions list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Only subscriptions to this product.
    pub product: Option<String>,
}

/// Flags of `mesh subscriptions delete` and `renew`.
#[derive(Debug, clap::Args)]
pub(crate) struct IdArgs {
    /// The subscription's id, e.g. `sub_4f1c...` (`mesh subscriptions list`).
    pub id: String,
}

/// Subscribes a URL and prints the secret, once.
pub(crate) async fn subscribe(cli: &Cli, args: &SubscribeArgs) -> Result<()> {
    let mut registry = Registry::of(cli)?;
    let request = CreateSubscriptionRequest {
        product: args.product.clone(),
        url: args.url.clone(),
        types: args.types.clone(),
    };
    let answer = registry.subscriptions().create_subscription(request).await;
    let created = answer.map_err(|s| registry.status_error(s))?.into_inner();
    let subscription = created.subscription.context("the registry answered no subscription")?;
    println!(
        "{}: the events about {} go to {}",
        safe(&subscription.subscription_id),
        safe(&subscription.product),
        safe(&subscription.url)
    );
    println!("signing secret (shown this once; keep it where the receiver can read it):");
    println!("  {}", safe(&created.secret));
    eprintln!(
        "each delivery is a CloudEvent (application/cloudevents+json) signed as a Standard Webhook: verify \
         webhook-signature with the secret, and skip a webhook-id already taken (redeliveries keep it)"
    );
    Ok(())
}

/// Runs `mesh subscriptions ...`.
pub(crate) async fn run(cli: &Cli, command: &SubscriptionsCommand) -> Result<()> {
    let mut registry = Registry::of(cli)?;
    match command {
        SubscriptionsCommand::List(args) => {
            let request = ListSubscriptionsRequest { product: args.product.clone().unwrap_or_default() };
            let answer = registry.subscriptions().list_subscriptions(request).await;
            print(&answer.map_err(|s| registry.status_error(s))?.into_inner().subscriptions);
        }
        SubscriptionsCommand::Delete(args) => {
            let request = DeleteSubscriptionRequest { subscription_id: args.id.clone() };
            let answer = registry.subscriptions().delete_subscription(request).await;
            answer.map_err(|s| registry.status_error(s))?;
            println!("{}: deleted", safe(&args.id));
        }
        SubscriptionsCommand::Renew(args) => {
            let request = RenewSubscriptionRequest { subscription_id: args.id.clone() };
            let answer = registry.subscriptions().renew_subscription(request).await;
            let renewed = answer.map_err(|s| registry.status_error(s))?.into_inner().subscription;
            let renewed = renewed.context("the registry answered no subscription")?;
            let until = style::time(renewed.expire_time.as_ref()).unwrap_or_default();
            println!("{}: renewed until {until}", safe(&args.id));
        }
    }
    Ok(())
}

fn state_word(state: SubscriptionState) -> &'static str {
    match state {
        SubscriptionState::Active => "active",
        SubscriptionState::Failing => "failing",
        SubscriptionState::Disabled => "disabled",
        SubscriptionState::Expired => "expired",
        SubscriptionState::Unspecified => "unknown",
    }
}

fn print(subscriptions: &[Subscription]) {
    if subscriptions.is_empty() {
        println!("no subscriptions (`mesh subscribe PRODUCT --url https://...` makes one)");
        return;
    }
    let mut table = style::table(&[
        "subscription",
        "product",
        "url",
        "types",
        "state",
        "delivered",
        "last attempt",
        "outcome",
    ]);
    for subscription in subscriptions {
        let mut state = state_word(subscription.state()).to_owned();
        if let Some(since) = style::time(subscription.failing_since.as_ref()) {
            state = format!("{state} since {since}");
        }
        table.add_row(vec![
            style::cell(&subscription.subscription_id),
            style::cell(&subscription.product),
            style::cell(&subscription.url),
            style::cell(if subscription.types.is_empty() {
                "all".to_owned()
            } else {
                subscription.types.join(", ")
            }),
            style::cell(state),
            style::cell(subscription.delivered_sequence.to_string()),
            style::cell(style::time(subscription.last_attempt_time.as_ref()).unwrap_or_default()),
            style::cell(&subscription.last_outcome),
            style::cell(style::time(subscription.expire_time.as_ref()).unwrap_or_default()),
        ]);
    }
    println!("{table}");
}
