//! The pages people read: search with facets, and a product's page.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use mesh_contracts::catalog::{
    AgreementState, ListAgreementsRequest, ListProductsRequest, Product, ServingStatus,
};
use mesh_contracts::product::{AccessMode, Classification};
use mesh_grpc::auth::owner_role;

use super::lineage::lineage;
use super::view::{
    AgreementRow, Chrome, ColumnRow, EndpointRow, Facet, FacetOption, ProductCard, ProductFacts, ProductPage,
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
fn access_word(product: &Product) -> String {
    match product.metadata.as_ref().map(|m| m.access_mode()) {
        Some(AccessMode::Open) => "open".to_owned(),
        _ => "by agreement".to_owned(),
    }
}

fn classification_word(classification: Classification) -> String {
    classification.as_str_name().trim_start_matches("CLASSIFICATION_").to_ascii_lowercase()
}

fn time(timestamp: Option<&prost_types::Timestamp>) -> String {
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

async fn product_page(
    web: &Web,
    visitor: &Visitor,
    product: &Product,
    notice: Option<(&'static str, String)>,
) -> ProductPage {
    let metadata = product.metadata.clone().unwrap_or_default();
    let id = product.product_id.clone();
    let is_owner = crate::access::owns(&visitor.principal, &id);
    let open = metadata.access_mode() == AccessMode::Open;
    let agreements = web
        .access
        .list(
            visitor.principal.clone(),
            ListAgreementsRequest { product: id.clone(), include_inactive: true, ..Default::default() },
        )
        .await
        .map(|(page, _)| page)
        .unwrap_or_default();
    let row = |a: &mesh_contracts::catalog::Agreement| AgreementRow {
        id: a.name.trim_start_matches("agreements/").to_owned(),
        name: a.name.clone(),
        principal: a.principal.clone(),
        issuer: a.issuer.clone(),
        state: a.state().as_str_name().trim_start_matches("AGREEMENT_STATE_").to_ascii_lowercase(),
        columns: a.columns.join(", "),
        raw: if a.raw_columns.is_empty() { "none".into() } else { a.raw_columns.join(", ") },
        scope: if a.row_scope.is_empty() { "all rows".into() } else { a.row_scope.clone() },
        until: time(a.end_time.as_ref()),
        days: mesh_contracts::access::days(a),
        purpose: a.purpose.clone(),
        decided: a.decided_by.clone(),
    };
    let me = (&visitor.principal.subject, &visitor.principal.issuer);
    let mine: Vec<AgreementRow> =
        agreements.iter().filter(|a| (&a.principal, &a.issuer) == me).map(row).collect();
    let pending: Vec<AgreementRow> = if is_owner {
        agreements.iter().filter(|a| a.state() == AgreementState::Pending).map(row).collect()
    } else {
        Vec::new()
    };
    let in_force: Vec<AgreementRow> = if is_owner {
        agreements.iter().filter(|a| a.state() == AgreementState::Approved).map(row).collect()
    } else {
        Vec::new()
    };
    // One request waits at a time; with an agreement in force, a new
    // request (for more columns) replaces it once approved.
    let mine_in = |state: AgreementState| {
        agreements.iter().any(|a| (&a.principal, &a.issuer) == me && a.state() == state)
    };
    let (has_pending, has_approved) = (mine_in(AgreementState::Pending), mine_in(AgreementState::Approved));
    let columns = product
        .columns
        .iter()
        .map(|c| ColumnRow {
            name: c.name.clone(),
            kind: c.r#type.clone(),
            classification: classification_word(c.classification()),
            unit: c.unit.clone(),
            source_column: c.source_column.clone(),
            description: c.description.clone(),
            suggested: matches!(
                c.classification(),
                Classification::Public | Classification::Internal | Classification::PiiIdentifier
            ),
        })
        .collect();
    let endpoints: Vec<EndpointRow> = product
        .endpoints
        .iter()
        .map(|e| EndpointRow {
            grpc: e.uri.clone(),
            rest: format!("{}/v1/products/{id}/rows", e.uri.trim_end_matches('/')),
            status: status_word(e.status()),
            lease: time(e.lease_expire_time.as_ref()),
        })
        .collect();
    // Every serving endpoint, in the catalog's order: the browser uses the
    // first it can reach (a domain may advertise a name inside its network
    // and an address on the host).
    let preview_urls: Vec<String> = product
        .endpoints
        .iter()
        .filter(|e| e.status() == ServingStatus::Serving)
        .map(|e| format!("{}/v1/products/{id}/rows?page_size=50", e.uri.trim_end_matches('/')))
        .collect();
    let preview_url = (!preview_urls.is_empty()).then(|| preview_urls.join(" "));
    let data = match &product.data {
        Some(data) => match time(data.last_loaded_time.as_ref()) {
            loaded if loaded.is_empty() => format!("{} rows, never loaded", data.row_count),
            loaded => format!("{} rows, loaded {loaded}", data.row_count),
        },
        None => "not reported yet".to_owned(),
    };
    let owner_mailto = (metadata.owner_contact.contains('@') && !metadata.owner_contact.contains(':'))
        .then(|| format!("mailto:{}", metadata.owner_contact));
    let access_words = if open {
        "Open: every signed-in caller reads it.".to_owned()
    } else {
        "By agreement: each consumer reads the columns of an agreement the owners approved (or a rule granted), \
         identifiers as pseudonyms."
            .to_owned()
    };
    ProductPage {
        chrome: Chrome::of(Some(visitor), notice),
        p: ProductFacts {
            id: id.clone(),
            domain: product.domain.clone(),
            title: if metadata.title.is_empty() { id.clone() } else { metadata.title.clone() },
            description: product.description.clone(),
            status: status_word(product.status()),
            access: access_word(product),
            access_words,
            open,
            tags: metadata.tags.clone(),
            deprecation: product.deprecation.as_ref().map(|d| d.message.clone()),
            owner_team: metadata.owner_team.clone(),
            owner_contact: metadata.owner_contact.clone(),
            owner_mailto,
            purpose: metadata.purpose.clone(),
            source: metadata.source.clone(),
            policy: metadata.policy.clone(),
            freshness: metadata.freshness.clone(),
            data,
            service: product.service.clone(),
            row_type: product.row_type.clone(),
        },
        endpoints,
        preview_url,
        columns,
        is_owner,
        owner_role: owner_role(&product.domain),
        can_request: !open && !is_owner && !has_pending,
        widening: has_approved,
        mine,
        pending,
        in_force,
        lineage: lineage(product),
        versions: product
            .versions
            .iter()
            .rev()
            .map(|v| VersionRow {
                version: v.version,
                fingerprint: v.fingerprint.chars().take(12).collect(),
                major: v.major_version,
                created: time(v.create_time.as_ref()),
                by: v.registered_by.clone(),
                changes: v.changes.clone(),
            })
            .collect(),
        quality: product
            .data
            .iter()
            .flat_map(|d| &d.quality_results)
            .map(|q| QualityRow {
                rule: q.rule.clone(),
                passed: q.passed,
                checked: q.checked_rows,
                failed: q.failed_rows,
                description: q.description.clone(),
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
