//! A cache of GetProduct answers. Every write to the catalog bumps a
//! generation that invalidates all entries; an entry also expires when the
//! next lease in it runs out (its status would change then). Reads of a
//! quiet catalog are served from memory, without touching SQLite.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use mesh_contracts::catalog::GetProductResponse;

/// Most entries kept; the cache is cleared when it would grow past this.
const MAX_ENTRIES: usize = 4096;

struct Entry {
    generation: u64,
    valid_until_ms: i64,
    response: GetProductResponse,
}

/// GetProduct answers by (product, requested version).
#[derive(Default)]
pub struct ProductCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<(String, i64), Entry>>,
}

impl std::fmt::Debug for ProductCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductCache").field("generation", &self.generation.load(Ordering::Relaxed)).finish()
    }
}

impl ProductCache {
    /// The generation to pass to [`ProductCache::put`] for an answer read now.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Forgets everything: call after every write to the catalog.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The cached answer, if still valid at `now_ms`.
    pub fn get(&self, product: &str, version: i64, now_ms: i64) -> Option<GetProductResponse> {
        let generation = self.generation();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(&(product.to_owned(), version))?;
        (entry.generation == generation && now_ms < entry.valid_until_ms).then(|| entry.response.clone())
    }

    /// Remembers an answer read at `now_ms` under `generation`.
    pub fn put(
        &self,
        product: &str,
        version: i64,
        generation: u64,
        now_ms: i64,
        response: &GetProductResponse,
    ) {
        let valid_until_ms = response
            .product
            .iter()
            .flat_map(|p| &p.endpoints)
            .filter_map(|e| e.lease_expire_time.as_ref())
            .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
            .filter(|&expires| expires > now_ms)
            .min()
            .unwrap_or(i64::MAX);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            (product.to_owned(), version),
            Entry { generation, valid_until_ms, response: response.clone() },
        );
    }
}
