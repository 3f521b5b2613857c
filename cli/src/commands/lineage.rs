//! `mesh lineage PRODUCT`: where a product comes from (its input ports,
//! and theirs) and where it goes (the products built from it, and the
//! principals that really read it, as its domain reports).

use std::collections::BTreeSet;

use anyhow::Result;
use mesh_contracts::catalog::{ListProductsRequest, Product, ProductView};

use crate::cli::Cli;
use crate::registry::Registry;
use crate::style::{self, safe};

/// Flags of `mesh lineage`.
#[derive(Debug, clap::Args)]
pub(crate) struct LineageArgs {
    /// The product, e.g. `insight.segment_spending`.
    pub product: String,
}

/// How many levels of inputs are followed upstream.
const MAX_DEPTH: usize = 8;

/// Prints the graph around the product.
pub(crate) async fn run(cli: &Cli, args: &LineageArgs) -> Result<()> {
    let mut registry = Registry::of(cli)?;
    let (entry, _) = registry.product(&args.product, ProductView::Basic).await?;
    let product = entry.product.unwrap_or_default();

    println!("upstream (input ports):");
    let mut seen = BTreeSet::from([product.product_id.clone()]);
    if product.input_ports.is_empty() {
        println!("  none: a source-aligned product");
    }
    upstream(&mut registry, &product, 1, &mut seen).await;

    println!("{} [{}]", safe(&product.product_id), style::status_word(product.status()));

    println!("downstream:");
    let all = registry.products(ListProductsRequest::default()).await?;
    let built: Vec<&Product> =
        all.iter().filter(|p| p.input_ports.iter().any(|i| i.product == product.product_id)).collect();
    for derived in &built {
        println!("  product {} [{}]", safe(&derived.product_id), style::status_word(derived.status()));
    }
    let counted = product.data.as_ref().map_or(0, |d| d.consumer_count);
    let consumers = product.data.map(|d| d.consumers).unwrap_or_default();
    if consumers.is_empty() && counted > 0 {
        println!("  read by {counted} principals in 30 days (who they are is shown to its owners)");
    }
    for consumer in &consumers {
        println!(
            "  read by {} ({} reads, {} rows in 30 days)",
            safe(&consumer.principal),
            consumer.reads,
            consumer.rows
        );
    }
    if built.is_empty() && consumers.is_empty() && counted == 0 {
        println!("  nothing yet: no product is built from it and nobody read it in the last 30 days");
    }
    Ok(())
}

/// Prints `product`'s inputs, and theirs, indented by `depth`.
async fn upstream(registry: &mut Registry, product: &Product, depth: usize, seen: &mut BTreeSet<String>) {
    for port in &product.input_ports {
        let indent = "  ".repeat(depth);
        println!("{indent}{} [{}]", safe(&port.product), style::status_word(port.status()));
        if depth >= MAX_DEPTH || !seen.insert(port.product.clone()) {
            continue;
        }
        if let Ok((entry, _)) = registry.product(&port.product, ProductView::Basic).await
            && let Some(input) = entry.product
        {
            Box::pin(upstream(registry, &input, depth + 1, seen)).await;
        }
    }
}
