//! `mesh access`: asking for access to a product, and the owners'
//! decisions. The registry keeps the agreements; the owning domain
//! enforces them.

use anyhow::{Context, Result};
use mesh_contracts::catalog::{
    Agreement, AgreementState, ApproveAgreementRequest, DenyAgreementRequest, ListAgreementsRequest,
    RequestAccessRequest, RevokeAgreementRequest,
};

use crate::cli::{AccessCommand, AccessRequestArgs, Cli};
use crate::registry::Registry;
use crate::style::{self, safe};

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
