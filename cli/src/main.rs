//! `mesh`: discover data products in the catalog and query them from their domains.

mod batch_file;
mod cache;
mod cli;
mod commands;
mod domain_token;
mod profile;
mod registry;
mod rows;
mod session;
mod style;
mod token_renewal;

use clap::Parser;

use cli::{Cli, Command};

/// Stack of every thread running a command. Planning SQL recurses over
/// expression trees as deep as the query nests (up to
/// `mesh_sql::engine::MAX_OPERATORS` levels), more than tokio's 2 MiB hold
/// in a debug build; the memory is reserved, not used, until a query
/// nests that deep.
const STACK_BYTES: usize = 16 << 20;

fn main() -> std::process::ExitCode {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(STACK_BYTES).build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let command =
        std::thread::Builder::new().stack_size(STACK_BYTES).spawn(move || runtime.block_on(command()));
    match command.map(std::thread::JoinHandle::join) {
        Ok(Ok(code)) => code,
        _ => std::process::ExitCode::FAILURE,
    }
}

use tracing::Instrument;

/// Parses the command line and runs the command.
async fn command() -> std::process::ExitCode {
    let mut cli = Cli::parse();
    // Commands hosting services log what they do; client commands only warn.
    let (level, service) =
        if cli.command.serves() { ("info", "mesh-services") } else { ("warn", "mesh-cli") };
    let telemetry = match mesh_grpc::telemetry::init(level, service, &cli.trace) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // One span for the whole command: the root of its trace.
    let span = tracing::info_span!("mesh");
    let outcome = async {
        session::start(&mut cli).await?;
        run(&cli).await
    }
    .instrument(span)
    .await;
    telemetry.shutdown();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // Errors carry server messages: escaped like everything else.
            eprintln!("error: {}", style::safe_lines(&format!("{error:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the command.
async fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Domains => commands::domains::run(cli).await,
        Command::Products(args) => commands::products::run(cli, args).await,
        Command::Describe(args) => commands::describe::run(cli, args).await,
        Command::Query(args) => commands::query::run(cli, args).await,
        #[cfg(feature = "sql")]
        Command::Sql(args) => commands::sql::run(cli, args).await,
        Command::Health(args) => commands::health::run(cli, args).await,
        Command::Whoami => commands::whoami::run(cli).await,
        Command::Access(command) => commands::access::run(cli, command).await,
        Command::Audit(args) => commands::audit::run(cli, args).await,
        Command::Usage(args) => commands::usage::run(cli, args).await,
        Command::Watch(args) => commands::watch::run(cli, args).await,
        Command::Subscribe(args) => commands::subscriptions::subscribe(cli, args).await,
        Command::Subscriptions(command) => commands::subscriptions::run(cli, command).await,
        Command::Product(command) => commands::product::run(cli, command).await,
        Command::Lineage(args) => commands::lineage::run(cli, args).await,
        Command::Login(args) => commands::login::run(cli, args).await,
        Command::Init(args) => commands::init::run(args),
        #[cfg(feature = "local")]
        Command::Up(args) => commands::up::run(args).await,
        #[cfg(feature = "local")]
        Command::Generate(args) => commands::generate::run(args),
        #[cfg(feature = "local")]
        Command::Domain(command) => command.run().await,
        Command::Token(command) => commands::token::run(cli, command).await,
        Command::Completions(args) => {
            commands::completions::run(args);
            Ok(())
        }
    }
}
