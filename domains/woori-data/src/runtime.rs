//! The file's data plugged into the domain runtime (feature `runtime`): the
//! generator as a record source and as a source domain's flags, and the
//! invariants as quality rules.

use csv::ByteRecord;
use mesh_runtime::Result;
use mesh_runtime::ingest::RecordSource;
use mesh_runtime::quality::QualityRule;

use crate::generator::{GeneratedSource, Generator};

/// A source-aligned domain of the customer-spending file.
pub type SourceDomain = mesh_runtime::SourceDomain<Generator>;
/// The flags of such a domain (the generator's among them).
pub type SourceArgs = mesh_runtime::SourceArgs<Generator>;

/// The records of the file `generator` describes.
pub fn generated(generator: &Generator) -> Box<dyn RecordSource + Send> {
    Box::new(generator.source())
}

/// The spending invariants as quality rules.
pub fn spending_quality_rules() -> Vec<QualityRule> {
    crate::rules::spending_rules()
        .iter()
        .map(|rule| {
            let parts: Vec<&str> = rule.parts.iter().map(String::as_str).collect();
            QualityRule::sum_equals(&rule.name, &rule.description, &rule.total, &parts)
        })
        .collect()
}

impl RecordSource for GeneratedSource {
    fn header(&self) -> &ByteRecord {
        GeneratedSource::header(self)
    }

    fn read(&mut self, record: &mut ByteRecord) -> Result<bool> {
        Ok(GeneratedSource::read(self, record))
    }

    fn line(&self) -> u64 {
        GeneratedSource::line(self)
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.generator().rows())
    }

    fn describe(&self) -> String {
        GeneratedSource::describe(self)
    }
}
