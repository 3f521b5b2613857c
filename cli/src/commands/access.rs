//! `mesh access`: asking for access to a product, and the owners'
//! decisions. The registry keeps the agreements; the owning domain
//! enforces them.

use anyhow::{Context, Result};
use clap::Subcommand;
use mesh_contracts::catalog::{
    Agreement, AgreementState, ApproveAgreementRequest, DenyAgreementRequest, ListAgreementsRequest,
    RequestAccessRequest, RevokeAgreementRequest,
};

use crate::cli::Cli;
use crate::registry::Registry;
use crate::style::{self, safe};

/// `mesh access ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AccessCommand {
    /// Ask for access to a product: approved at once when one of the
    /// product's rules covers it, otherwise the owners decide.
    ///
    /// Examples:
    ///   mesh access request payment.card_spending --purpose "segment report" --columns bas_yh,seq
    ///   mesh access request customer.profiles --purpose "age mix" --columns age,sex_cd --scope 'bas_yh >= "2024Q1"' --days 30
    #[command(verbatim_doc_comment)]
    Request(AccessRequestArgs),
    /// List agreements: a product's (its owners see all) or your own.
    List(AccessListArgs),
    /// Approve a pending request (the product's owners).
    Approve(AccessDecisionArgs),
    /// Deny a pending request, saying why (the product's owners).
    Deny(AccessDenyArgs),
    /// End an agreement early (owners, or the consumer withdrawing it).
    Revoke(AccessDecisionArgs),
}

/// Flags of `mesh access request`.
#[derive(Debug, clap::Args)]
pub(crate) struct AccessRequestArgs {
    /// The product, e.g. `payment.card_spending`.
    pub product: String,
    /// What the data is for.
    #[arg(long)]
    pub purpose: String,
    /// The columns wanted, comma separated [default: every column].
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Identifier columns wanted as real values, not pseudonyms.
    #[arg(long, value_delimiter = ',')]
    pub raw: Vec<String>,
    /// The rows wanted, as a filter, e.g. `bas_yh >= "2024Q1"` [default: all].
    #[arg(long)]
    pub scope: Option<String>,
    /// How many days access should last [default: 90].
    #[arg(long, conflicts_with = "until", value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: Option<u32>,
    /// The day access should end, YYYY-MM-DD.
    #[arg(long)]
    pub until: Option<String>,
}

/// Flags of `mesh access list`.
#[derive(Debug, clap::Args)]
pub(crate) struct AccessListArgs {
    /// Only this product's agreements.
    pub product: Option<String>,
    /// Include denied, revoked and expired ones.
    #[arg(long)]
    pub all: bool,
}

/// Flags of `mesh access approve` and `revoke`.
#[derive(Debug, clap::Args)]
pub(crate) struct AccessDecisionArgs {
    /// The agreement, e.g. `agreements/7` or `7`.
    pub agreement: String,
    /// Why, for the record.
    #[arg(long, default_value = "")]
    pub note: String,
}

/// Flags of `mesh access deny`.
#[derive(Debug, clap::Args)]
pub(crate) struct AccessDenyArgs {
    /// The agreement, e.g. `agreements/7` or `7`.
    pub agreement: String,
    /// Why, for the consumer.
    #[arg(long)]
    pub note: String,
}

/// Runs one `mesh access` command.
pub(crate) async fn run(cli: &Cli, command: &AccessCommand) -> Result<()> {
    let mut registry = Registry::of(cli)?;
    match command {
        AccessCommand::Request(args) => {
            let request = request(args)?;
            let answer = registry.access().request_access(request).await;
            let agreement = answer.map_err(|s| registry.status_error(s))?.into_inner().agreement;
            let agreement = agreement.context("the registry answered no agreement")?;
            match agreement.state() {
                AgreementState::Approved => {
                    println!("{}: approved at once ({})", agreement.name, safe(&agreement.decision_note))
                }
                _ => println!(
                    "{}: pending; the owners of {} decide (they see it with `mesh access list {}`)",
                    agreement.name,
                    safe(&agreement.product),
                    safe(&agreement.product)
                ),
            }
        }
        AccessCommand::List(args) => {
            let mut request = ListAgreementsRequest {
                product: args.product.clone().unwrap_or_default(),
                include_inactive: args.all,
                ..Default::default()
            };
            let mut agreements = Vec::new();
            loop {
                let answer = registry.access().list_agreements(request.clone()).await;
                let page = answer.map_err(|s| registry.status_error(s))?.into_inner();
                agreements.extend(page.agreements);
                if page.next_page_token.is_empty() {
                    break;
                }
                request.page_token = page.next_page_token;
            }
            print_agreements(&agreements);
        }
        AccessCommand::Approve(args) => {
            let request = ApproveAgreementRequest { name: args.agreement.clone(), note: args.note.clone() };
            let answer = registry.access().approve_agreement(request).await;
            decided(answer.map_err(|s| registry.status_error(s))?.into_inner().agreement)?;
        }
        AccessCommand::Deny(args) => {
            let request = DenyAgreementRequest { name: args.agreement.clone(), note: args.note.clone() };
            let answer = registry.access().deny_agreement(request).await;
            decided(answer.map_err(|s| registry.status_error(s))?.into_inner().agreement)?;
        }
        AccessCommand::Revoke(args) => {
            let request = RevokeAgreementRequest { name: args.agreement.clone(), note: args.note.clone() };
            let answer = registry.access().revoke_agreement(request).await;
            decided(answer.map_err(|s| registry.status_error(s))?.into_inner().agreement)?;
        }
    }
    Ok(())
}

fn request(args: &AccessRequestArgs) -> Result<RequestAccessRequest> {
    let end_time = match (&args.until, args.days) {
        (Some(date), _) => Some(date_to_timestamp(date)?),
        (None, Some(days)) => Some(prost_types::Timestamp {
            seconds: crate::profile::now() as i64 + i64::from(days) * 86_400,
            nanos: 0,
        }),
        (None, None) => None,
    };
    Ok(RequestAccessRequest {
        product: args.product.clone(),
        purpose: args.purpose.clone(),
        columns: args.columns.clone(),
        raw_columns: args.raw.clone(),
        row_scope: args.scope.clone().unwrap_or_default(),
        end_time,
    })
}

/// Midnight UTC at the start of `date` (YYYY-MM-DD).
fn date_to_timestamp(date: &str) -> Result<prost_types::Timestamp> {
    let time = humantime::parse_rfc3339(&format!("{date}T00:00:00Z"))
        .with_context(|| format!("`{date}` is not a date; expected YYYY-MM-DD"))?;
    Ok(prost_types::Timestamp::from(time))
}

fn decided(agreement: Option<Agreement>) -> Result<()> {
    let agreement = agreement.context("the registry answered no agreement")?;
    println!("{}: {}", agreement.name, state_word(agreement.state()));
    Ok(())
}

fn state_word(state: AgreementState) -> &'static str {
    match state {
        AgreementState::Pending => "pending",
        AgreementState::Approved => "approved",
        AgreementState::Denied => "denied",
        AgreementState::Revoked => "revoked",
        AgreementState::Expired => "expired",
        AgreementState::Superseded => "superseded",
        AgreementState::Unspecified => "unknown",
    }
}

fn date(timestamp: Option<&prost_types::Timestamp>) -> String {
    style::time(timestamp).map(|t| t.chars().take(10).collect()).unwrap_or_default()
}

/// Prints `agreements` as a table.
pub(crate) fn print_agreements(agreements: &[Agreement]) {
    if agreements.is_empty() {
        println!("no agreements (`mesh access list --all` includes ended ones)");
        return;
    }
    let mut table = style::table(&[
        "agreement",
        "product",
        "principal",
        "issuer",
        "state",
        "columns",
        "raw",
        "rows",
        "days",
        "until",
        "purpose",
    ]);
    for agreement in agreements {
        table.add_row(vec![
            style::cell(&agreement.name),
            style::cell(&agreement.product),
            style::cell(&agreement.principal),
            style::cell(&agreement.issuer),
            style::cell(state_word(agreement.state())),
            style::cell(agreement.columns.join(", ")),
            style::cell(agreement.raw_columns.join(", ")),
            style::cell(if agreement.row_scope.is_empty() { "all" } else { &agreement.row_scope }),
            style::cell(mesh_contracts::access::days(agreement).to_string()),
            style::cell(date(agreement.end_time.as_ref())),
            style::cell(&agreement.purpose),
        ]);
    }
    println!("{table}");
}
