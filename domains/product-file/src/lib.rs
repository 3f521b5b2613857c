//! Product files: a data product declared in YAML (its contract, key,
//! indexes, source, quality rules and refresh), checked against the JSON
//! Schema published in the repository (`schemas/product-file.schema.json`),
//! every mistake reported with its file, line and column.
//!
//! ```yaml
//! product: merchant.shops
//! contract: { proto: shops.proto, service: merchant.shops.v1.ShopsService }
//! key: [shop_id]
//! source: { csv: shops.csv }
//! quality:
//!   - { name: sales_not_negative, holds: "sales >= 0" }
//! ```

mod declared;
mod marked;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use declared::{Declared, declare};

use serde::Deserialize;

/// The JSON Schema every product file is checked against.
pub const SCHEMA: &str = include_str!("../../../schemas/product-file.schema.json");

/// A product file, checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductFile {
    /// The product id, e.g. `merchant.shops`.
    pub product: String,
    /// Its contract.
    pub contract: Contract,
    /// The contract's major version (raised to publish a breaking change).
    #[serde(default = "first_major")]
    pub major_version: u32,
    /// The table holding its rows (default: the name after the dot).
    #[serde(default)]
    pub table: Option<String>,
    /// Columns identifying a row.
    pub key: Vec<String>,
    /// Columns with an index of their own.
    #[serde(default)]
    pub indexes: Vec<String>,
    /// Columns holding amounts (never negative).
    #[serde(default)]
    pub amounts: Vec<String>,
    /// Where the rows come from.
    pub source: Source,
    /// Conditions every row meets.
    #[serde(default)]
    pub quality: Vec<QualityRule>,
    /// When the data is loaded again.
    #[serde(default)]
    pub refresh: Refresh,
    /// The file it was read from.
    #[serde(skip)]
    pub path: PathBuf,
    /// Where each value is in the file, by JSON pointer.
    #[serde(skip)]
    places: HashMap<String, (usize, usize)>,
}

impl ProductFile {
    /// The folder its relative paths start from.
    pub fn folder(&self) -> &Path {
        match self.path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => Path::new("."),
        }
    }

    /// The table holding its rows: `table`, or the product's name after the dot.
    pub fn table(&self) -> &str {
        self.table.as_deref().unwrap_or_else(|| self.product.split_once('.').map_or("", |(_, name)| name))
    }

    /// `message`, said of the value at `pointer` (a JSON pointer such as
    /// `/key/0`) where it is in the file.
    pub fn mistake(&self, pointer: &str, message: impl Into<String>) -> Mistake {
        let (line, column) = place(&self.places, pointer);
        Mistake { file: self.path.clone(), line, column, message: message.into() }
    }
}

fn first_major() -> u32 {
    1
}

/// A product's contract.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// The `.proto` file, relative to the product file.
    pub proto: PathBuf,
    /// The product service's full name.
    pub service: String,
}

/// Where a product's rows come from (exactly one kind).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// A CSV file, relative to the product file.
    #[serde(default)]
    pub csv: Option<PathBuf>,
    /// A tab-separated file.
    #[serde(default)]
    pub tsv: Option<PathBuf>,
    /// A PostgreSQL table or view, `schema.name`.
    #[serde(default)]
    pub postgres: Option<String>,
    /// SQL over input products.
    #[serde(default)]
    pub sql: Option<Derived>,
    /// The text encoding of a file (`auto`, `utf-8`, `euc-kr`).
    #[serde(default)]
    pub encoding: Option<String>,
    /// Columns of a CSV or TSV file the product does not publish (any other
    /// column the contract lacks is refused).
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// A source file: where it is and how its fields are separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The pointer of its entry in the product file (`/source/csv`).
    pub pointer: &'static str,
    /// Its path, relative to the working directory.
    pub path: PathBuf,
    /// Its path as the product file gives it.
    pub written: PathBuf,
    /// `b','` or `b'\t'`.
    pub delimiter: u8,
}

impl Source {
    /// The CSV or TSV file, found from `folder`; `None` for other sources.
    pub fn file(&self, folder: &Path) -> Option<SourceFile> {
        let (pointer, path, delimiter) = match (&self.csv, &self.tsv) {
            (Some(path), _) => ("/source/csv", path, b','),
            (_, Some(path)) => ("/source/tsv", path, b'\t'),
            _ => return None,
        };
        Some(SourceFile { pointer, path: joined(folder, path), written: path.clone(), delimiter })
    }
}

/// `path` from `folder`, with `.` and `name/..` taken out (as written, not
/// resolved on disk), so logs and load records name the file plainly.
pub fn joined(folder: &Path, path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in folder.join(path).components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

/// A derived product's SQL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    /// The products it reads.
    pub inputs: Vec<String>,
    /// The query.
    pub query: String,
}

/// A quality rule: an SQL condition every row meets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityRule {
    /// Its name.
    pub name: String,
    /// What it checks, in words.
    #[serde(default)]
    pub description: String,
    /// The condition.
    pub holds: String,
}

/// When a product's data is loaded again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    /// When the source file changes.
    #[serde(default)]
    pub when_source_changes: bool,
    /// On a schedule, e.g. `1h`.
    #[serde(default)]
    pub every: Option<String>,
    /// When an input product publishes a load.
    #[serde(default)]
    pub when_inputs_load: bool,
}

/// One mistake in a product file, where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct Mistake {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// Every mistake of a file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct Mistakes(pub Vec<Mistake>);

/// Reads and checks the product file at `path`.
pub fn read(path: &Path) -> Result<ProductFile, Mistakes> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Mistakes(vec![Mistake {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            message: format!("cannot be read: {e}"),
        }])
    })?;
    parse(&text, path)
}

/// Checks `text`, the product file `file`.
pub fn parse(text: &str, file: &Path) -> Result<ProductFile, Mistakes> {
    let at = |(line, column): (usize, usize), message: String| Mistake {
        file: file.to_path_buf(),
        line,
        column,
        message,
    };
    let marked = marked::parse(text).map_err(|(line, column, words)| {
        Mistakes(vec![at((line, column), format!("is not YAML: {words}"))])
    })?;
    let schema: serde_json::Value = serde_json::from_str(SCHEMA).expect("the product file schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the product file schema compiles");
    let mut mistakes: Vec<Mistake> = validator
        .iter_errors(&marked.value)
        .map(|error| {
            let pointer = error.instance_path().as_str().to_owned();
            // A field that should not be there: where it is.
            let at_field = match error.kind() {
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
                    .first()
                    .map(|name| format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"))),
                _ => None,
            };
            let placed = place(&marked.places, at_field.as_deref().unwrap_or(&pointer));
            at(placed, explained(&pointer, &error.to_string()))
        })
        .collect();
    if mistakes.is_empty() {
        let mut read: ProductFile = serde_json::from_value(marked.value)
            .map_err(|e| Mistakes(vec![at((1, 1), format!("cannot be read: {e}"))]))?;
        read.path = file.to_path_buf();
        read.places = marked.places;
        return Ok(read);
    }
    mistakes.sort_by_key(|m| (m.line, m.column));
    Err(Mistakes(mistakes))
}

/// Where the value at `pointer` is, or its nearest enclosing value.
fn place(places: &HashMap<String, (usize, usize)>, pointer: &str) -> (usize, usize) {
    let mut pointer = pointer;
    loop {
        if let Some(place) = places.get(pointer) {
            return *place;
        }
        match pointer.rfind('/') {
            Some(cut) => pointer = &pointer[..cut],
            None => return (1, 1),
        }
    }
}

/// The schema's words, said of the field at `pointer` (and for the
/// source's kinds, what to write).
fn explained(pointer: &str, words: &str) -> String {
    let field = pointer.trim_start_matches('/').replace('/', ".");
    let words = match (pointer, words.contains("oneOf")) {
        ("/source", true) => "name exactly one of csv, tsv, postgres or sql",
        _ => words,
    };
    if field.is_empty() { words.to_owned() } else { format!("{field}: {words}") }
}

#[cfg(test)]
mod tests;
