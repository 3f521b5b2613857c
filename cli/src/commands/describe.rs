//! `mesh describe PRODUCT`: everything the catalog knows about a product.

use anyhow::Result;
use clap::ValueEnum;
use comfy_table::{Cell, Table};
use mesh_contracts::catalog::{
    Consumer, ListAgreementsRequest, ListEventsRequest, Product, ProductView, SchemaVersion,
};
use mesh_contracts::product::{AccessMode, Classification, ProductOptions, QualityResult};
use prost::Message;

use crate::cli::Cli;
use crate::registry::{Registry, Source};
use crate::style;

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

/// Prints `product` as JSON, ODCS or ODPS (`format`), fetching its input
/// products for the ODPS input ports.
async fn print_document(registry: &mut Registry, product: &Product, format: DescribeFormat) -> Result<()> {
    let links = mesh_standards::Links { registry: Some(registry.url().to_owned()) };
    let standard = match format {
        DescribeFormat::Odcs => Some(mesh_standards::Standard::Odcs),
        DescribeFormat::Odps => Some(mesh_standards::Standard::Odps),
        DescribeFormat::Json | DescribeFormat::Text => None,
    };
    let text = match standard {
        Some(standard) => {
            let mut inputs = Vec::new();
            for port in product.input_ports.iter().filter(|_| standard == mesh_standards::Standard::Odps) {
                if let Ok((entry, _)) = registry.product(&port.product, ProductView::Basic).await
                    && let Some(input) = entry.product
                {
                    inputs.push(input);
                }
            }
            mesh_standards::document(product, standard, &inputs, &links)
        }
        None => {
            let pool = prost_reflect::DescriptorPool::decode(mesh_contracts::FILE_DESCRIPTOR_SET)?;
            let json =
                mesh_grpc::rest::proto_json(&pool, "mesh.catalog.v1.Product", &product.encode_to_vec())
                    .map_err(|status| anyhow::anyhow!("{}", status.message()))?;
            let value: serde_json::Value = serde_json::from_slice(&json)?;
            format!("{}\n", serde_json::to_string_pretty(&value)?)
        }
    };
    print!("{text}");
    Ok(())
}

/// Prints the product's metadata and a table of its columns.
pub(crate) async fn run(cli: &Cli, args: &DescribeArgs) -> Result<()> {
    let mut registry = Registry::of(cli)?;
    let (entry, source) = registry.product(&args.product, ProductView::Full).await?;
    if let Source::Cache(fetched) = source {
        eprintln!(
            "note: the registry is unreachable; showing the local catalog cache from {}",
            humantime::format_rfc3339_seconds(fetched)
        );
    }
    let product = entry.product.unwrap_or_default();
    if args.format != DescribeFormat::Text {
        return print_document(&mut registry, &product, args.format).await;
    }
    println!("{}", about_table(&product));
    println!("{}", columns_table(&product));
    // A cached description has no agreements to show.
    if matches!(source, Source::Registry) {
        print_latest_events(&mut registry, &product.product_id).await;
        print_agreements_in_force(&mut registry, &product.product_id).await;
    }
    Ok(())
}

/// The product's last load and last version published, from the event log
/// (nothing when the caller may not see them).
async fn print_latest_events(registry: &mut Registry, product: &str) {
    let mut latest = Vec::new();
    for kind in ["mesh.data.loaded.v1", "mesh.product.version.published.v1"] {
        let request = ListEventsRequest {
            product: product.to_owned(),
            types: vec![kind.to_owned()],
            page_size: 1,
            newest_first: true,
            ..Default::default()
        };
        if let Ok(listed) = registry.events().list_events(request).await {
            latest.extend(listed.into_inner().events);
        }
    }
    if !latest.is_empty() {
        println!("latest events (mesh watch {} follows them):", style::safe(product));
        for event in &latest {
            println!("{}", crate::commands::watch::line(event));
        }
    }
}

/// The product's facts, one per line: owner, purpose, policy, access,
/// endpoints, lineage, data and quality, versions.
fn about_table(product: &Product) -> Table {
    let metadata = product.metadata.clone().unwrap_or_default();
    let mut about = style::table(&["", &product.product_id]);
    let mut line = |key: &str, value: Cell| {
        about.add_row(vec![style::cell(key), value]);
    };
    line("title", style::cell(&metadata.title));
    line("description", style::cell(&product.description));
    line("owner", style::cell(format!("{} <{}>", metadata.owner_team, metadata.owner_contact)));
    line("purpose", style::cell(&metadata.purpose));
    line("source", style::cell(&metadata.source));
    line("policy", style::cell(&metadata.policy));
    line("freshness", style::cell(&metadata.freshness));
    line("tags", style::cell(metadata.tags.join(", ")));
    line("access", style::cell(access_words(&metadata)));
    line("status", style::product_status(product));
    if let Some(deprecation) = &product.deprecation {
        line("deprecated", style::coloured(&deprecation.message, None));
    }
    let endpoints: Vec<String> =
        product.endpoints.iter().map(|e| format!("{} ({})", e.uri, style::status_word(e.status()))).collect();
    line("endpoints", style::cell(endpoints.join("\n")));
    line("service", style::cell(format!("{} (rows: {})", product.service, product.row_type)));
    if !product.input_ports.is_empty() {
        let ports: Vec<String> = product
            .input_ports
            .iter()
            .map(|p| format!("{} ({})", p.product, style::status_word(p.status())))
            .collect();
        line("lineage", style::cell(format!("built from {}", ports.join(", "))));
    }
    if let Some(data) = &product.data {
        let loaded = style::time(data.last_loaded_time.as_ref()).unwrap_or_else(|| "never".to_owned());
        line("data", style::cell(format!("{} rows, loaded {loaded}", data.row_count)));
        let all_passed = data.quality_results.iter().all(|q| q.passed);
        line("quality", style::coloured(quality_text(&data.quality_results), Some(all_passed)));
        line("read by", style::cell(consumers_text(&data.consumers, 10)));
    }
    line("versions", style::cell(versions_text(&product.versions)));
    about
}

/// Each quality rule's verdict, one per line.
fn quality_text(results: &[QualityResult]) -> String {
    let lines: Vec<String> = results
        .iter()
        .map(|q| {
            let verdict = if q.passed { "pass".to_owned() } else { format!("FAIL ({} rows)", q.failed_rows) };
            format!("{verdict}: {}", q.description)
        })
        .collect();
    lines.join("\n")
}

/// Each schema version, oldest first: number, major, fingerprint, who, what changed.
fn versions_text(versions: &[SchemaVersion]) -> String {
    let lines: Vec<String> = versions
        .iter()
        .map(|v| {
            let by =
                if v.registered_by.is_empty() { String::new() } else { format!(" by {}", v.registered_by) };
            format!(
                "v{} (major {}) {}{by}: {}",
                v.version,
                v.major_version,
                &v.fingerprint[..12.min(v.fingerprint.len())],
                v.changes.join("; ")
            )
        })
        .collect();
    lines.join("\n")
}

/// The columns with their type, description, classification (identifying
/// ones not marked green), source column and unit.
fn columns_table(product: &Product) -> Table {
    let mut columns =
        style::table(&["column", "type", "description", "classification", "source column", "unit"]);
    for column in &product.columns {
        let classification = column.classification();
        let sensitive = matches!(
            classification,
            Classification::PiiIdentifier | Classification::QuasiIdentifier | Classification::Sensitive
        );
        columns.add_row(vec![
            style::cell(&column.name),
            style::cell(&column.r#type),
            style::cell(&column.description),
            style::coloured(classification_word(classification), if sensitive { None } else { Some(true) }),
            style::cell(&column.source_column),
            style::cell(&column.unit),
        ]);
    }
    columns
}

/// The product's agreements in force: all of them for its owners, the
/// caller's own for everyone else (nothing when the registry will not say).
async fn print_agreements_in_force(registry: &mut Registry, product: &str) {
    let request = ListAgreementsRequest { product: product.to_owned(), ..Default::default() };
    if let Ok(listed) = registry.access().list_agreements(request).await {
        let agreements = listed.into_inner().agreements;
        if agreements.is_empty() {
            println!("no agreement of yours is in force (mesh access request {product})");
        } else {
            println!("agreements in force:");
            crate::commands::access::print_agreements(&agreements);
        }
    }
}

/// Who really read the product in the last 30 days, as its domain
/// reported: at most `shown` lines.
pub(crate) fn consumers_text(consumers: &[Consumer], shown: usize) -> String {
    if consumers.is_empty() {
        return "nobody in the last 30 days".to_owned();
    }
    let mut lines: Vec<String> = consumers
        .iter()
        .take(shown)
        .map(|c| {
            let last = style::time(c.last_read_time.as_ref()).unwrap_or_default();
            format!("{}: {} reads, {} rows, last {last}", c.principal, c.reads, c.rows)
        })
        .collect();
    if consumers.len() > shown {
        lines.push(format!("and {} more (mesh lineage shows all)", consumers.len() - shown));
    }
    lines.join("\n")
}

/// Who may read the product, and what its rules grant at once.
fn access_words(metadata: &ProductOptions) -> String {
    let mode = match metadata.access_mode() {
        AccessMode::Open => "open: any signed-in caller reads the public and internal columns",
        _ => "by agreement: mesh access request",
    };
    let rules: Vec<String> = metadata
        .auto_approvals
        .iter()
        .map(|rule| {
            let classes: Vec<&str> = rule
                .classifications
                .iter()
                .filter_map(|c| Classification::try_from(*c).ok())
                .map(classification_word)
                .collect();
            let identifiers = if rule.raw_identifiers { "raw" } else { "as pseudonyms" };
            format!(
                "granted at once to role {}: {} columns, identifiers {identifiers}, up to {} days",
                rule.role,
                classes.join("/"),
                rule.max_days
            )
        })
        .collect();
    std::iter::once(mode.to_owned()).chain(rules).collect::<Vec<_>>().join("\n")
}

/// A classification in the words a privacy review uses.
fn classification_word(classification: Classification) -> &'static str {
    match classification {
        Classification::Unspecified => "unclassified",
        Classification::Public => "public",
        Classification::Internal => "internal",
        Classification::QuasiIdentifier => "quasi-identifier",
        Classification::PiiIdentifier => "PII identifier",
        Classification::Sensitive => "sensitive",
    }
}
