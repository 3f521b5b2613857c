//! The demo mesh's products as they ship: the product files of
//! `customer.profiles`, `payment.card_spending` and
//! `insight.segment_spending` (under `products/` in the repository) with
//! their contracts (under `proto/woori/`), and the generated file the two
//! source products load, written into a folder laid out like the
//! repository so the files' relative paths hold.

use std::path::{Path, PathBuf};

use crate::Generator;

/// Each shipped file, by its path in the repository.
const FILES: [(&str, &str); 6] = [
    (
        "products/customer/profiles.product.yaml",
        include_str!("../../../products/customer/profiles.product.yaml"),
    ),
    (
        "products/payment/card_spending.product.yaml",
        include_str!("../../../products/payment/card_spending.product.yaml"),
    ),
    (
        "products/insight/segment_spending.product.yaml",
        include_str!("../../../products/insight/segment_spending.product.yaml"),
    ),
    (
        "proto/woori/customer/v1/customer.proto",
        include_str!("../../../proto/woori/customer/v1/customer.proto"),
    ),
    ("proto/woori/payment/v1/payment.proto", include_str!("../../../proto/woori/payment/v1/payment.proto")),
    ("proto/woori/insight/v1/insight.proto", include_str!("../../../proto/woori/insight/v1/insight.proto")),
];

/// Where the source products' generated file goes, from the folder root.
pub const SOURCE_FILE: &str = "source/EDU_DATA_F.csv";

/// The shipped product files, written.
#[derive(Debug, Clone)]
pub struct Shipped {
    /// `customer.profiles`'s product file.
    pub customer: PathBuf,
    /// `payment.card_spending`'s.
    pub payment: PathBuf,
    /// `insight.segment_spending`'s.
    pub insight: PathBuf,
    /// The generated file the source products load.
    pub source: PathBuf,
}

/// Writes the shipped product files and contracts under `dir` (each only
/// when its content differs, so a file's time changes only with it), and
/// the file `generator` makes unless the one there was made by the same
/// generator.
pub fn write(dir: &Path, generator: &Generator) -> std::io::Result<Shipped> {
    for (path, text) in FILES {
        let path = dir.join(path);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
            std::fs::write(&path, text)?;
        }
    }
    let source = dir.join(SOURCE_FILE);
    write_source(&source, generator)?;
    Ok(Shipped {
        customer: dir.join(FILES[0].0),
        payment: dir.join(FILES[1].0),
        insight: dir.join(FILES[2].0),
        source,
    })
}

/// Writes `generator`'s file at `path` (through a temporary file, renamed
/// into place) unless the note beside it says the same generator made it.
pub fn write_source(path: &Path, generator: &Generator) -> std::io::Result<()> {
    let beside = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let note = beside(".generator");
    let made_by = generator.source().describe();
    if path.is_file() && std::fs::read_to_string(&note).ok().as_deref() == Some(made_by.as_str()) {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let partial = beside(".partial");
    generator.write_file(&partial)?;
    std::fs::rename(&partial, path)?;
    std::fs::write(note, made_by)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_files_are_written_once_and_the_source_made_again_only_for_another_generator() {
        let dir = tempfile::tempdir().unwrap();
        let small = Generator { seed: 1, customers: 3, quarters: 1 };
        let shipped = write(dir.path(), &small).unwrap();
        assert!(shipped.payment.is_file() && shipped.customer.is_file() && shipped.insight.is_file());
        assert!(dir.path().join("proto/woori/payment/v1/payment.proto").is_file());
        let first = std::fs::read_to_string(&shipped.source).unwrap();
        assert_eq!(first.lines().count(), 4, "a header and 3 rows");
        let modified = std::fs::metadata(&shipped.source).unwrap().modified().unwrap();
        write(dir.path(), &small).unwrap();
        assert_eq!(std::fs::metadata(&shipped.source).unwrap().modified().unwrap(), modified);
        write(dir.path(), &Generator { customers: 5, ..small }).unwrap();
        assert_eq!(std::fs::read_to_string(&shipped.source).unwrap().lines().count(), 6);
    }

    #[test]
    fn the_payment_file_states_the_extracts_invariants() {
        let text = FILES[1].1;
        for rule in crate::rules::spending_rules() {
            let holds = format!("holds: {} = {}", rule.total, rule.parts.join(" + "));
            assert!(text.contains(&format!("name: {}", rule.name)), "{} missing", rule.name);
            assert!(text.contains(&holds), "`{holds}` missing");
        }
    }
}
