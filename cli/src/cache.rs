//! The local catalog cache: every product entry the CLI fetched, so `query`
//! still works for a product seen before while the registry is down.

use std::path::PathBuf;
use std::time::SystemTime;

use mesh_contracts::catalog::GetProductResponse;
use prost::Message;

/// The cache folder: `$MESH_CACHE_DIR`, else `$XDG_CACHE_HOME/mesh`, else `~/.cache/mesh`.
fn dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MESH_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("mesh"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("mesh"))
}

fn file(product: &str) -> Option<PathBuf> {
    // Product ids are checked names (`domain.product`), safe as file names.
    let safe = product.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    (safe && !product.starts_with('.')).then(|| dir().map(|d| d.join(format!("{product}.pb"))))?
}

/// Remembers `entry` (best effort: a cache that cannot be written is skipped).
pub(crate) fn store(product: &str, entry: &GetProductResponse) {
    let Some(path) = file(product) else { return };
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let temporary = path.with_extension("tmp");
    if std::fs::write(&temporary, entry.encode_to_vec()).is_ok() {
        let _ = std::fs::rename(&temporary, &path);
    }
}

/// The cached entry of `product` and when it was fetched.
pub(crate) fn load(product: &str) -> Option<(GetProductResponse, SystemTime)> {
    let path = file(product)?;
    let bytes = std::fs::read(&path).ok()?;
    let fetched = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    GetProductResponse::decode(bytes.as_slice()).ok().map(|entry| (entry, fetched))
}

/// Product ids in the cache, for suggestions when the registry is down.
pub(crate) fn products() -> Vec<String> {
    let Some(dir) = dir() else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".pb").map(str::to_owned)).collect()
}
