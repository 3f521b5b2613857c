//! `mesh product init NAME --from data.csv`: a contract and a product file
//! written from a CSV file's header, each column's type inferred from its
//! values (whole numbers, decimals, true/false, else text). Classifying the
//! columns is left to the team: until each has a classification, `mesh
//! product check` (and the domain server) refuse the product and list them.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Rows read to infer each column's type.
const SAMPLE_ROWS: usize = 1000;

/// Flags of `mesh product init`.
#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// The product id, `<domain>.<name>`, e.g. `merchant.shops`.
    pub product: String,
    /// The CSV file whose header names the columns.
    #[arg(long = "from", value_name = "CSV")]
    pub from: PathBuf,
    /// Where to write the contract and the product file [default: beside the CSV file].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Overwrite files already there.
    #[arg(long)]
    pub force: bool,
}

/// A column's inferred protobuf type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int64,
    Double,
    Bool,
    Text,
}

impl Kind {
    fn proto(self) -> &'static str {
        match self {
            Kind::Int64 => "int64",
            Kind::Double => "double",
            Kind::Bool => "bool",
            Kind::Text => "string",
        }
    }

    /// The narrowest kind holding both.
    fn widen(self, value: &str) -> Kind {
        let value = value.trim();
        if value.is_empty() {
            return self;
        }
        let fits = |kind: Kind| match kind {
            Kind::Int64 => value.parse::<i64>().is_ok(),
            Kind::Double => value.parse::<f64>().is_ok_and(f64::is_finite),
            Kind::Bool => matches!(value, "true" | "false" | "TRUE" | "FALSE"),
            Kind::Text => true,
        };
        match self {
            Kind::Int64 if fits(Kind::Int64) => Kind::Int64,
            Kind::Int64 | Kind::Double if fits(Kind::Double) => Kind::Double,
            Kind::Bool if fits(Kind::Bool) => Kind::Bool,
            _ => Kind::Text,
        }
    }
}

/// Writes the contract and the product file.
pub(crate) fn run(args: &InitArgs) -> Result<()> {
    let (domain, name) =
        args.product.split_once('.').filter(|(d, n)| is_name(d) && is_name(n)).with_context(|| {
            format!("`{}` is no product id; write `<domain>.<name>`, e.g. merchant.shops", args.product)
        })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&args.from)
        .with_context(|| format!("cannot read {}", args.from.display()))?;
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("{} has no header", args.from.display()))?
        .iter()
        .map(str::to_owned)
        .collect();
    if header.is_empty() {
        bail!("{} has no columns in its header", args.from.display());
    }
    let mut kinds = vec![None::<Kind>; header.len()];
    for record in reader.records().take(SAMPLE_ROWS) {
        let record = record.with_context(|| format!("cannot read {}", args.from.display()))?;
        for (kind, value) in kinds.iter_mut().zip(record.iter()) {
            if !value.trim().is_empty() {
                *kind = Some(kind.map_or_else(|| first_kind(value), |k| k.widen(value)));
            }
        }
    }
    let fields = field_names(&header);
    let folder =
        args.dir.clone().unwrap_or_else(|| args.from.parent().unwrap_or(Path::new(".")).to_path_buf());
    let proto_path = folder.join(format!("{name}.proto"));
    let product_path = folder.join(format!("{name}.product.yaml"));
    for path in [&proto_path, &product_path] {
        if path.exists() && !args.force {
            bail!("{} exists already; move it away, or write over it with --force", path.display());
        }
    }
    let service = format!("{}Service", camel(name));
    let row = format!("{}Row", camel(name));
    let mut proto = format!(
        "syntax = \"proto3\";\npackage {domain}.{name}.v1;\nimport \"mesh/product/v1/options.proto\";\nimport \
         \"mesh/product/v1/query.proto\";\n\n// One row of {product}. Classify every column before publishing: \
         CLASSIFICATION_PUBLIC,\n// _INTERNAL, _SENSITIVE, _QUASI_IDENTIFIER or _PII_IDENTIFIER (identifiers are \
         delivered as pseudonyms).\nmessage {row} {{\n",
        product = args.product
    );
    for (number, ((field, column), kind)) in fields.iter().zip(&header).zip(&kinds).enumerate() {
        let kind = kind.unwrap_or(Kind::Text).proto();
        let column = column.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = write!(
            proto,
            "  // {column}.\n  {kind} {field} = {} [(mesh.product.v1.column) = {{\n    description: \"{column}\", \
             source_column: \"{column}\"\n    // classification: CLASSIFICATION_...\n  }}];\n",
            number + 1
        );
    }
    let _ = write!(
        proto,
        "}}\n\n// A batch of rows.\nmessage QueryResponse {{\n  repeated {row} rows = 1;\n  string resume_token = \
         2;\n}}\n\n// {product}.\nservice {service} {{\n  option (mesh.product.v1.product) = {{\n    title: \"{name}\"\n    \
         owner_team: \"\"\n    owner_contact: \"\"\n    purpose: \"\"\n    source: \"{source}\"\n  }};\n  // Streams \
         the rows.\n  rpc Query(mesh.product.v1.QueryRequest) returns (stream QueryResponse);\n  // Describes the \
         product.\n  rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse);\n}}\n",
        product = args.product,
        source = args.from.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
    );
    let csv_path = relative(&args.from, &folder);
    let product_file = format!(
        "# yaml-language-server: $schema=schemas/product-file.schema.json\nproduct: {product}\ncontract: {{ proto: \
         {name}.proto, service: {domain}.{name}.v1.{service} }}\n# The columns that identify a row (check: the first \
         column is a guess).\nkey: [{key}]\nsource: {{ csv: {csv} }}\n",
        product = args.product,
        key = fields[0],
        csv = csv_path.display(),
    );
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot make {}", folder.display()))?;
    std::fs::write(&proto_path, proto).with_context(|| format!("cannot write {}", proto_path.display()))?;
    std::fs::write(&product_path, product_file)
        .with_context(|| format!("cannot write {}", product_path.display()))?;
    println!("wrote {} and {}", proto_path.display(), product_path.display());
    println!(
        "next: classify each of the {} columns in {}, check the key, then `mesh product check {}`",
        fields.len(),
        proto_path.display(),
        product_path.display()
    );
    Ok(())
}

fn first_kind(value: &str) -> Kind {
    [Kind::Int64, Kind::Double, Kind::Bool]
        .into_iter()
        .find(|&kind| kind.widen(value) == kind)
        .unwrap_or(Kind::Text)
}

fn is_name(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Header names as proto field names: lower case, `_` for anything else,
/// a letter first, each once.
fn field_names(header: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    header
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let mut name: String = column
                .trim()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
                .collect();
            if !name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                name = format!(
                    "column_{}{}",
                    i + 1,
                    if name.is_empty() { String::new() } else { format!("_{name}") }
                );
            }
            let mut unique = name.clone();
            let mut n = 2;
            while !seen.insert(unique.clone()) {
                unique = format!("{name}_{n}");
                n += 1;
            }
            unique
        })
        .collect()
}

fn camel(name: &str) -> String {
    name.split('_').filter(|p| !p.is_empty()).map(|p| p[..1].to_ascii_uppercase() + &p[1..]).collect()
}

/// `path` relative to `folder` when it is inside it, else as given.
fn relative(path: &Path, folder: &Path) -> PathBuf {
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    absolute(path).strip_prefix(absolute(folder)).map(Path::to_path_buf).unwrap_or_else(|_| absolute(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_widen_and_names_are_fields() {
        assert_eq!(first_kind("12"), Kind::Int64);
        assert_eq!(Kind::Int64.widen("1.5"), Kind::Double);
        assert_eq!(Kind::Double.widen("x"), Kind::Text);
        assert_eq!(first_kind("true"), Kind::Bool);
        assert_eq!(Kind::Bool.widen("3"), Kind::Text);
        let header = ["SHOP_ID", "Sales (KRW)", "2024", "shop_id", ""].map(str::to_owned);
        assert_eq!(
            field_names(&header),
            ["shop_id", "sales__krw_", "column_3_2024", "shop_id_2", "column_5"]
        );
        assert_eq!(camel("card_spending"), "CardSpending");
    }
}
