//! `mesh completions SHELL`: shell completion script on standard output.

use clap::CommandFactory;

use crate::cli::Cli;

/// Flags of `mesh completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Prints the completion script.
pub(crate) fn run(args: &CompletionsArgs) {
    clap_complete::generate(args.shell, &mut Cli::command(), "mesh", &mut std::io::stdout());
}
