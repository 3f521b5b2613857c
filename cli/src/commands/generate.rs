//! `mesh generate`: the synthetic Woori Card customer-spending file.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result};
use woori_data::Generator;

use crate::cli::GenerateArgs;

/// Writes the file to `--output` or standard output.
pub(crate) fn run(args: &GenerateArgs) -> Result<()> {
    let generator = Generator { seed: args.seed, customers: args.customers, quarters: args.quarters };
    let rows = match args.output.as_deref().filter(|p| *p != Path::new("-")) {
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
