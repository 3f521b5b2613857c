//! `mesh domains`: the domains and what they own.

use anyhow::Result;

use crate::cli::Cli;
use crate::registry::Registry;
use crate::style;

/// Prints the domains as a table.
pub(crate) async fn run(cli: &Cli) -> Result<()> {
    let domains = Registry::of(cli)?.domains().await?;
    let mut table = style::table(&["domain", "products", "serving", "owners"]);
    for domain in domains {
        let (serving, all) = (domain.serving_products as usize, domain.products.len());
        table.add_row(vec![
            style::cell(&domain.name),
            style::cell(domain.products.join("\n")),
            style::coloured(format!("{serving}/{all}"), Some(serving == all)),
            style::cell(domain.owner_teams.join(", ")),
        ]);
    }
    println!("{table}");
    Ok(())
}
