//! Compiling a team's contract when its product starts: its `.proto` file
//! (and those it imports beside it) with the mesh's own option and query
//! protos, which are embedded here so a team's folder needs only its own
//! file, checked for the product shape every product service has and for a
//! classification on every column (a column nobody classified is not
//! served: the error lists them).

use std::path::{Path, PathBuf};

use prost_reflect::DescriptorPool;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver};

use crate::descriptor::{ProductShape, column_options};
use crate::product::Classification;

/// The mesh's own protos a contract imports, by import path.
const EMBEDDED: [(&str, &str); 3] = [
    ("mesh/product/v1/options.proto", include_str!("../proto/mesh/product/v1/options.proto")),
    ("mesh/product/v1/query.proto", include_str!("../proto/mesh/product/v1/query.proto")),
    ("mesh/product/v1/audit.proto", include_str!("../proto/mesh/product/v1/audit.proto")),
];

/// The largest contract file compiled (a product's `.proto` is a few KiB).
pub const MAX_CONTRACT_BYTES: u64 = 1 << 20;

/// A contract compiled: its descriptors and their encoded set.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Every file the contract is made of, imports included.
    pub pool: DescriptorPool,
    /// The same, encoded (with source info, so comments become docs).
    pub descriptor_set: Vec<u8>,
}

/// Why a contract cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The `.proto` does not compile.
    #[error("{file}: {message}")]
    Proto {
        /// The contract file.
        file: String,
        /// The compiler's words, with line and column.
        message: String,
    },
    /// It compiles, but the service is not a product service.
    #[error("{file}: {message}")]
    Shape {
        /// The contract file.
        file: String,
        /// What is missing.
        message: String,
    },
    /// Columns nobody classified.
    #[error(
        "{file}: {} has columns with no classification: {}; give each one `(mesh.product.v1.column) = {{ \
         classification: CLASSIFICATION_... }}` (PUBLIC, INTERNAL, SENSITIVE, QUASI_IDENTIFIER or PII_IDENTIFIER)",
        row_type,
        columns.join(", ")
    )]
    Unclassified {
        /// The contract file.
        file: String,
        /// The row message.
        row_type: String,
        /// The columns without one.
        columns: Vec<String>,
    },
}

/// The mesh's embedded protos, as a resolver.
struct Embedded;

impl FileResolver for Embedded {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match EMBEDDED.iter().find(|(path, _)| *path == name) {
            Some((path, source)) => File::from_source(path, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// `error` with its line and column, when it is in the contract `file`
/// (imported as `name`) itself.
fn located(error: &protox::Error, name: &str, file: &Path) -> String {
    use miette::Diagnostic;
    let offset = error.labels().and_then(|mut labels| labels.next()).map(|label| label.offset());
    let source = (error.file() == Some(name)).then(|| std::fs::read_to_string(file).ok()).flatten();
    match (offset, source) {
        (Some(offset), Some(text)) => {
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
            format!("line {line}, column {column}: {error}")
        }
        _ => error.to_string(),
    }
}

/// Where imports are resolved from, and the name the contract is compiled
/// under: when its folders spell its package (`woori/payment/v1/` for
/// `package woori.payment.v1;`, as buf lays protos out) the folder above
/// them and the path from there, so the file keeps the name other
/// services know it by; otherwise its own folder and its file name.
fn import_root(folder: &Path, name: &str, text: &str) -> (PathBuf, String) {
    let package = text
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("package ").and_then(|rest| rest.trim().strip_suffix(';')))
        .map(str::trim);
    let parts: Vec<&str> = package.map(|p| p.split('.').collect()).unwrap_or_default();
    let folders: Vec<&str> = folder.iter().filter_map(|part| part.to_str()).collect();
    if !parts.is_empty() && folders.ends_with(&parts) {
        let root: PathBuf = folder.iter().take(folders.len() - parts.len()).collect();
        let root = if root.as_os_str().is_empty() { PathBuf::from(".") } else { root };
        return (root, format!("{}/{name}", parts.join("/")));
    }
    (folder.to_path_buf(), name.to_owned())
}

/// Compiles the contract `file` and checks that `service` in it is a
/// product service with every column classified.
pub fn contract(file: &Path, service: &str) -> Result<Compiled, CompileError> {
    let shown = file.display().to_string();
    let proto = |message: String| CompileError::Proto { file: shown.clone(), message };
    let (folder, name) = match (file.parent(), file.file_name().and_then(|n| n.to_str())) {
        (Some(folder), Some(name)) => (folder, name),
        _ => return Err(proto("is not a file name".into())),
    };
    let folder = if folder.as_os_str().is_empty() { PathBuf::from(".") } else { folder.to_path_buf() };
    match std::fs::metadata(file) {
        Ok(meta) if meta.is_file() && meta.len() <= MAX_CONTRACT_BYTES => {}
        Ok(meta) if meta.is_file() => {
            return Err(proto(format!(
                "is {} bytes, more than a contract's {MAX_CONTRACT_BYTES}",
                meta.len()
            )));
        }
        Ok(_) => return Err(proto("is not a file".into())),
        Err(e) => return Err(proto(format!("cannot be read: {e}"))),
    }
    let text = std::fs::read_to_string(file).map_err(|e| proto(format!("cannot be read: {e}")))?;
    let (root, name) = import_root(&folder, name, &text);
    let name = name.as_str();
    let mut resolver = ChainFileResolver::new();
    resolver.add(IncludeFileResolver::new(root));
    resolver.add(Embedded);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(true);
    compiler.open_file(name).map_err(|e| proto(located(&e, name, file)))?;
    let descriptor_set = compiler.encode_file_descriptor_set();
    let pool = DescriptorPool::decode(descriptor_set.as_slice()).map_err(|e| proto(e.to_string()))?;
    let shape = ProductShape::find(&pool, service)
        .map_err(|e| CompileError::Shape { file: shown.clone(), message: e.to_string() })?;
    let columns: Vec<String> = shape
        .row_type
        .fields()
        .filter(|field| column_options(field).classification() == Classification::Unspecified)
        .map(|field| field.name().to_owned())
        .collect();
    if !columns.is_empty() {
        return Err(CompileError::Unclassified {
            file: shown,
            row_type: shape.row_type.full_name().to_owned(),
            columns,
        });
    }
    Ok(Compiled { pool, descriptor_set })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = r#"syntax = "proto3";
package merchant.shops.v1;
import "mesh/product/v1/options.proto";
import "mesh/product/v1/query.proto";
// One shop.
message Shop {
  // The shop's number.
  string shop_id = 1 [(mesh.product.v1.column) = { classification: CLASSIFICATION_PUBLIC }];
  // What it sold.
  int64 sales = 2 CLASSIFIED;
}
// A batch.
message QueryResponse {
  repeated Shop rows = 1;
  string resume_token = 2;
}
// Shops.
service ShopsService {
  option (mesh.product.v1.product) = { title: "Shops" owner_team: "Merchant" };
  // Streams shops.
  rpc Query(mesh.product.v1.QueryRequest) returns (stream QueryResponse);
  // Describes the product.
  rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse);
}
"#;

    fn written(source: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shops.proto");
        std::fs::write(&path, source).unwrap();
        (dir, path)
    }

    #[test]
    fn a_contract_laid_out_by_package_keeps_its_path_as_its_name() {
        let text = "syntax = \"proto3\";\npackage woori.payment.v1;\n";
        let (root, name) = import_root(Path::new("proto/woori/payment/v1"), "payment.proto", text);
        assert_eq!((root, name.as_str()), (PathBuf::from("proto"), "woori/payment/v1/payment.proto"));
        let (root, name) = import_root(Path::new("woori/payment/v1"), "payment.proto", text);
        assert_eq!((root, name.as_str()), (PathBuf::from("."), "woori/payment/v1/payment.proto"));
        let (root, name) = import_root(Path::new("contracts"), "payment.proto", text);
        assert_eq!((root, name.as_str()), (PathBuf::from("contracts"), "payment.proto"));
    }

    #[test]
    fn a_contract_compiles_alone_with_the_mesh_protos_embedded() {
        let classified = SHOP.replace(
            "CLASSIFIED",
            "[(mesh.product.v1.column) = { classification: CLASSIFICATION_INTERNAL }]",
        );
        let (_dir, path) = written(&classified);
        let compiled = contract(&path, "merchant.shops.v1.ShopsService").unwrap();
        let shape = ProductShape::find(&compiled.pool, "merchant.shops.v1.ShopsService").unwrap();
        assert_eq!(shape.row_type.full_name(), "merchant.shops.v1.Shop");
        assert_eq!(shape.options().title, "Shops");
    }

    #[test]
    fn what_cannot_be_served_is_named() {
        let (_dir, path) = written(&SHOP.replace("CLASSIFIED", ""));
        let unclassified = contract(&path, "merchant.shops.v1.ShopsService").unwrap_err().to_string();
        assert!(
            unclassified.contains("merchant.shops.v1.Shop has columns with no classification: sales;"),
            "{unclassified}"
        );
        let (_dir, path) =
            written(&SHOP.replace("CLASSIFIED", "[(mesh.product.v1.column) = { nonsense: 1 }]"));
        let bad = contract(&path, "merchant.shops.v1.ShopsService").unwrap_err().to_string();
        let expected = format!("{}: line 10, column 20: invalid value", path.display());
        assert!(bad.starts_with(&expected), "{bad}");
        let (_dir, path) = written(&SHOP.replace("CLASSIFIED", ""));
        let missing = contract(&path, "merchant.shops.v1.Other").unwrap_err();
        assert!(matches!(missing, CompileError::Shape { .. }), "{missing}");
    }
}
