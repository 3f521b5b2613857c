//! Loading a product from its source: a CSV or TSV file, read in its
//! declared encoding (or the one its text shows) and skipped when the
//! database already holds its current content; or a PostgreSQL table or
//! view of the domain's database, read in one snapshot at every load. Its
//! columns are matched by the contract's `source_column` (a column the
//! contract lacks is refused unless the file ignores it) and the rows are
//! checked by the product's rules.

use std::io::Read;
use std::sync::Arc;

use mesh_product_file::Mistakes;
use mesh_runtime::ingest::{self, CsvSource, LoadSummary, RecordSource, Shrink, TextEncoding};
use mesh_runtime::source::load_if_changed;
use mesh_runtime::store::Storage;
use mesh_runtime::{DomainError, Result};

use crate::published::Published;

/// Loads `published` from its file unless its content is already loaded
/// (or `reload`), or from its PostgreSQL relation; `None` when nothing was
/// loaded, or the product is derived (blocking).
pub fn load_source(published: &Published, reload: bool, shrink: Shrink) -> Result<Option<LoadSummary>> {
    let file = &published.declared.file;
    let product = &published.product;
    if let Some(source) = file.source.file(file.folder()) {
        let encoding = match file.source.encoding.as_deref() {
            Some(name) => TextEncoding::named(name)?,
            None => None,
        };
        return product.store.exclusive_load(published.id(), || {
            let mut records = CsvSource::open_with(&source.path, source.delimiter, encoding)?;
            load_if_changed(product, &mut records, &published.rules, shrink, reload)
        });
    }
    let Some(relation) = &file.source.postgres else { return Ok(None) };
    product.store.exclusive_load(published.id(), || {
        let rows = product.store.relation_csv(relation)?;
        let mut records = CsvSource::new(rows, format!("postgres {relation}"))?;
        check_header(published, &records, relation)?;
        ingest::load(&product.destination(), &mut records, &published.rules, shrink).map(Some)
    })
}

/// Refuses a relation whose columns are not the contract's, as a file's
/// header is refused when the product file is declared.
fn check_header(
    published: &Published,
    records: &CsvSource<Box<dyn Read + Send>>,
    relation: &str,
) -> Result<()> {
    let header: Vec<String> =
        records.header().iter().map(|name| String::from_utf8_lossy(name).trim().to_owned()).collect();
    let mistakes = published.declared.header_mistakes(&header, "/source/postgres", relation);
    if mistakes.is_empty() { Ok(()) } else { Err(DomainError::Config(Mistakes(mistakes).to_string())) }
}

/// [`load_source`] on a blocking thread.
pub async fn load_source_async(
    published: Arc<Published>,
    reload: bool,
    shrink: Shrink,
) -> Result<Option<LoadSummary>> {
    tokio::task::spawn_blocking(move || load_source(&published, reload, shrink))
        .await
        .map_err(|e| DomainError::Internal(format!("the load task failed: {e}")))?
}
