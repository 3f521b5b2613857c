//! The command line's top level: global flags and the list of subcommands;
//! each subcommand's own flags live in its file under `commands/`.

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::commands::access::AccessCommand;
use crate::commands::audit::AuditArgs;
use crate::commands::completions::CompletionsArgs;
use crate::commands::describe::DescribeArgs;
#[cfg(feature = "local")]
use crate::commands::generate::GenerateArgs;
use crate::commands::health::HealthArgs;
use crate::commands::init::InitArgs;
use crate::commands::lineage::LineageArgs;
use crate::commands::login::LoginArgs;
use crate::commands::product::ProductCommand;
use crate::commands::products::ProductsArgs;
use crate::commands::query::QueryArgs;
use crate::commands::subscriptions::{SubscribeArgs, SubscriptionsCommand};
use crate::commands::token::TokenCommand;
#[cfg(feature = "local")]
use crate::commands::up::UpArgs;
use crate::commands::usage::UsageArgs;
use crate::commands::watch::WatchArgs;

/// The registry the CLI calls when not told otherwise (where `mesh up` runs it).
pub(crate) const DEFAULT_REGISTRY: &str = "http://127.0.0.1:50050";

/// Discover data products in the Woori Card data mesh and query them
/// straight from the domains that own them.
///
/// Examples:
///   mesh up                                   run the whole mesh locally
///   mesh products --search spending           find products
///   mesh describe payment.card_spending       owner, policy, columns, quality
///   mesh query payment.card_spending --filter 'tot_use_am > 10000000' --limit 20
///   mesh query customer.profiles --select seq,age --format csv > profiles.csv
///   mesh health                               is every endpoint serving?
///   mesh watch payment.card_spending          what changes, as it happens
///   mesh whoami                               who the services see calling
///
/// Calls carry the token of the registry's profile (written by `mesh up` and
/// `mesh login`), or MESH_TOKEN when it is set.
#[derive(Debug, Parser)]
#[command(name = "mesh", version, verbatim_doc_comment, propagate_version = true)]
pub(crate) struct Cli {
    /// The catalog registry; several URLs separated by commas are replicas
    /// of one catalog, tried in order while one cannot be reached (the
    /// first one's profile and cache are used).
    #[arg(long, global = true, env = "MESH_REGISTRY", default_value = DEFAULT_REGISTRY)]
    pub registry: String,

    /// How long to wait for a connection or a single answer, e.g. `10s`
    /// (a query's stream of rows may take longer).
    #[arg(long, global = true, env = "MESH_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// What the CLI trusts for `https://` services.
    #[command(flatten)]
    pub tls: mesh_grpc::ClientTlsArgs,

    /// Where the command's traces go (and, for `mesh up` and the serve
    /// commands, the services').
    #[command(flatten)]
    pub trace: mesh_grpc::telemetry::TraceArgs,

    /// The token calls carry: MESH_TOKEN, else the registry's profile.
    #[arg(skip)]
    pub credentials: mesh_grpc::Credentials,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The client settings alone (registry, timeout, TLS, credentials), for
    /// work that outlives the command's borrow of them.
    #[cfg(feature = "sql")]
    pub(crate) fn settings_only(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            timeout: self.timeout,
            tls: self.tls.clone(),
            trace: self.trace.clone(),
            credentials: self.credentials.clone(),
            command: Command::Whoami,
        }
    }

    /// The first registry URL given: profiles and the cache are kept under it.
    pub(crate) fn primary_registry(&self) -> &str {
        self.registry.split(',').map(str::trim).find(|u| !u.is_empty()).unwrap_or(DEFAULT_REGISTRY)
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List the domains that own products.
    Domains,
    /// List products, optionally filtered.
    Products(ProductsArgs),
    /// Show a product's owner, purpose, policy, lineage, quality, versions and columns.
    ///
    /// Examples:
    ///   mesh describe payment.card_spending
    ///   mesh describe payment.card_spending --format odcs > card_spending.odcs.yaml
    ///   mesh describe insight.segment_spending --format odps
    #[command(verbatim_doc_comment)]
    Describe(DescribeArgs),
    /// Query a product straight from its domain.
    Query(QueryArgs),
    /// Run SQL over the products you can see, each read from its owning
    /// domain under your agreement; or serve it over Flight SQL.
    #[cfg(feature = "sql")]
    Sql(Box<crate::commands::sql::SqlArgs>),
    /// Check every registered endpoint (or one) with gRPC health.
    Health(HealthArgs),
    /// Show the principal and roles the services see for your token.
    Whoami,
    /// Where a product comes from and who really reads it.
    Lineage(LineageArgs),
    /// Who read a product, as its domain recorded it (owners only).
    ///
    /// Examples:
    ///   mesh audit payment.card_spending --since 1h
    ///   mesh audit customer.profiles --principal ana
    #[command(verbatim_doc_comment)]
    Audit(AuditArgs),
    /// How much a product is read: reads, rows and bytes per day, refusals
    /// by reason, the slowest reads (owners only).
    ///
    /// Examples:
    ///   mesh usage payment.card_spending
    ///   mesh usage customer.profiles --since 7days --slowest 20
    #[command(verbatim_doc_comment)]
    Usage(UsageArgs),
    /// Follow the catalog's events as they happen: versions published,
    /// deprecations, endpoints, access decisions (those you may see).
    ///
    /// Examples:
    ///   mesh watch                                  everything from now on
    ///   mesh watch payment.card_spending --type 'mesh.product.*'
    ///   mesh watch --since 0 --count 20 | jq .type  the oldest 20 kept, as CloudEvents JSON
    ///   mesh watch --since 1523                     resume after event 1523
    #[command(verbatim_doc_comment)]
    Watch(WatchArgs),
    /// Have a product's events POSTed to a URL (webhooks): CloudEvents
    /// signed as Standard Webhooks, in order, retried until taken.
    ///
    /// Examples:
    ///   mesh subscribe payment.card_spending --url https://hooks.example.com/mesh
    ///   mesh subscribe customer.profiles --url https://hooks.example.com/mesh --type 'mesh.data.*'
    #[command(verbatim_doc_comment)]
    Subscribe(SubscribeArgs),
    /// List, renew or delete your webhook subscriptions.
    ///
    /// Examples:
    ///   mesh subscriptions list
    ///   mesh subscriptions renew sub_4f1c0e9a2b7d36e5c8a1f0b2
    ///   mesh subscriptions delete sub_4f1c0e9a2b7d36e5c8a1f0b2
    #[command(subcommand, verbatim_doc_comment)]
    Subscriptions(SubscriptionsCommand),
    /// Work on a product declared in a product file (before publishing it).
    #[command(subcommand)]
    Product(ProductCommand),
    /// Ask for access to a product, or decide on requests (owners).
    #[command(subcommand)]
    Access(AccessCommand),
    /// Sign in through your company's IdP (OAuth 2.0 device authorization).
    ///
    /// Prints a URL and a code to confirm in a browser, waits, then keeps the
    /// tokens in the registry's profile (mode 0600) and renews them with the
    /// refresh token. Example:
    ///   mesh login --issuer https://sso.example.com/realms/cards --client-id mesh-cli
    #[command(verbatim_doc_comment)]
    Login(LoginArgs),
    /// Run the registry and every domain locally, with generated data.
    #[cfg(feature = "local")]
    Up(UpArgs),
    /// Serve a domain's products from their product files.
    #[cfg(feature = "local")]
    #[command(subcommand)]
    Domain(crate::commands::domain::DomainCommand),
    /// Write the synthetic Woori Card customer-spending file.
    #[cfg(feature = "local")]
    Generate(GenerateArgs),
    /// Create a CA, a TLS certificate per service and the local issuer's key.
    ///
    /// For a mesh without a company PKI or IdP (compose's init service).
    /// Examples:
    ///   mesh init --dir /secrets --service registry --service payment
    ///   mesh init --dir ./secrets --service registry=10.0.0.2,registry.local
    #[command(verbatim_doc_comment)]
    Init(InitArgs),
    /// Issue a token with the local issuer, or print the token in use.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print shell completions.
    Completions(CompletionsArgs),
}

impl Command {
    /// Whether the command calls mesh services with the caller's token
    /// (the others host services, sign in or work offline).
    pub(crate) fn serves(&self) -> bool {
        match self {
            #[cfg(feature = "local")]
            Command::Up(_) | Command::Domain(_) => true,
            #[cfg(feature = "sql")]
            Command::Sql(args) => !args.calls_services(),
            _ => false,
        }
    }

    /// Whether the command calls services with the CLI's token.
    pub(crate) fn calls_services(&self) -> bool {
        match self {
            Command::Domains
            | Command::Products(_)
            | Command::Describe(_)
            | Command::Query(_)
            | Command::Health(_)
            | Command::Whoami
            | Command::Access(_)
            | Command::Audit(_)
            | Command::Usage(_)
            | Command::Watch(_)
            | Command::Subscribe(_)
            | Command::Subscriptions(_)
            | Command::Product(_)
            | Command::Lineage(_) => true,
            #[cfg(feature = "sql")]
            Command::Sql(args) => args.calls_services(),
            Command::Login(_) | Command::Init(_) | Command::Token(_) | Command::Completions(_) => false,
            #[cfg(feature = "local")]
            Command::Up(_) | Command::Generate(_) | Command::Domain(_) => false,
        }
    }
}
