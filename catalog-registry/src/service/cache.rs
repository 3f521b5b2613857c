//! A cache of GetProduct answers, kept encoded: a cached answer is sent as
//! the bytes stored here, with nothing cloned or serialized per call. A
//! write to one product (a lease renewed) bumps that product's generation,
//! invalidating its entries only; other writes bump the global generation,
//! invalidating all. An entry also expires when the next lease in it runs
//! out (its status would change then). Reads of a quiet catalog never touch
//! SQLite.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use mesh_contracts::catalog::{GetProductResponse, ProductView};
use prost::Message;

/// Most entries kept; the cache is cleared when it would grow past this.
const MAX_ENTRIES: usize = 4096;

/// One GetProduct answer, encoded in each view, with and without its
/// descriptor set.
#[derive(Debug)]
pub(super) struct EncodedAnswer {
    /// Indexed by `[readers shown][basic view][descriptor left out]`.
    encoded: [[[Bytes; 2]; 2]; 2],
    fingerprint: String,
    valid_until_ms: i64,
}

impl EncodedAnswer {
    /// Encodes `response`, read at `now_ms`.
    pub(super) fn new(response: GetProductResponse, now_ms: i64) -> Self {
        let valid_until_ms = response
            .product
            .iter()
            .flat_map(|p| &p.endpoints)
            .filter_map(|e| e.lease_expire_time.as_ref())
            .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
            .filter(|&expires| expires > now_ms)
            .min()
            .unwrap_or(i64::MAX);
        let variants = |readers: bool| {
            let mut response = response.clone();
            if let Some(product) = &mut response.product {
                super::visibility::readers_shown(product, readers);
            }
            let slim = GetProductResponse { descriptor_set: Vec::new(), ..response.clone() };
            let basic = |mut response: GetProductResponse| {
                if let Some(product) = &mut response.product {
                    product.columns.clear();
                }
                Bytes::from(response.encode_to_vec())
            };
            [
                [Bytes::from(response.encode_to_vec()), Bytes::from(slim.encode_to_vec())],
                [basic(response.clone()), basic(slim)],
            ]
        };
        let encoded = [variants(false), variants(true)];
        Self { encoded, fingerprint: response.fingerprint, valid_until_ms }
    }

    /// The answer in `view` for a caller already holding the descriptor set
    /// whose fingerprint is `known` (empty: none): the set is left out when
    /// it matches; who reads the product only when `sees_readers`.
    pub(super) fn for_caller(&self, view: ProductView, known: &str, sees_readers: bool) -> Bytes {
        let basic = view == ProductView::Basic;
        let held = !known.is_empty() && known == self.fingerprint;
        self.encoded[usize::from(sees_readers)][usize::from(basic)][usize::from(held)].clone()
    }
}

/// The generation an answer was read under: the global one and its product's.
pub(super) type Generation = (u64, u64);

struct Entry {
    generation: Generation,
    answer: Arc<EncodedAnswer>,
}

#[derive(Default)]
struct Entries {
    answers: HashMap<(String, i64), Entry>,
    /// Generations of products written to one at a time.
    products: HashMap<String, u64>,
    /// The database's count of writes to each product, as last seen.
    seen: HashMap<String, i64>,
}

/// GetProduct answers by (product, requested version).
pub(super) struct ProductCache {
    generation: AtomicU64,
    entries: Mutex<Entries>,
    /// The database's count of writes to any product, as last seen.
    seen_global: std::sync::atomic::AtomicI64,
}

impl Default for ProductCache {
    fn default() -> Self {
        Self { generation: AtomicU64::new(0), entries: Default::default(), seen_global: (-1).into() }
    }
}

impl std::fmt::Debug for ProductCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductCache").field("generation", &self.generation.load(Ordering::Relaxed)).finish()
    }
}

impl ProductCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn generation_in(&self, entries: &Entries, product: &str) -> Generation {
        (self.generation.load(Ordering::Acquire), entries.products.get(product).copied().unwrap_or(0))
    }

    /// The generation to pass to [`ProductCache::put`] for an answer of
    /// `product` read now.
    pub(super) fn generation(&self, product: &str) -> Generation {
        self.generation_in(&self.entries(), product)
    }

    /// Takes in the database's counts of writes (to any product, to
    /// `product`): what changed since they were last seen is forgotten.
    pub(super) fn observe(&self, product: &str, (global, own): (i64, i64)) {
        if self.seen_global.swap(global, Ordering::AcqRel) != global {
            self.invalidate();
        }
        let changed = {
            let mut entries = self.entries();
            if entries.seen.len() >= MAX_ENTRIES && !entries.seen.contains_key(product) {
                // Names asked for are not bounded: forget them all at once.
                entries.seen.clear();
            }
            entries.seen.insert(product.to_owned(), own) != Some(own)
        };
        if changed {
            self.invalidate_product(product);
        }
    }

    /// Forgets everything: call after a write that may touch any product.
    pub(super) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets the answers of `product`: call after a write to it alone.
    pub(super) fn invalidate_product(&self, product: &str) {
        let mut entries = self.entries();
        if entries.products.len() >= MAX_ENTRIES && !entries.products.contains_key(product) {
            entries.products.clear();
            self.invalidate();
        }
        *entries.products.entry(product.to_owned()).or_default() += 1;
    }

    /// The cached answer, if still valid at `now_ms`.
    pub(super) fn get(&self, product: &str, version: i64, now_ms: i64) -> Option<Arc<EncodedAnswer>> {
        let entries = self.entries();
        let generation = self.generation_in(&entries, product);
        let entry = entries.answers.get(&(product.to_owned(), version))?;
        (entry.generation == generation && now_ms < entry.answer.valid_until_ms)
            .then(|| Arc::clone(&entry.answer))
    }

    /// Remembers an answer read under `generation`.
    pub(super) fn put(
        &self,
        product: &str,
        version: i64,
        generation: Generation,
        answer: &Arc<EncodedAnswer>,
    ) {
        let mut entries = self.entries();
        if entries.answers.len() >= MAX_ENTRIES {
            entries.answers.clear();
        }
        entries
            .answers
            .insert((product.to_owned(), version), Entry { generation, answer: Arc::clone(answer) });
    }
}

#[cfg(test)]
mod tests {
    use mesh_contracts::catalog::{GetProductResponse, Product};

    use super::*;

    fn answer(id: &str) -> Arc<EncodedAnswer> {
        let product = Product { product_id: id.into(), ..Default::default() };
        Arc::new(EncodedAnswer::new(GetProductResponse { product: Some(product), ..Default::default() }, 0))
    }

    #[test]
    fn a_write_to_one_product_keeps_the_others_cached() {
        let cache = ProductCache::default();
        for id in ["a.one", "b.two"] {
            cache.put(id, 0, cache.generation(id), &answer(id));
        }
        cache.invalidate_product("a.one");
        assert!(cache.get("a.one", 0, 1).is_none());
        assert!(cache.get("b.two", 0, 1).is_some());
        // An answer read before the write is not stored as current.
        let stale = cache.generation("b.two");
        cache.invalidate_product("b.two");
        cache.put("b.two", 0, stale, &answer("b.two"));
        assert!(cache.get("b.two", 0, 1).is_none());
        cache.invalidate();
        cache.put("a.one", 0, cache.generation("a.one"), &answer("a.one"));
        assert!(cache.get("a.one", 0, 1).is_some());
    }
}
