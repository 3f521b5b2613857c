//! Talking to the catalog registry: connecting with a timeout, paging
//! through products, and finding one product (with the local cache as a
//! fallback and suggestions for a name that is not there).

use std::time::{Duration, SystemTime};

use anyhow::{Result, anyhow, bail};
use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::event_service_client::EventServiceClient;
use mesh_contracts::catalog::subscription_service_client::SubscriptionServiceClient;
use mesh_contracts::catalog::{
    Domain, GetProductRequest, GetProductResponse, ListDomainsRequest, ListProductsRequest, Product,
    ProductView,
};
use mesh_grpc::client::channel;
use mesh_grpc::{Credentials, MeshChannel};
use tonic::Code;

use crate::cache;

mod target;

pub(crate) use target::Target;

/// Most pages read from one listing: a registry that keeps sending pages
/// cannot keep the CLI reading (or growing) for ever.
const MAX_PAGES: usize = 100;

fn too_many_pages(registry: &str) -> anyhow::Error {
    anyhow!(
        "the registry at {} sent more than {MAX_PAGES} pages for one listing; narrow it with --domain, \
         --owner, --tag or --search",
        crate::style::safe(registry)
    )
}

/// The error for a registry at `url` that cannot be reached, saying what to do.
pub(crate) fn unreachable(url: &str, status: &tonic::Status) -> anyhow::Error {
    anyhow!(
        "cannot reach the catalog registry at {}: {}\n  start it (mesh up), or point --registry / MESH_REGISTRY at it",
        crate::style::safe(url),
        crate::style::safe(status.message())
    )
}

/// The registry client: the first of the registry URLs, and the others to
/// fail over to when it cannot be reached.
pub(crate) struct Registry {
    url: String,
    /// The first URL given: the local cache is kept under it.
    primary: String,
    fallbacks: Vec<String>,
    timeout: Duration,
    credentials: Credentials,
    client: CatalogServiceClient<MeshChannel>,
    access: AccessServiceClient<MeshChannel>,
    subscriptions: SubscriptionServiceClient<MeshChannel>,
    events: EventServiceClient<MeshChannel>,
}

/// Where a product entry came from.
pub(crate) enum Source {
    /// The registry answered.
    Registry,
    /// The registry was unreachable; the entry is from the local cache.
    Cache(SystemTime),
}

impl Registry {
    /// The registry's URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A client of the registry at `urls` (one URL, or several separated by
    /// commas: replicas of one catalog, tried in order while one cannot be
    /// reached), calling with `credentials`.
    pub(crate) fn new(urls: &str, timeout: Duration, credentials: &Credentials) -> Result<Self> {
        let mut urls: Vec<String> =
            urls.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect();
        if urls.is_empty() {
            bail!("--registry names no URL");
        }
        let url = urls.remove(0);
        let channel = channel(&url, timeout, credentials)?;
        let access = AccessServiceClient::new(channel.clone());
        let subscriptions = SubscriptionServiceClient::new(channel.clone());
        let events = EventServiceClient::new(channel.clone());
        Ok(Self {
            primary: url.clone(),
            url,
            fallbacks: urls,
            timeout,
            credentials: credentials.clone(),
            client: CatalogServiceClient::new(channel),
            access,
            subscriptions,
            events,
        })
    }

    /// Moves on to the next registry URL when `status` says this one cannot
    /// be reached and another is left, saying so on stderr.
    fn fail_over(&mut self, status: &tonic::Status) -> bool {
        if !matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded) || self.fallbacks.is_empty() {
            return false;
        }
        let next = self.fallbacks.remove(0);
        let Ok(channel) = channel(&next, self.timeout, &self.credentials) else { return false };
        eprintln!(
            "note: the registry at {} cannot be reached ({}); using {}",
            crate::style::safe(&self.url),
            crate::style::safe(status.message()),
            crate::style::safe(&next)
        );
        self.access = AccessServiceClient::new(channel.clone());
        self.subscriptions = SubscriptionServiceClient::new(channel.clone());
        self.events = EventServiceClient::new(channel.clone());
        self.client = CatalogServiceClient::new(channel);
        self.url = next;
        true
    }

    /// The registry's access service, on the same connection.
    pub(crate) fn access(&mut self) -> &mut AccessServiceClient<MeshChannel> {
        &mut self.access
    }

    /// The registry's webhook subscription service, on the same connection.
    pub(crate) fn subscriptions(&mut self) -> &mut SubscriptionServiceClient<MeshChannel> {
        &mut self.subscriptions
    }

    /// The registry's event service, on the same connection.
    pub(crate) fn events(&mut self) -> &mut EventServiceClient<MeshChannel> {
        &mut self.events
    }

    /// The client of the registry the command line names, with its credentials.
    pub(crate) fn of(cli: &crate::cli::Cli) -> Result<Self> {
        Self::new(&cli.registry, cli.timeout, &cli.credentials)
    }

    /// Who the registry sees calling.
    pub(crate) async fn who_am_i(&mut self) -> Result<mesh_contracts::catalog::WhoAmIResponse> {
        loop {
            let request = mesh_contracts::catalog::WhoAmIRequest {};
            match self.client.who_am_i(request).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if self.fail_over(&status) => {}
                Err(status) => return Err(self.status_error(status)),
            }
        }
    }

    fn unreachable(&self, status: &tonic::Status) -> anyhow::Error {
        unreachable(&self.url, status)
    }

    /// Every product matching `filter`, all pages (at most [`MAX_PAGES`]).
    pub(crate) async fn products(&mut self, filter: ListProductsRequest) -> Result<Vec<Product>> {
        self.all_pages(async |registry, page_token| {
            let request = ListProductsRequest { page_size: 1000, page_token, ..filter.clone() };
            let page = registry.client.list_products(request).await?.into_inner();
            Ok((page.products, page.next_page_token))
        })
        .await
    }

    /// Every domain, all pages (at most [`MAX_PAGES`]).
    pub(crate) async fn domains(&mut self) -> Result<Vec<Domain>> {
        self.all_pages(async |registry, page_token| {
            let request = ListDomainsRequest { page_size: 1000, page_token };
            let page = registry.client.list_domains(request).await?.into_inner();
            Ok((page.domains, page.next_page_token))
        })
        .await
    }

    /// The items of every page `fetch` returns for a page token (its items
    /// and the next token), from the first until a page has no next token.
    async fn all_pages<T>(
        &mut self,
        mut fetch: impl AsyncFnMut(&mut Self, String) -> Result<(Vec<T>, String), tonic::Status>,
    ) -> Result<Vec<T>> {
        let (mut items, mut token) = (Vec::new(), String::new());
        for _ in 0..MAX_PAGES {
            let (page, next) = match fetch(self, token).await {
                Ok(page) => page,
                // Page tokens are the registry's own: another starts over.
                Err(status) if self.fail_over(&status) => {
                    (items, token) = (Vec::new(), String::new());
                    continue;
                }
                Err(status) => return Err(self.status_error(status)),
            };
            items.extend(page);
            if next.is_empty() {
                return Ok(items);
            }
            token = next;
        }
        Err(too_many_pages(&self.url))
    }

    /// Turns a status into advice: unreachable, or the registry's own message.
    pub(crate) fn status_error(&self, status: tonic::Status) -> anyhow::Error {
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => self.unreachable(&status),
            Code::Unauthenticated => anyhow!("registry: {}\n  {}", status.message(), SIGN_IN),
            _ => anyhow!("registry: {}", status.message()),
        }
    }

    /// The catalog entry of `product` in `view`: from the registry
    /// (remembered in the cache), or from the cache when the registry is
    /// unreachable.
    pub(crate) async fn product(
        &mut self,
        product: &str,
        view: ProductView,
    ) -> Result<(GetProductResponse, Source)> {
        // A cached descriptor need not travel again if it is still current.
        let cached = cache::load(&self.primary, product);
        let known_fingerprint =
            cached.as_ref().map(|(entry, _)| entry.fingerprint.clone()).unwrap_or_default();
        let request =
            GetProductRequest { name: product.to_owned(), version: 0, known_fingerprint, view: view.into() };
        let mut answer = self.client.get_product(request.clone()).await;
        while let Err(status) = &answer {
            if !self.fail_over(status) {
                break;
            }
            answer = self.client.get_product(request.clone()).await;
        }
        match answer {
            Ok(response) => {
                let mut entry = response.into_inner();
                if let Some((known, _)) = cached.filter(|(c, _)| c.fingerprint == entry.fingerprint) {
                    // Same contract, so the same descriptor set and columns
                    // (their annotations come from it).
                    if entry.descriptor_set.is_empty() {
                        entry.descriptor_set = known.descriptor_set;
                    }
                    if let (Some(product), Some(known)) = (&mut entry.product, known.product)
                        && product.columns.is_empty()
                    {
                        product.columns = known.columns;
                    }
                }
                cache::store(&self.primary, product, &entry);
                Ok((entry, Source::Registry))
            }
            Err(status) if status.code() == Code::NotFound => {
                let known = self
                    .products(ListProductsRequest::default())
                    .await
                    .map(|ps| ps.into_iter().map(|p| p.product_id).collect::<Vec<_>>());
                bail!(
                    "{}",
                    unknown_product(
                        product,
                        &known.unwrap_or_default(),
                        "`mesh products` lists the registered ones"
                    )
                )
            }
            Err(status) if status.code() == Code::InvalidArgument => bail!("{}", status.message()),
            // Refused is not unreachable: the cache must not answer for a caller the registry refused.
            Err(status) if matches!(status.code(), Code::Unauthenticated | Code::PermissionDenied) => {
                Err(self.status_error(status))
            }
            Err(status) => match cached {
                Some((entry, fetched)) => Ok((entry, Source::Cache(fetched))),
                None => {
                    let cached =
                        unknown_product(product, &cache::products(&self.primary), "nothing close is cached");
                    Err(self.unreachable(&status).context(format!(
                        "`{product}` is not in the local catalog cache either ({cached}); pass --endpoint to call a domain directly"
                    )))
                }
            },
        }
    }
}

/// How to get a token, for UNAUTHENTICATED answers.
pub(crate) const SIGN_IN: &str = "sign in: `mesh up` signs you in to the local mesh, `mesh login --issuer URL --client-id ID` \
     to a company IdP; or set MESH_TOKEN";

/// "unknown product" with the nearest known names, or `when_none` when no
/// known name is close.
pub(crate) fn unknown_product(product: &str, known: &[String], when_none: &str) -> String {
    let mut scored: Vec<(f64, &String)> = known
        .iter()
        .map(|k| (strsim::jaro_winkler(product, k), k))
        .filter(|(score, _)| *score > 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let suggestions: Vec<&str> = scored.iter().take(3).map(|(_, k)| k.as_str()).collect();
    if suggestions.is_empty() {
        format!("unknown product `{product}`; {when_none}")
    } else {
        format!("unknown product `{product}`; did you mean {}?", suggestions.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mesh_contracts::catalog::ListDomainsResponse;
    use mesh_grpc::unary::RawUnaryRoute;
    use prost::Message;

    use super::*;

    #[tokio::test]
    async fn a_registry_that_never_stops_paging_is_cut_off() {
        let endless = RawUnaryRoute::new(Arc::new(|_| {
            Box::pin(async {
                let page =
                    ListDomainsResponse { domains: vec![Domain::default()], next_page_token: "more".into() };
                Ok(bytes::Bytes::from(page.encode_to_vec()))
            })
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = mesh_grpc::MeshServer::new(&[], &[])
            .await
            .unwrap()
            .route("/mesh.catalog.v1.CatalogService/ListDomains", endless);
        tokio::spawn(server.serve(listener, std::future::pending()));
        let error = Registry::new(&url, Duration::from_secs(5), &Credentials::none())
            .unwrap()
            .domains()
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the registry at {url} sent more than 100 pages for one listing; narrow it with --domain, \
                 --owner, --tag or --search"
            )
        );
    }
}
