//! The local catalog cache: every product entry the CLI fetched, so `query`
//! still works for a product seen before while the registry is down. Each
//! registry has a folder of its own (entries of one catalog never answer for
//! another), files are written under a unique temporary name and renamed,
//! readable by their owner only, and an entry is used only for the product
//! it describes.

use std::path::PathBuf;
use std::time::SystemTime;

use mesh_contracts::catalog::GetProductResponse;
use prost::Message;

/// The folder `$override_var` names, else `$xdg_var/mesh`, else
/// `~/<home_dir>/mesh` (the XDG base directory convention).
pub(crate) fn user_dir(override_var: &str, xdg_var: &str, home_dir: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(override_var) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os(xdg_var) {
        return Some(PathBuf::from(dir).join("mesh"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(home_dir).join("mesh"))
}

/// The cache folder: `$MESH_CACHE_DIR`, else `$XDG_CACHE_HOME/mesh`, else `~/.cache/mesh`.
fn root() -> Option<PathBuf> {
    user_dir("MESH_CACHE_DIR", "XDG_CACHE_HOME", ".cache")
}

/// A file-name-safe name for the registry at `registry`: its URL, hashed.
pub(crate) fn registry_key(registry: &str) -> String {
    let url = registry.trim_end_matches('/');
    blake3::hash(url.as_bytes()).to_hex()[..32].to_owned()
}

/// The folder of the registry at `registry`.
fn dir(registry: &str) -> Option<PathBuf> {
    root().map(|root| root.join("registries").join(registry_key(registry)))
}

fn file(registry: &str, product: &str) -> Option<PathBuf> {
    // Product ids are checked names (`domain.product`), safe as file names.
    let safe = product.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    (safe && !product.starts_with('.')).then(|| dir(registry).map(|d| d.join(format!("{product}.pb"))))?
}

/// Remembers `entry` of `product` from `registry` (best effort: a cache
/// that cannot be written is skipped).
pub(crate) fn store(registry: &str, product: &str, entry: &GetProductResponse) {
    if let Some(path) = file(registry, product) {
        let _ = mesh_grpc::private_files::write_private(&path, &entry.encode_to_vec());
    }
}

/// The cached entry of `product` from `registry` and when it was fetched.
pub(crate) fn load(registry: &str, product: &str) -> Option<(GetProductResponse, SystemTime)> {
    let path = file(registry, product)?;
    let bytes = std::fs::read(&path).ok()?;
    let fetched = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    let entry = GetProductResponse::decode(bytes.as_slice()).ok()?;
    let describes = entry.product.as_ref().is_some_and(|p| p.product_id == product);
    describes.then_some((entry, fetched))
}

/// Product ids cached from `registry`, for suggestions when it is down.
pub(crate) fn products(registry: &str) -> Vec<String> {
    let Some(dir) = dir(registry) else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".pb").map(str::to_owned)).collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use mesh_contracts::catalog::Product;

    use super::*;

    fn entry(product: &str) -> GetProductResponse {
        GetProductResponse {
            product: Some(Product { product_id: product.into(), ..Default::default() }),
            fingerprint: "f".into(),
            ..Default::default()
        }
    }

    #[test]
    fn entries_are_kept_per_registry_private_and_for_their_own_product() {
        let root = tempfile::tempdir().unwrap();
        // SAFETY: no other test of this binary reads or writes the environment.
        unsafe { std::env::set_var("MESH_CACHE_DIR", root.path()) };
        let (a, b) = ("http://127.0.0.1:50050", "http://10.0.0.9:50050");
        store(a, "shop.orders", &entry("shop.orders"));
        assert!(load(a, "shop.orders").is_some());
        assert!(load(b, "shop.orders").is_none(), "another registry's entry");
        assert_eq!(products(a), ["shop.orders"]);
        let path = file(a, "shop.orders").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        // An entry stored under one name but describing another is not used.
        std::fs::write(file(a, "shop.other").unwrap(), entry("shop.orders").encode_to_vec()).unwrap();
        assert!(load(a, "shop.other").is_none());
        assert!(
            std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .all(|e| { !e.unwrap().file_name().to_string_lossy().ends_with(".tmp") })
        );
    }
}
