//! Loading a product from its CSV or TSV file: read in the file's declared
//! encoding (or the one its text shows), columns matched by the
//! contract's `source_column`, checked by the product's rules, and skipped
//! when the database already holds the file's current content.

use mesh_runtime::ingest::{CsvSource, LoadSummary, Shrink, TextEncoding};
use mesh_runtime::source::load_if_changed;
use mesh_runtime::store::Storage;
use mesh_runtime::{DomainError, Result};

use crate::published::Published;

/// Loads `published` from its source file unless its content is already
/// loaded (or `reload`); `None` when nothing was loaded, or the product
/// has no source file (blocking).
pub fn load_file(published: &Published, reload: bool, shrink: Shrink) -> Result<Option<LoadSummary>> {
    let file = &published.declared.file;
    let Some(source) = file.source.file(file.folder()) else { return Ok(None) };
    let encoding = match file.source.encoding.as_deref() {
        Some(name) => TextEncoding::named(name)?,
        None => None,
    };
    let product = &published.product;
    product.store.exclusive_load(published.id(), || {
        let mut records = CsvSource::open_with(&source.path, source.delimiter, encoding)?;
        load_if_changed(product, &mut records, &published.rules, shrink, reload)
    })
}

/// [`load_file`] on a blocking thread.
pub async fn load_file_async(
    published: std::sync::Arc<Published>,
    reload: bool,
    shrink: Shrink,
) -> Result<Option<LoadSummary>> {
    tokio::task::spawn_blocking(move || load_file(&published, reload, shrink))
        .await
        .map_err(|e| DomainError::Internal(format!("the load task failed: {e}")))?
}
