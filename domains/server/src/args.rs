//! The generic domain server's flags.

use std::path::PathBuf;

use mesh_runtime::DomainArgs;

/// The port the generic domain server listens on unless `--addr` says otherwise.
pub const DEFAULT_PORT: u16 = 50060;

/// Flags of `mesh domain serve` and `mesh-domain`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// A product file to serve; repeat for each product of the domain
    /// (every one must belong to the same domain).
    #[arg(
        long = "product",
        value_name = "FILE",
        env = "MESH_PRODUCT_FILES",
        value_delimiter = ',',
        required = true
    )]
    pub products: Vec<PathBuf>,

    /// Where the domain listens, keeps its data and registers.
    #[command(flatten)]
    pub domain: DomainArgs,

    /// Load the sources again even if the database holds their current content.
    #[arg(long, env = "MESH_RELOAD")]
    pub reload: bool,

    /// Accept a load that leaves fewer than half the rows it replaces
    /// (refused by default: a truncated or wrong source is the likelier cause).
    #[arg(long, env = "MESH_ALLOW_SHRINK")]
    pub allow_shrink: bool,
}

impl ServeArgs {
    /// How much a load may shrink a product.
    pub fn shrink(&self) -> mesh_runtime::ingest::Shrink {
        if self.allow_shrink {
            mesh_runtime::ingest::Shrink::Any
        } else {
            mesh_runtime::ingest::Shrink::AtMostHalf
        }
    }
}
