//! Loading a product from a record source unless the database already
//! holds that source's content (compared by fingerprint).

use crate::error::Result;
use crate::ingest::quality::QualityRule;
use crate::ingest::{self, RecordSource, Shrink};
use crate::serve::product::Product;
use crate::store::Storage;

/// Loads `product` from `source` checked by `rules`, unless it already
/// holds the rows of a source with the same fingerprint and `reload` is
/// false (blocking; call it inside the store's exclusive load). Returns the
/// load's summary, or `None` when nothing changed.
pub fn load_if_changed(
    product: &Product,
    source: &mut (dyn RecordSource + Send),
    rules: &[QualityRule],
    shrink: Shrink,
    reload: bool,
) -> Result<Option<ingest::LoadSummary>> {
    let id = &product.spec.id;
    let fingerprint = source.fingerprint()?;
    // Loads recorded before fingerprints were kept compare by source
    // name: right for generated data, which its name determines.
    let loaded = match product.store.fingerprint(id)? {
        Some(fingerprint) => Some(fingerprint),
        None => product.store.load_info(id)?.map(|l| l.source),
    };
    if !reload && loaded.as_deref() == Some(fingerprint.as_str()) {
        tracing::info!(product = %id, source = %source.describe(), "data already loaded");
        return Ok(None);
    }
    tracing::info!(product = %id, source = %source.describe(), "loading");
    ingest::load(&product.destination(), source, rules, shrink).map(Some)
}
