//! `mesh products`: products with owner, purpose, status, version and endpoint.

use anyhow::Result;
use mesh_contracts::catalog::ListProductsRequest;

use crate::cli::Cli;
use crate::{registry, style};

/// Flags of `mesh products`.
#[derive(Debug, clap::Args)]
pub(crate) struct ProductsArgs {
    /// Only products of this domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// Only products whose name, title, purpose or columns mention every word.
    #[arg(long)]
    pub search: Option<String>,
    /// Only products of this owner team.
    #[arg(long)]
    pub owner: Option<String>,
    /// Only products with this tag.
    #[arg(long)]
    pub tag: Option<String>,
}

/// Prints the matching products as a table.
pub(crate) async fn run(cli: &Cli, args: &ProductsArgs) -> Result<()> {
    let mut registry = registry::Registry::of(cli)?;
    let filter = ListProductsRequest {
        domain: args.domain.clone().unwrap_or_default(),
        search: args.search.clone().unwrap_or_default(),
        owner: args.owner.clone().unwrap_or_default(),
        tag: args.tag.clone().unwrap_or_default(),
        ..Default::default()
    };
    let products = registry.products(filter).await?;
    if products.is_empty() {
        eprintln!("no products match; `mesh products` with no filters lists them all");
        return Ok(());
    }
    let mut table = style::table(&["product", "owner", "purpose", "status", "version", "endpoint"]);
    for product in &products {
        let metadata = product.metadata.clone().unwrap_or_default();
        let endpoints: Vec<&str> = product.endpoints.iter().map(|e| e.uri.as_str()).collect();
        table.add_row(vec![
            style::cell(&product.product_id),
            style::cell(&metadata.owner_team),
            style::cell(&metadata.purpose),
            style::product_status(product),
            style::cell(format!("v{} (major {})", product.latest_version, product.major_version)),
            style::cell(endpoints.join("\n")),
        ]);
    }
    println!("{table}");
    Ok(())
}
