//! `mesh describe PRODUCT`: everything the catalog knows about a product.

use anyhow::Result;
use comfy_table::Cell;
use mesh_contracts::catalog::ProductView;
use mesh_contracts::product::Classification;

use crate::cli::{Cli, DescribeArgs};
use crate::registry::{Registry, Source};
use crate::style;

/// Prints the product's metadata and a table of its columns.
pub(crate) async fn run(cli: &Cli, args: &DescribeArgs) -> Result<()> {
    let mut registry = Registry::new(&cli.registry, cli.timeout)?;
    let (entry, source) = registry.product(&args.product, ProductView::Full).await?;
    if let Source::Cache(fetched) = source {
        eprintln!(
            "note: the registry is unreachable; showing the local catalog cache from {}",
            humantime::format_rfc3339_seconds(fetched)
        );
    }
    let product = entry.product.unwrap_or_default();
    let metadata = product.metadata.clone().unwrap_or_default();

    let mut about = style::table(&["", &product.product_id]);
    let mut line = |key: &str, value: Cell| {
        about.add_row(vec![Cell::new(key), value]);
    };
    line("title", Cell::new(&metadata.title));
    line("description", Cell::new(&product.description));
    line("owner", Cell::new(format!("{} <{}>", metadata.owner_team, metadata.owner_contact)));
    line("purpose", Cell::new(&metadata.purpose));
    line("source", Cell::new(&metadata.source));
    line("policy", Cell::new(&metadata.policy));
    line("freshness", Cell::new(&metadata.freshness));
    line("tags", Cell::new(metadata.tags.join(", ")));
    line("status", style::product_status(&product));
    if let Some(deprecation) = &product.deprecation {
        line("deprecated", style::coloured(&deprecation.message, None));
    }
    let endpoints: Vec<String> =
        product.endpoints.iter().map(|e| format!("{} ({})", e.uri, style::status_word(e.status()))).collect();
    line("endpoints", Cell::new(endpoints.join("\n")));
    line("service", Cell::new(format!("{} (rows: {})", product.service, product.row_type)));
    if !product.input_ports.is_empty() {
        let ports: Vec<String> = product
            .input_ports
            .iter()
            .map(|p| format!("{} ({})", p.product, style::status_word(p.status())))
            .collect();
        line("lineage", Cell::new(format!("built from {}", ports.join(", "))));
    }
    if let Some(data) = &product.data {
        let loaded = data
            .last_loaded_time
            .as_ref()
            .and_then(|t| std::time::SystemTime::try_from(*t).ok())
            .map(|t| humantime::format_rfc3339_seconds(t).to_string())
            .unwrap_or_else(|| "never".to_owned());
        line("data", Cell::new(format!("{} rows, loaded {loaded}", data.row_count)));
        let quality: Vec<String> = data
            .quality_results
            .iter()
            .map(|q| {
                let verdict =
                    if q.passed { "pass".to_owned() } else { format!("FAIL ({} rows)", q.failed_rows) };
                format!("{verdict}: {}", q.description)
            })
            .collect();
        let all_passed = data.quality_results.iter().all(|q| q.passed);
        line("quality", style::coloured(quality.join("\n"), Some(all_passed)));
    }
    let versions: Vec<String> = product
        .versions
        .iter()
        .map(|v| {
            format!(
                "v{} (major {}) {}: {}",
                v.version,
                v.major_version,
                &v.fingerprint[..12.min(v.fingerprint.len())],
                v.changes.join("; ")
            )
        })
        .collect();
    line("versions", Cell::new(versions.join("\n")));
    println!("{about}");

    let mut columns =
        style::table(&["column", "type", "description", "classification", "source column", "unit"]);
    for column in &product.columns {
        let classification = column.classification();
        let sensitive = matches!(
            classification,
            Classification::PiiIdentifier | Classification::QuasiIdentifier | Classification::Sensitive
        );
        columns.add_row(vec![
            Cell::new(&column.name),
            Cell::new(&column.r#type),
            Cell::new(&column.description),
            style::coloured(classification_word(classification), if sensitive { None } else { Some(true) }),
            Cell::new(&column.source_column),
            Cell::new(&column.unit),
        ]);
    }
    println!("{columns}");
    Ok(())
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
