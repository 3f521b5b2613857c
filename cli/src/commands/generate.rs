//! `mesh generate`: the synthetic Woori Card customer-spending file.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result};
use woori_data::Generator;

/// Flags of `mesh generate`.
#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    /// File to write; `-` or nothing writes to standard output.
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
    /// Customers per quarter.
    #[arg(long, default_value_t = woori_data::generator::DEFAULT_CUSTOMERS)]
    pub customers: u64,
    /// Quarters, from 2024Q1.
    #[arg(long, default_value_t = woori_data::generator::DEFAULT_QUARTERS)]
    pub quarters: u32,
    /// Seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = woori_data::generator::DEFAULT_SEED)]
    pub seed: u64,
    /// Leave --output as it is when the same scale and seed made it (a note
    /// beside it, `<file>.generator`, says which); otherwise write it
    /// through a temporary file. For start scripts run at every start.
    #[arg(long, requires = "output")]
    pub keep: bool,
}

/// Writes the file to `--output` or standard output.
pub(crate) fn run(args: &GenerateArgs) -> Result<()> {
    let generator = Generator { seed: args.seed, customers: args.customers, quarters: args.quarters };
    let rows = match args.output.as_deref().filter(|p| *p != Path::new("-")) {
        Some(path) if args.keep => {
            woori_data::shipped::write_source(path, &generator)
                .with_context(|| format!("cannot write {}", path.display()))?;
            generator.rows()
        }
        Some(path) => {
            generator.write_file(path).with_context(|| format!("cannot write {}", path.display()))?
        }
        None => {
            let stdout = std::io::stdout();
            generator.write_csv(std::io::BufWriter::with_capacity(1 << 20, stdout.lock()))?
        }
    };
    if std::io::stderr().is_terminal() || args.output.is_some() {
        eprintln!(
            "wrote {rows} rows ({} customers x {} quarters, seed {})",
            args.customers, args.quarters, args.seed
        );
    }
    Ok(())
}
