//! A product file with its contract: the file read, the contract compiled
//! and checked (shape, a classification on every column), and everything
//! the file names found in the contract or on disk. The generic domain
//! server starts from this, and `mesh product check` runs the same checks.

use std::collections::HashSet;
use std::path::Path;

use mesh_contracts::compile::{self, Compiled};
use mesh_contracts::descriptor::{ProductShape, column_options};

use crate::{Mistake, Mistakes, ProductFile, SourceFile};

/// A product file whose contract compiles and names every column it uses.
#[derive(Debug, Clone)]
pub struct Declared {
    /// The file.
    pub file: ProductFile,
    /// Its contract, compiled.
    pub contract: Compiled,
    /// The product service in it.
    pub shape: ProductShape,
}

/// Reads the product file at `path`, compiles its contract and checks
/// that the key, indexes, amounts, quality rules and source agree with it.
pub fn declare(path: &Path) -> Result<Declared, Mistakes> {
    let file = crate::read(path)?;
    let proto = crate::joined(file.folder(), &file.contract.proto);
    let contract = compile::contract(&proto, &file.contract.service)
        .map_err(|error| Mistakes(vec![file.mistake("/contract", format!("contract: {error}"))]))?;
    let shape = ProductShape::find(&contract.pool, &file.contract.service).map_err(|error| {
        Mistakes(vec![file.mistake("/contract/service", format!("contract.service: {error}"))])
    })?;
    let declared = Declared { file, contract, shape };
    let mistakes = declared.mistakes();
    if mistakes.is_empty() { Ok(declared) } else { Err(Mistakes(mistakes)) }
}

impl Declared {
    /// The row type's column names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.shape.row_type.fields().map(|f| f.name().to_owned()).collect()
    }

    /// What the file names that the contract or the disk lacks.
    fn mistakes(&self) -> Vec<Mistake> {
        let file = &self.file;
        let columns: HashSet<String> = self.columns().into_iter().collect();
        let known = self.columns().join(", ");
        let row_type = self.shape.row_type.full_name();
        let mut mistakes = Vec::new();
        for (field, names) in [("key", &file.key), ("indexes", &file.indexes), ("amounts", &file.amounts)] {
            for (i, name) in names.iter().enumerate().filter(|(_, n)| !columns.contains(*n)) {
                mistakes.push(file.mistake(
                    &format!("/{field}/{i}"),
                    format!("{field}: `{name}` is no column of {row_type}; its columns are {known}"),
                ));
            }
        }
        let mut rules = HashSet::new();
        for (i, rule) in file.quality.iter().enumerate() {
            if !rules.insert(rule.name.as_str()) {
                mistakes.push(file.mistake(
                    &format!("/quality/{i}/name"),
                    format!("quality: two rules are named `{}`; give each its own name", rule.name),
                ));
            }
        }
        if let Some(source) = file.source.file(file.folder()) {
            mistakes.extend(self.source_mistakes(&source));
        }
        mistakes
    }

    /// The source file found and its header checked.
    fn source_mistakes(&self, source: &SourceFile) -> Vec<Mistake> {
        let file = &self.file;
        let kind = &source.pointer["/source/".len()..];
        if !source.path.is_file() {
            return vec![file.mistake(
                source.pointer,
                format!(
                    "source.{kind}: {} is not a file (paths are relative to the product file)",
                    source.written.display()
                ),
            )];
        }
        match read_header(&source.path, source.delimiter) {
            Ok(header) => {
                self.header_mistakes(&header, source.pointer, &source.written.display().to_string())
            }
            Err(error) => vec![file.mistake(source.pointer, format!("source.{kind}: {error}"))],
        }
    }

    /// A source's header row against the contract, said of the source at
    /// `pointer` (`/source/csv`, ...) named `shown`: every column found, and
    /// no column the contract lacks unless the file says to ignore it.
    pub fn header_mistakes(&self, header: &[String], pointer: &str, shown: &str) -> Vec<Mistake> {
        let file = &self.file;
        let kind = pointer.trim_start_matches("/source/");
        let upper: Vec<String> = header.iter().map(|h| h.to_ascii_uppercase()).collect();
        let mut mistakes = Vec::new();
        let mut used = HashSet::new();
        for field in self.shape.row_type.fields() {
            let source_column = column_options(&field).source_column;
            let wanted = [source_column.to_ascii_uppercase(), field.name().to_ascii_uppercase()];
            match upper.iter().position(|h| wanted.iter().any(|w| !w.is_empty() && w == h)) {
                Some(at) => {
                    used.insert(at);
                }
                None => mistakes.push(file.mistake(
                    pointer,
                    format!(
                        "source.{kind}: {shown} has no column for field `{}` (looked for {}); its columns are {}",
                        field.name(),
                        if source_column.is_empty() { field.name().to_owned() } else { source_column },
                        shown_header(header)
                    ),
                )),
            }
        }
        let ignored: HashSet<String> = file.source.ignore.iter().map(|c| c.to_ascii_uppercase()).collect();
        let extra: Vec<&str> = header
            .iter()
            .enumerate()
            .filter(|(at, h)| !used.contains(at) && !ignored.contains(&h.to_ascii_uppercase()))
            .map(|(_, h)| h.as_str())
            .collect();
        if !extra.is_empty() {
            mistakes.push(file.mistake(
                pointer,
                format!(
                    "source.{kind}: {shown} has columns the contract lacks: {}; add a field for each to the \
                     contract (its source_column naming the column), or list them under source.ignore",
                    extra.join(", ")
                ),
            ));
        }
        mistakes
    }
}

/// A header's names as an error shows them: at most 60, each cut at 40
/// characters (a file that is not the source shows no more of itself).
fn shown_header(header: &[String]) -> String {
    let mut names: Vec<String> = header.iter().take(60).map(|n| n.chars().take(40).collect()).collect();
    if header.len() > 60 {
        names.push(format!("and {} more", header.len() - 60));
    }
    names.join(", ")
}

/// The column names of a CSV or TSV file's header row.
fn read_header(path: &Path, delimiter: u8) -> Result<Vec<String>, String> {
    let opened = std::fs::File::open(path).map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).from_reader(opened);
    let header = reader.byte_headers().map_err(|e| format!("{}: the header row: {e}", path.display()))?;
    Ok(header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let name = if i == 0 { name.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(name) } else { name };
            String::from_utf8_lossy(name).trim().to_owned()
        })
        .collect())
}
