//! The pages people read: search with facets, and a product's page.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use mesh_contracts::catalog::{ListAgreementsRequest, ListProductsRequest, Product, ServingStatus};
use mesh_contracts::product::{AccessMode, Classification};
use mesh_grpc::auth::owner_role;

use super::lineage::lineage;
use super::product_view::{AgreementSections, preview_url, usage_url};
use super::view::{
    Chrome, ColumnRow, EndpointRow, EventRow, Facet, FacetOption, ProductCard, ProductFacts, ProductPage,
    QualityRow, SearchPage, SearchQuery, VersionRow,
};
use super::{Visitor, Web, message_page, render};
use mesh_standards::Standard;

/// Pages of 1000 products read for the facets, at most.
const MAX_PAGES: usize = 20;

/// `GET /catalog?q=&domain=&owner=&tag=&status=&access=`.
pub(super) async fn search(
    State(web): State<Arc<Web>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let path = match &query {
        Some(query) => format!("/catalog?{query}"),
        None => "/catalog".to_owned(),
    };
    let visitor = match web.signed_in(&headers, &path).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let params: BTreeMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let param = |name: &str| params.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    let (q, domain, owner, tag, status, access) =
        (param("q"), param("domain"), param("owner"), param("tag"), param("status"), param("access"));
    let all = match all_products(&web, &visitor, ListProductsRequest::default()).await {
        Ok(all) => all,
        Err(message) => {
            return message_page(
                StatusCode::BAD_GATEWAY,
                "The catalog could not be read",
                &message,
                Some(&visitor),
            );
        }
    };
    let filter = ListProductsRequest {
        search: q.clone(),
        domain: domain.clone(),
        owner: owner.clone(),
        tag: tag.clone(),
        ..Default::default()
    };
    // Without a filter the registry needs no second pass.
    let unfiltered = [&q, &domain, &owner, &tag].iter().all(|v| v.is_empty());
    let found = if unfiltered { Ok(all.clone()) } else { all_products(&web, &visitor, filter).await };
    let matching = match found {
        Ok(found) => found,
        Err(message) => {
            return message_page(
                StatusCode::BAD_REQUEST,
                "The search could not run",
                &message,
                Some(&visitor),
            );
        }
    };
    let results: Vec<ProductCard> = matching
        .iter()
        .filter(|p| status.is_empty() || status_word(p.status()) == status)
        .filter(|p| access.is_empty() || access_word(p) == access)
        .map(card)
        .collect();
    let facet = |name: &'static str, label: &'static str, selected: &str, values: Vec<String>| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for value in values {
            *counts.entry(value).or_default() += 1;
        }
        let options = counts
            .into_iter()
            .filter(|(value, _)| !value.is_empty())
            .map(|(value, count)| FacetOption {
                selected: value == selected,
                label: value.clone(),
                value,
                count,
            })
            .collect();
        Facet { name, label, options }
    };
    let metadata = |p: &Product| p.metadata.clone().unwrap_or_default();
    let facets = vec![
        facet("domain", "Domain", &domain, all.iter().map(|p| p.domain.clone()).collect()),
        facet("owner", "Owner team", &owner, all.iter().map(|p| metadata(p).owner_team).collect()),
        facet("tag", "Tag", &tag, all.iter().flat_map(|p| metadata(p).tags).collect()),
        facet("status", "Status", &status, all.iter().map(|p| status_word(p.status())).collect()),
        facet("access", "Access", &access, all.iter().map(access_word).collect()),
    ];
    let any = [&q, &domain, &owner, &tag, &status, &access].iter().any(|v| !v.is_empty());
    let page = SearchPage {
        chrome: Chrome::of(Some(&visitor), web.sessions.take_notice(&visitor.cookie)),
        query: SearchQuery { q, any },
        facets,
        results,
        total: all.len(),
    };
    render(StatusCode::OK, &page, &[])
}

/// Every product `filter` matches, page after page.
async fn all_products(
    web: &Web,
    visitor: &Visitor,
    mut filter: ListProductsRequest,
) -> Result<Vec<Product>, String> {
    filter.page_size = 1000;
    let mut products = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = web
            .catalog
            .list_products(filter.clone(), &visitor.principal)
            .await
            .map_err(|e| tonic::Status::from(e).message().to_owned())?;
        products.extend(page.products);
        if page.next_page_token.is_empty() {
            break;
        }
        filter.page_token = page.next_page_token;
    }
    Ok(products)
}

fn card(product: &Product) -> ProductCard {
    let metadata = product.metadata.clone().unwrap_or_default();
    ProductCard {
        id: product.product_id.clone(),
        title: if metadata.title.is_empty() { product.product_id.clone() } else { metadata.title },
        description: product.description.clone(),
        owner: metadata.owner_team,
        domain: product.domain.clone(),
        tags: metadata.tags,
        status: status_word(product.status()),
        access: access_word(product),
    }
}

/// A serving status in one word: `serving`, `stale`, `offline`...
pub(super) fn status_word(status: ServingStatus) -> String {
    status.as_str_name().trim_start_matches("SERVING_STATUS_").to_ascii_lowercase()
}

/// The access mode in words: `open` or `by agreement`.
pub(super) fn access_word(product: &Product) -> String {
    match product.metadata.as_ref().map(|m| m.access_mode()) {
        Some(AccessMode::Open) => "open".to_owned(),
        _ => "by agreement".to_owned(),
    }
}

/// A classification in one word: `public`, `pii_identifier`...
pub(super) fn classification_word(classification: Classification) -> String {
    classification.as_str_name().trim_start_matches("CLASSIFICATION_").to_ascii_lowercase()
}

/// A timestamp to the second, as a page shows it (empty when unset).
pub(super) fn time(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .map(|t| {
            let text = t.to_string();
            // Seconds are enough on a page: 2024-01-31T10:00:00Z.
            match text.find('.') {
                Some(dot) => format!("{}Z", &text[..dot]),
                None => text,
            }
        })
        .unwrap_or_default()
}

/// How many of a product's newest events its page shows.
const RECENT_EVENTS: usize = 10;

/// `GET /catalog/products/{id}`.
pub(super) async fn product(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path =
        format!("/catalog/products/{}", form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>());
    let visitor = match web.signed_in(&headers, &path).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let product = match web.catalog.product(&id, &visitor.principal).await {
        Ok(product) => product,
        Err(error) => {
            let status = tonic::Status::from(error);
            let code = mesh_grpc::rest::http_status(status.code());
            return message_page(code, "No such product", status.message(), Some(&visitor));
        }
    };
    let notice = web.sessions.take_notice(&visitor.cookie);
    let page = product_page(&web, &visitor, &product, notice).await;
    let connect: Vec<String> = product.endpoints.iter().filter_map(|e| origin(&e.uri)).collect();
    render(StatusCode::OK, &page, &connect)
}

/// The scheme, host and port of `url`, for the page's content policy.
fn origin(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

/// The product page as `visitor` sees it: the agreements section depends
/// on whether they own the product.
async fn product_page(
    web: &Web,
    visitor: &Visitor,
    product: &Product,
    notice: Option<(&'static str, String)>,
) -> ProductPage {
    let id = &product.product_id;
    let is_owner = crate::access::owns(&visitor.principal, id);
    let open = product.metadata.as_ref().is_some_and(|m| m.access_mode() == AccessMode::Open);
    let request = ListAgreementsRequest { product: id.clone(), include_inactive: true, ..Default::default() };
    let agreements =
        web.access.list(visitor.principal.clone(), request).await.map(|(page, _)| page).unwrap_or_default();
    let agreements = AgreementSections::of(&agreements, visitor, is_owner);
    let events = match crate::events::service::Wanted::checked(id, "", &[]) {
        Ok(wanted) => web.events.newest(visitor.principal.clone(), &wanted, RECENT_EVENTS).await,
        Err(error) => Err(error),
    };
    let events = events.map(|listed| listed.events).unwrap_or_default();
    ProductPage {
        chrome: Chrome::of(Some(visitor), notice),
        p: ProductFacts::of(product),
        endpoints: product.endpoints.iter().map(|e| EndpointRow::of(e, id)).collect(),
        preview_url: preview_url(product),
        usage_url: if is_owner { usage_url(product) } else { None },
        columns: product.columns.iter().map(ColumnRow::from).collect(),
        is_owner,
        owner_role: owner_role(&product.domain),
        can_request: !open && !is_owner && !agreements.has_pending,
        widening: agreements.has_approved,
        mine: agreements.mine,
        pending: agreements.pending,
        in_force: agreements.in_force,
        lineage: lineage(product),
        versions: product.versions.iter().rev().map(VersionRow::from).collect(),
        quality: product.data.iter().flat_map(|d| &d.quality_results).map(QualityRow::from).collect(),
        events: events
            .iter()
            .map(|e| EventRow {
                sequence: e.sequence,
                time: time(e.time.as_ref()),
                kind: e.r#type.clone(),
                details: mesh_contracts::cloudevent::summary(&e.data),
            })
            .collect(),
    }
}

/// `GET /catalog/products/{id}/contract.odcs.yaml`: the ODCS contract, for the signed-in.
pub(super) async fn odcs(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    document(&web, &id, &headers, Standard::Odcs).await
}

/// `GET /catalog/products/{id}/product.odps.yaml`: the ODPS description, for the signed-in.
pub(super) async fn odps(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    document(&web, &id, &headers, Standard::Odps).await
}

async fn document(web: &Web, id: &str, headers: &HeaderMap, standard: Standard) -> Response {
    let visitor = match web.signed_in(headers, &format!("/catalog/products/{id}")).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let product = match web.catalog.product(id, &visitor.principal).await {
        Ok(product) => product,
        Err(error) => {
            let status = tonic::Status::from(error);
            return message_page(
                mesh_grpc::rest::http_status(status.code()),
                "No such product",
                status.message(),
                Some(&visitor),
            );
        }
    };
    let links = mesh_standards::Links { registry: Some(web.base_url(headers)) };
    let mut response = crate::rest::document(&web.catalog, &product, standard, &links, &visitor.principal)
        .await
        .into_response();
    let response_headers = response.headers_mut();
    response_headers
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    response_headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response_headers.insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    response
}
