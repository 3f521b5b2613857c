//! `mesh completions SHELL`: shell completion script on standard output.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

/// Prints the completion script.
pub(crate) fn run(args: &CompletionsArgs) {
    clap_complete::generate(args.shell, &mut Cli::command(), "mesh", &mut std::io::stdout());
}
