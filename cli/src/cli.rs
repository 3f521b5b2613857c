//! The command line: global flags and one subcommand per file in `commands/`.

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

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

    /// The token calls carry: MESH_TOKEN, else the registry's profile.
    #[arg(skip)]
    pub credentials: mesh_grpc::Credentials,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
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
            | Command::Lineage(_) => true,
            Command::Login(_) | Command::Init(_) | Command::Token(_) | Command::Completions(_) => false,
            #[cfg(feature = "local")]
            Command::Up(_) | Command::Generate(_) => false,
        }
    }
}

/// `mesh token ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Sign a token with the local issuer (created in --issuer-dir on first use).
    ///
    /// Examples:
    ///   mesh token issue --sub kim --role analyst --ttl 8h
    ///   export MESH_TOKEN=$(mesh token issue --sub ci --role admin --ttl 1h)
    ///   mesh token issue --sub service:insight --for payment --ttl 10m
    #[command(verbatim_doc_comment)]
    Issue(TokenIssueArgs),
    /// Print the token calls carry (MESH_TOKEN, else the registry's
    /// profile), or with --for a short-lived token for one domain, got by
    /// token exchange (RFC 8693) at the registry (or --token-exchange-url).
    ///
    /// Examples:
    ///   mesh token print
    ///   grpcurl -H "authorization: Bearer $(mesh token print --for payment)" 127.0.0.1:50052 list
    ///   curl -H "authorization: Bearer $(mesh token print --for payment)" \
    ///     localhost:50052/v1/products/payment.card_spending/rows
    #[command(verbatim_doc_comment)]
    Print(TokenPrintArgs),
}

/// Flags of `mesh token print`.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenPrintArgs {
    /// Print a token for this domain (e.g. `payment`), good there alone.
    #[arg(long = "for", value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Where tokens are exchanged [default: the registry's /v1/token]; a
    /// company IdP's token endpoint when it supports token exchange.
    #[arg(long, env = "MESH_TOKEN_EXCHANGE_URL")]
    pub token_exchange_url: Option<String>,
}

/// Flags of `mesh token issue`.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenIssueArgs {
    /// The principal the token names (its `sub`).
    #[arg(long)]
    pub sub: String,
    /// A role the token grants; repeat for several.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// How long the token lives, at most 30 days.
    #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// The audience the token is for [default: the registry's].
    #[arg(long, default_value = mesh_grpc::issuer::DEFAULT_AUDIENCE)]
    pub audience: String,
    /// Make the token for this domain (e.g. `payment`) instead, good there
    /// alone: its audience is `urn:woori-mesh:domain:<DOMAIN>`.
    #[arg(long = "for", value_name = "DOMAIN", conflicts_with = "audience")]
    pub domain: Option<String>,
    /// Where the local issuer keeps its key and JWKS.
    #[arg(long, env = "MESH_ISSUER_DIR", default_value = ".mesh/issuer")]
    pub issuer_dir: std::path::PathBuf,
}

/// `mesh access ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AccessCommand {
    /// Ask for access to a product: approved at once when one of the
    /// product's rules covers it, otherwise the owners decide.
    ///
    /// Examples:
    ///   mesh access request payment.card_spending --purpose "segment report" --columns bas_yh,seq
    ///   mesh access request customer.profiles --purpose "age mix" --columns age,sex_cd --scope 'bas_yh >= "2024Q1"' --days 30
    #[command(verbatim_doc_comment)]
    Request(AccessRequestArgs),
    /// List agreements: a product's (its owners see all) or your own.
    List(AccessListArgs),
    /// Approve a pending request (the product's owners).
    Approve(AccessDecisionArgs),
    /// Deny a pending request, saying why (the product's owners).
    Deny(AccessDenyArgs),
    /// End an agreement early (owners, or the consumer withdrawing it).
    Revoke(AccessDecisionArgs),
}

/// Flags of `mesh lineage`.
#[derive(Debug, clap::Args)]
pub(crate) struct LineageArgs {
    /// The product, e.g. `insight.segment_spending`.
    pub product: String,
}

/// Flags of `mesh audit`.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// The product, e.g. `payment.card_spending`.
    pub product: String,
    /// Only reads started this long ago or later, e.g. `1h`, `7days`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub since: Option<std::time::Duration>,
    /// Only this principal's reads.
    #[arg(long)]
    pub principal: Option<String>,
    /// The most reads to show, newest first.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

/// Flags of `mesh access request`.
#[derive(Debug, clap::Args)]
pub(crate) struct AccessRequestArgs {
    /// The product, e.g. `payment.card_spending`.
    pub product: String,
    /// What the data is for.
    #[arg(long)]
    pub purpose: String,
    /// The columns wanted, comma separated [default: every column].
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Identifier columns wanted as real values, not pseudonyms.
    #[arg(long, value_delimiter = ',')]
    pub raw: Vec<String>,
    /// The rows wanted, as a filter, e.g. `bas_yh >= "2024Q1"` [default: all].
    #[arg(long)]
    pub scope: Option<String>,
    /// How many days access should last [default: 90].
    #[arg(long, conflicts_with = "until", value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: Option<u32>,
    /// The day access should end, YYYY-MM-DD.
    #[arg(long)]
    pub until: Option<String>,
}

/// Flags of `mesh access list`.
#[derive(Debug, clap::Args)]
pub(crate) struct AccessListArgs {
    /// Only this product's agreements.
    pub product: Option<String>,
    /// Include denied, revoked and expired ones.
    #[arg(long)]
    pub all: bool,
}

/// Flags of `mesh access approve` and `revoke`.
#[derive(Debug, clap::Args)]
pub(crate) struct AccessDecisionArgs {
    /// The agreement, e.g. `agreements/7` or `7`.
    pub agreement: String,
    /// Why, for the record.
    #[arg(long, default_value = "")]
    pub note: String,
}

/// Flags of `mesh access deny`.
#[derive(Debug, clap::Args)]
pub(crate) struct AccessDenyArgs {
    /// The agreement, e.g. `agreements/7` or `7`.
    pub agreement: String,
    /// Why, for the consumer.
    #[arg(long)]
    pub note: String,
}

/// Flags of `mesh init`.
#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// The folder to write to (made with mode 0700; keys get 0600).
    #[arg(long, env = "MESH_INIT_DIR")]
    pub dir: std::path::PathBuf,
    /// A service to make a certificate for: NAME (valid for NAME, localhost
    /// and 127.0.0.1) or NAME=HOST,HOST...; repeat for each.
    #[arg(long = "service")]
    pub services: Vec<String>,
    /// Make a new CA and certificates even if the folder has them.
    #[arg(long)]
    pub force: bool,
    /// Where the local issuer's signing key goes [default: <dir>/issuer]:
    /// somewhere only the registry mounts, so no domain can sign tokens.
    /// Its public JWKS is copied to <dir>/jwks.json for every service.
    #[arg(long, env = "MESH_INIT_ISSUER_DIR")]
    pub issuer_dir: Option<std::path::PathBuf>,
    /// Put each service's TLS key in a folder of its own, <keys-dir>/<name>/key.pem,
    /// so that each container mounts its own key alone [default: beside the
    /// certificates, <dir>/<name>-key.pem].
    #[arg(long, env = "MESH_INIT_KEYS_DIR")]
    pub keys_dir: Option<std::path::PathBuf>,
}

/// Flags of `mesh login`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// The IdP's issuer URL (its OIDC discovery document is read from it).
    #[arg(long, env = "MESH_LOGIN_ISSUER")]
    pub issuer: String,
    /// The CLI's client id registered at the IdP.
    #[arg(long, env = "MESH_LOGIN_CLIENT_ID")]
    pub client_id: String,
    /// Scopes to ask for, space separated.
    #[arg(long, default_value = "openid offline_access")]
    pub scope: String,
}

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

/// Flags of `mesh describe`.
#[derive(Debug, clap::Args)]
pub(crate) struct DescribeArgs {
    /// The product, e.g. `payment.card_spending`.
    pub product: String,

    /// What to print: the description for people, the catalog's record as
    /// JSON, or the contract in the open standards (ODCS v3 data contract,
    /// ODPS v1 data product; YAML that `datacontract lint` reads).
    #[arg(long, value_enum, default_value = "text")]
    pub format: DescribeFormat,
}

/// Output formats of `mesh describe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DescribeFormat {
    /// Tables for people.
    Text,
    /// The catalog's product record in protobuf's JSON mapping.
    Json,
    /// The ODCS v3.1.0 data contract, as YAML.
    Odcs,
    /// The ODPS v1.0.0 data product, as YAML.
    Odps,
}

/// Output formats of `mesh query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A table (the default on a terminal), capped at `--max-rows`.
    Table,
    /// Comma-separated values with a header (the default in a pipe).
    Csv,
    /// One JSON array of row objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// Flags of `mesh query`.
#[derive(Debug, clap::Args)]
pub(crate) struct QueryArgs {
    /// The product, e.g. `payment.card_spending`.
    pub product: String,
    /// Filter, e.g. `tot_use_am > 1000000 AND hous_sido_nm = "서울"`.
    #[arg(long, short)]
    pub filter: Option<String>,
    /// Columns to return, comma separated, e.g. `seq,tot_use_am`.
    #[arg(long, short, value_delimiter = ',')]
    pub select: Vec<String>,
    /// Order, e.g. `tot_use_am desc, seq`.
    #[arg(long)]
    pub order_by: Option<String>,
    /// Return at most this many rows.
    #[arg(long, short)]
    pub limit: Option<u64>,
    /// Output format [default: table on a terminal, csv otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Rows a table shows at most; the rest are counted, not printed.
    #[arg(long, default_value_t = 50)]
    pub max_rows: usize,
    /// Call this endpoint instead of the one in the catalog (e.g. when the
    /// registry is down): `http://127.0.0.1:50052`.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// End the query with an error when the domain sends nothing for this
    /// long once rows have started, e.g. `30s`.
    #[arg(long, env = "MESH_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
}

/// Flags of `mesh health`.
#[derive(Debug, clap::Args)]
pub(crate) struct HealthArgs {
    /// Check only this endpoint (exit 1 unless it is serving), e.g. in a
    /// container health check.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// With `--endpoint`: the service to check; empty means the whole server.
    #[arg(long, default_value = "", requires = "endpoint")]
    pub service: String,
}

/// Flags of `mesh up`.
#[cfg(feature = "local")]
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Where every service keeps its files (SQLite database, audit log, keys), one folder each.
    #[arg(long, env = "MESH_DATA_DIR", default_value = ".mesh")]
    pub data_dir: std::path::PathBuf,
    /// Customers to generate on first start.
    #[arg(long, default_value_t = woori_data::generator::DEFAULT_CUSTOMERS)]
    pub customers: u64,
    /// Quarters to generate on first start (from 2024Q1).
    #[arg(long, default_value_t = woori_data::generator::DEFAULT_QUARTERS)]
    pub quarters: u32,
    /// Port of the registry; the customer, payment and insight domains take the next three.
    #[arg(long, default_value_t = 50050)]
    pub base_port: u16,
    /// How long a registration lasts without renewal (the domains renew at a third of it).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease_ttl: std::time::Duration,
    /// The limits every domain serves under.
    #[command(flatten)]
    pub limits: mesh_local::ServeLimits,
    /// Serve TLS, with a CA and a certificate for 127.0.0.1 made in
    /// `<data-dir>/tls` (the profile names the CA for other terminals).
    #[arg(long)]
    pub tls: bool,
    /// Keep the domains' data on this PostgreSQL server (a schema per
    /// domain) instead of SQLite files, e.g.
    /// `postgres://mesh:PASSWORD@127.0.0.1:5432/mesh`.
    #[arg(long, env = "MESH_POSTGRES_URL", hide_env_values = true, value_name = "URL")]
    pub postgres: Option<String>,
}

/// Flags of `mesh generate`.
#[cfg(feature = "local")]
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
}

/// Flags of `mesh completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}
