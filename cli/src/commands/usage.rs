//! `mesh usage PRODUCT`: how much a product is read, per day, with the
//! refusals by reason and the slowest reads, from the read log of the
//! domain that owns it (its owners and admins only).

use anyhow::{Result, anyhow};
use mesh_contracts::product::GetUsageRequest;
use mesh_contracts::product::audit_service_client::AuditServiceClient;

use crate::cli::Cli;
use crate::registry::Target;
use crate::style;

/// Flags of `mesh usage`.
#[derive(Debug, clap::Args)]
pub(crate) struct UsageArgs {
    /// The product, e.g. `payment.card_spending`.
    pub product: String,
    /// The days summed, back from today, e.g. `7days`, `30d` (at most 400 days).
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    pub since: std::time::Duration,
    /// How many of the slowest reads to show.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=100))]
    pub slowest: i32,
}

/// Prints the product's usage.
pub(crate) async fn run(cli: &Cli, args: &UsageArgs) -> Result<()> {
    let target = Target::resolve(cli, &args.product, None).await?;
    let channel = mesh_grpc::client::channel(&target.endpoint, cli.timeout, &target.credentials)?;
    let since = std::time::SystemTime::now().checked_sub(args.since).unwrap_or(std::time::UNIX_EPOCH);
    let request = GetUsageRequest {
        product: args.product.clone(),
        since: Some(prost_types::Timestamp::from(since)),
        slowest: args.slowest,
    };
    let usage = AuditServiceClient::new(channel)
        .get_usage(request)
        .await
        .map_err(|status| anyhow!("{}: {}", style::safe(&target.endpoint), status.message()))?
        .into_inner();
    let mut days = style::table(&["day", "reads", "rows", "bytes", "refused"]);
    for day in &usage.days {
        days.add_row(vec![
            style::cell(&day.day),
            style::cell(day.reads.to_string()),
            style::cell(day.rows.to_string()),
            style::cell(day.bytes.to_string()),
            style::cell(day.refusals.to_string()),
        ]);
    }
    println!("{days}");
    if usage.refusals.is_empty() {
        println!("no reads refused");
    } else {
        let mut refusals = style::table(&["refused for", "reads"]);
        for refusal in &usage.refusals {
            refusals.add_row(vec![style::cell(&refusal.reason), style::cell(refusal.count.to_string())]);
        }
        println!("{refusals}");
    }
    if !usage.slowest.is_empty() {
        let mut slowest = style::table(&["slowest reads", "principal", "took", "rows", "filter"]);
        for read in &usage.slowest {
            let ms = |t: Option<&prost_types::Timestamp>| {
                t.map_or(0, |t| t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos) / 1_000_000))
            };
            let took = ms(read.end_time.as_ref()).saturating_sub(ms(read.start_time.as_ref()));
            slowest.add_row(vec![
                style::cell(style::time(read.start_time.as_ref()).unwrap_or_default()),
                style::cell(&read.principal),
                style::cell(format!("{took} ms")),
                style::cell(read.rows.to_string()),
                style::cell(&read.filter),
            ]);
        }
        println!("{slowest}");
    }
    if usage.truncated {
        println!(
            "(the log holds more reads in that time than are weighed: the slowest are those of the newest {})",
            usage.records
        );
    }
    Ok(())
}
