//! `mesh audit PRODUCT`: who read a product, as the domain that owns it
//! recorded it (its owners and admins only).

use anyhow::{Result, anyhow};
use mesh_contracts::product::audit_service_client::AuditServiceClient;
use mesh_contracts::product::{ListReadsRequest, ReadOutcome};

use crate::cli::Cli;
use crate::registry::Target;
use crate::style;

/// Flags of `mesh audit`.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// The product, e.g. `payment.card_spending`.
    pub product: String,
    /// Only reads started this long ago or later, e.g. `1h`, `7days`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub since: Option<std::time::Duration>,
    /// Only this principal's reads.
    #[arg(long)]
    pub principal: Option<String>,
    /// The most reads to show, newest first.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

/// Lists the recorded reads of the product.
pub(crate) async fn run(cli: &Cli, args: &AuditArgs) -> Result<()> {
    let target = Target::resolve(cli, &args.product, None).await?;
    let channel = mesh_grpc::client::channel(&target.endpoint, cli.timeout, &target.credentials)?;
    let since = args.since.map(|ago| prost_types::Timestamp::from(std::time::SystemTime::now() - ago));
    let request = ListReadsRequest {
        product: args.product.clone(),
        since,
        principal: args.principal.clone().unwrap_or_default(),
        page_size: i32::try_from(args.limit).unwrap_or(i32::MAX),
    };
    let reads = AuditServiceClient::new(channel)
        .list_reads(request)
        .await
        .map_err(|status| anyhow!("{}: {}", style::safe(&target.endpoint), status.message()))?
        .into_inner()
        .reads;
    if reads.is_empty() {
        println!(
            "no reads of {} recorded{}",
            args.product,
            if since.is_some() { " in that time" } else { "" }
        );
        return Ok(());
    }
    let mut table = style::table(&[
        "started",
        "principal",
        "outcome",
        "agreement",
        "rows",
        "bytes",
        "columns",
        "filter",
        "detail",
    ]);
    for read in &reads {
        let started = style::time(read.start_time.as_ref()).unwrap_or_default();
        let columns = if read.withheld_columns.is_empty() {
            format!("{}", read.delivered_columns.len())
        } else {
            format!("{} ({} withheld)", read.delivered_columns.len(), read.withheld_columns.len())
        };
        table.add_row(vec![
            style::cell(started),
            style::cell(&read.principal),
            style::cell(mesh_outcome(read.outcome())),
            style::cell(&read.agreement),
            style::cell(read.rows.to_string()),
            style::cell(read.bytes.to_string()),
            style::cell(columns),
            style::cell(&read.filter),
            style::cell(&read.detail),
        ]);
    }
    println!("{table}");
    Ok(())
}

fn mesh_outcome(outcome: ReadOutcome) -> &'static str {
    match outcome {
        ReadOutcome::Served => "served",
        ReadOutcome::Refused => "refused",
        ReadOutcome::Cancelled => "cancelled",
        ReadOutcome::Failed => "failed",
        ReadOutcome::Unspecified => "unknown",
    }
}
