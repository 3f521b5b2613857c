//! ListDomains, ListProducts and GetProduct.

use mesh_contracts::catalog::{
    GetProductRequest, GetProductResponse, ListDomainsRequest, ListDomainsResponse, ListProductsRequest,
    ListProductsResponse, ProductView,
};
use mesh_grpc::auth::Principal;

use std::sync::Arc;

use bytes::Bytes;

use super::Catalog;
use super::cache::EncodedAnswer;
use crate::error::{RegistryError, Result};
use crate::store::products;
use crate::{quota, validate};

/// Longest free-text search accepted, and the most words it may hold.
const MAX_SEARCH: usize = 256;
const MAX_SEARCH_WORDS: usize = 16;

impl Catalog {
    pub(super) async fn list_domains(
        &self,
        request: ListDomainsRequest,
        caller: &Principal,
    ) -> Result<ListDomainsResponse> {
        let page_size = validate::page_size(request.page_size)?;
        let key = ["domains", caller.issuer.as_str(), caller.subject.as_str()];
        let after = self.tokens.check(&request.page_token, &key)?;
        let mut domains = self
            .store
            .read(move |db| {
                let now = db.now_ms()?;
                products::domains(db, after.as_deref(), page_size + 1, now)
            })
            .await?;
        let next_page_token = if domains.len() > page_size {
            domains.truncate(page_size);
            self.tokens.issue(&key, &domains[page_size - 1].name)
        } else {
            String::new()
        };
        Ok(ListDomainsResponse { domains, next_page_token })
    }

    /// ListProducts for `caller`.
    pub(crate) async fn list_products(
        &self,
        request: ListProductsRequest,
        caller: &Principal,
    ) -> Result<ListProductsResponse> {
        let page_size = validate::page_size(request.page_size)?;
        if !request.domain.is_empty() {
            validate::domain("domain", &request.domain)?;
        }
        if request.search.chars().count() > MAX_SEARCH {
            return Err(RegistryError::invalid("search", format!("is longer than {MAX_SEARCH} characters")));
        }
        let words: Vec<String> = request.search.split_whitespace().map(str::to_owned).collect();
        if words.len() > MAX_SEARCH_WORDS {
            return Err(RegistryError::invalid("search", format!("has more than {MAX_SEARCH_WORDS} words")));
        }
        let filter = products::ProductFilter {
            domain: request.domain,
            owner: request.owner.trim().to_owned(),
            tag: request.tag.trim().to_owned(),
            words,
        };
        let mut filter_key = filter.token_key().to_vec();
        // A page token is the caller's own: another caller cannot use it.
        filter_key.extend([caller.issuer.clone(), caller.subject.clone()]);
        let after = self.tokens.check(&request.page_token, &filter_key)?;
        let (found, total_size) = self
            .store
            .read(move |db| {
                let now = db.now_ms()?;
                let (ids, total) = products::list_ids(db, &filter, after.as_deref(), page_size + 1)?;
                let found = ids
                    .iter()
                    .filter_map(|id| products::load(db, id, now).transpose())
                    .collect::<Result<Vec<_>>>()?;
                Ok((found, total))
            })
            .await?;
        // What the caller may see first: a page's size tells nothing hidden.
        let mut found: Vec<_> = found.into_iter().map(|p| super::visibility::for_caller(p, caller)).collect();
        // A page ends at page_size products or PAGE_BYTES, whichever comes
        // first (at least one product).
        let mut bytes = 0;
        let fits = found
            .iter()
            .position(|product| {
                bytes += prost::Message::encoded_len(product);
                bytes > quota::PAGE_BYTES
            })
            .map_or(found.len(), |over| over.max(1));
        let page_end = fits.min(page_size);
        let next_page_token = if found.len() > page_end {
            found.truncate(page_end);
            self.tokens.issue(&filter_key, &found[page_end - 1].product_id)
        } else {
            String::new()
        };
        Ok(ListProductsResponse { products: found, next_page_token, total_size: total_size as i32 })
    }

    /// Whether domain `domain` has a product in the catalog.
    pub(crate) async fn has_domain(&self, domain: &str) -> Result<bool> {
        let domain = domain.to_owned();
        self.store.read(move |db| products::has_domain(db, &domain)).await
    }

    /// The latest version of product `id`, in full, as `caller` may see it.
    pub(crate) async fn product(
        &self,
        id: &str,
        caller: &Principal,
    ) -> Result<mesh_contracts::catalog::Product> {
        let request =
            GetProductRequest { name: id.to_owned(), view: ProductView::Full as i32, ..Default::default() };
        let encoded = self.get_product_encoded(request, caller).await?;
        let response = <GetProductResponse as prost::Message>::decode(encoded)
            .map_err(|e| RegistryError::Internal(format!("a cached answer does not decode: {e}")))?;
        response.product.ok_or_else(|| RegistryError::ProductNotFound(id.to_owned()))
    }

    /// GetProduct for `caller`, answered encoded (from the cache when it
    /// can be): the descriptor set is left out when the caller already
    /// holds it, the columns when the caller asks for the basic view, who
    /// reads the product unless the caller may see them.
    pub async fn get_product_encoded(
        &self,
        mut request: GetProductRequest,
        caller: &Principal,
    ) -> Result<Bytes> {
        let id = validate::product_name("name", &request.name)?.to_owned();
        if request.version < 0 {
            return Err(RegistryError::invalid(
                "version",
                format!(
                    "{} is negative; use 0 for the latest or a version number from `versions`",
                    request.version
                ),
            ));
        }
        let view = ProductView::try_from(request.view).map_err(|_| {
            RegistryError::invalid(
                "view",
                format!("{} is not a product view; use 1 (BASIC) or 2 (FULL)", request.view),
            )
        })?;
        let known = std::mem::take(&mut request.known_fingerprint);
        // Writes other replicas committed are seen before any cached answer.
        if let Some(versions) = self.store.versions(&id).await? {
            self.products.observe(&id, versions);
        }
        let now = self.clock.now_ms();
        let sees_readers = super::visibility::sees_readers(caller, &id);
        let cached = self.products.get(&id, request.version, now);
        self.meters.cache(cached.is_some());
        if let Some(cached) = cached {
            return Ok(cached.for_caller(view, &known, sees_readers));
        }
        let generation = self.products.generation(&id);
        let key = id.clone();
        let (response, now) = self
            .store
            .read(move |db| {
                let now = db.now_ms()?;
                let product = products::load(db, &id, now)?
                    .ok_or_else(|| RegistryError::ProductNotFound(id.clone()))?;
                let version = if request.version == 0 { product.latest_version } else { request.version };
                let schema = products::schema(db, &id, version)?.ok_or(RegistryError::VersionNotFound {
                    product: id.clone(),
                    version,
                    latest: product.latest_version,
                })?;
                if schema.descriptor_set.is_empty() {
                    return Err(RegistryError::VersionPruned {
                        product: id,
                        version,
                        kept: quota::VERSIONS_KEPT,
                    });
                }
                let response = GetProductResponse {
                    product: Some(product),
                    version,
                    descriptor_set: schema.descriptor_set,
                    fingerprint: schema.fingerprint,
                };
                Ok((response, now))
            })
            .await?;
        let answer = Arc::new(EncodedAnswer::new(response, now));
        self.products.put(&key, request.version, generation, &answer);
        Ok(answer.for_caller(view, &known, sees_readers))
    }
}
