//! `mesh domains`: the domains and what they own.

use anyhow::Result;
use mesh_contracts::catalog::ListDomainsRequest;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;

use crate::cli::Cli;
use crate::{registry, style};

/// Prints the domains as a table.
pub async fn run(cli: &Cli) -> Result<()> {
    let registry_client = registry::Registry::new(&cli.registry, cli.timeout)?;
    let mut client = CatalogServiceClient::new(registry::channel(&cli.registry, cli.timeout)?);
    let mut table = style::table(&["domain", "products", "serving", "owners"]);
    let mut request = ListDomainsRequest { page_size: 1000, page_token: String::new() };
    loop {
        let page = client
            .list_domains(request.clone())
            .await
            .map_err(|s| registry_client.status_error(s))?
            .into_inner();
        for domain in page.domains {
            let serving = domain.serving_products as usize;
            let all = domain.products.len();
            table.add_row(vec![
                comfy_table::Cell::new(&domain.name),
                comfy_table::Cell::new(domain.products.join("\n")),
                style::coloured(format!("{serving}/{all}"), Some(serving == all)),
                comfy_table::Cell::new(domain.owner_teams.join(", ")),
            ]);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    println!("{table}");
    Ok(())
}
