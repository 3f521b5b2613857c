//! `mesh product check FILE`: what a domain team runs before it publishes
//! (in its own CI): the product file against its schema, the contract
//! compiled and checked as the domain server would (product shape, every
//! column classified), the key, indexes, amounts and quality rules against
//! the contract's columns, the source file present; and, when the registry
//! can be reached and holds the product, the registry's breaking-change
//! check against the version in force.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use mesh_contracts::catalog::ProductView;
use mesh_contracts::compat::compare;
use mesh_contracts::descriptor::ProductShape;
use mesh_product_file::ProductFile;

use crate::cli::Cli;
use crate::registry::Registry;
use crate::style::safe;

/// `mesh product ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProductCommand {
    /// Check a product file and its contract before publishing: the
    /// schema, the contract (shape, classifications), the columns it names,
    /// its source, and breaking changes against the registry's version.
    ///
    /// Examples:
    ///   mesh product check merchant/shops.product.yaml
    ///   mesh --registry https://registry.example.com:50050 product check shops.product.yaml
    #[command(verbatim_doc_comment)]
    Check(CheckArgs),
    /// Write a contract and a product file from a CSV file's header, types
    /// inferred; the columns' classifications are left for you to decide.
    ///
    /// Examples:
    ///   mesh product init merchant.shops --from shops.csv
    ///   mesh product init merchant.sales --from exports/sales.csv --dir merchant/
    #[command(verbatim_doc_comment)]
    Init(crate::commands::product_init::InitArgs),
}

/// Flags of `mesh product check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The product file, e.g. `merchant/shops.product.yaml`.
    pub file: PathBuf,
}

/// Runs `mesh product ...`.
pub(crate) async fn run(cli: &Cli, command: &ProductCommand) -> Result<()> {
    match command {
        ProductCommand::Check(args) => check(cli, &args.file).await,
        ProductCommand::Init(args) => crate::commands::product_init::run(args),
    }
}

async fn check(cli: &Cli, path: &Path) -> Result<()> {
    let declared = mesh_product_file::declare(path).map_err(|mistakes| anyhow!("{mistakes}"))?;
    println!(
        "{}: {} is well formed; its contract compiles with every column classified",
        path.display(),
        safe(&declared.file.product)
    );
    against_registry(cli, &declared.file, &declared.shape).await
}

/// The registry's breaking-change check against the version in force,
/// when the registry can be reached and holds the product.
async fn against_registry(cli: &Cli, file: &ProductFile, shape: &ProductShape) -> Result<()> {
    let Ok(mut registry) = Registry::of(cli) else { return Ok(()) };
    let (found, _) = match registry.product(&file.product, ProductView::Full).await {
        Ok(found) => found,
        Err(error) => {
            println!("not compared with a registry ({error:#})");
            return Ok(());
        }
    };
    let in_force = found.product.unwrap_or_default();
    let pool = prost_reflect::DescriptorPool::decode(found.descriptor_set.as_slice())?;
    let old = ProductShape::find(&pool, &in_force.service)?;
    let diff = compare(&old, shape);
    if diff.breaking.is_empty() {
        println!("compatible with version {} in force at {}", in_force.latest_version, safe(registry.url()));
        return Ok(());
    }
    if file.major_version > in_force.major_version {
        println!(
            "breaking against version {} in force, published as major version {}: {}",
            in_force.latest_version,
            file.major_version,
            diff.breaking.join("; ")
        );
        return Ok(());
    }
    bail!(
        "breaking changes against version {} in force at {} (major version {}): {}\n  the registry refuses them; \
         keep the old fields and methods, or raise major_version in the product file",
        in_force.latest_version,
        safe(registry.url()),
        in_force.major_version,
        diff.breaking.join("; ")
    )
}
