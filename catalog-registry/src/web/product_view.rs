//! The product page's view converted from the catalog's records: each row
//! of the page from one record, the facts from the product, and the
//! agreements split into what the visitor and the owners see.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesh_contracts::catalog::{
    Agreement, AgreementState, Column, Endpoint, Product, SchemaVersion, ServingStatus,
};
use mesh_contracts::product::{AccessMode, Classification, QualityResult};

use super::Visitor;
use super::pages::{access_word, classification_word, status_word, time};
use super::view::{AgreementRow, ColumnRow, EndpointRow, ProductFacts, QualityRow, VersionRow};

impl ProductFacts {
    /// What the page says about `product` itself.
    pub(super) fn of(product: &Product) -> Self {
        let metadata = product.metadata.clone().unwrap_or_default();
        let id = product.product_id.clone();
        let open = metadata.access_mode() == AccessMode::Open;
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
            "Open: every signed-in caller reads it."
        } else {
            "By agreement: each consumer reads the columns of an agreement the owners approved (or a rule \
             granted), identifiers as pseudonyms."
        };
        ProductFacts {
            title: if metadata.title.is_empty() { id.clone() } else { metadata.title.clone() },
            id,
            domain: product.domain.clone(),
            description: product.description.clone(),
            status: status_word(product.status()),
            access: access_word(product),
            access_words: access_words.to_owned(),
            open,
            tags: metadata.tags,
            deprecation: product.deprecation.as_ref().map(|d| d.message.clone()),
            owner_team: metadata.owner_team,
            owner_contact: metadata.owner_contact,
            owner_mailto,
            purpose: metadata.purpose,
            source: metadata.source,
            policy: metadata.policy,
            freshness: metadata.freshness,
            data,
            service: product.service.clone(),
            row_type: product.row_type.clone(),
        }
    }
}

impl EndpointRow {
    /// One endpoint of product `id`, with the REST address of its rows.
    pub(super) fn of(endpoint: &Endpoint, id: &str) -> Self {
        EndpointRow {
            grpc: endpoint.uri.clone(),
            rest: format!("{}/v1/products/{id}/rows", endpoint.uri.trim_end_matches('/')),
            status: status_word(endpoint.status()),
            lease: time(endpoint.lease_expire_time.as_ref()),
        }
    }
}

/// The days of usage a product page charts, today included.
pub(crate) const USAGE_DAYS: u64 = 30;

/// Every serving endpoint's first page of rows, in the catalog's order and
/// separated by spaces: the browser uses the first it can reach (a domain
/// may advertise a name inside its network and an address on the host).
pub(super) fn preview_url(product: &Product) -> Option<String> {
    domain_urls(product, "rows?page_size=50")
}

/// Every serving endpoint's usage of the product from the start of the
/// UTC day [`USAGE_DAYS`] - 1 days ago, as [`preview_url`] lists them.
pub(super) fn usage_url(product: &Product) -> Option<String> {
    const DAY: u64 = 24 * 3600;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let first_day = now.saturating_sub((USAGE_DAYS - 1) * DAY) / DAY * DAY;
    let since = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(first_day));
    domain_urls(product, &format!("usage?since={since}&slowest=10"))
}

/// `/v1/products/{id}/{rest}` at every serving endpoint of `product`,
/// separated by spaces.
fn domain_urls(product: &Product, rest: &str) -> Option<String> {
    let urls: Vec<String> = product
        .endpoints
        .iter()
        .filter(|e| e.status() == ServingStatus::Serving)
        .map(|e| format!("{}/v1/products/{}/{rest}", e.uri.trim_end_matches('/'), product.product_id))
        .collect();
    (!urls.is_empty()).then(|| urls.join(" "))
}

impl From<&Column> for ColumnRow {
    fn from(c: &Column) -> Self {
        ColumnRow {
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
        }
    }
}

impl From<&SchemaVersion> for VersionRow {
    fn from(v: &SchemaVersion) -> Self {
        VersionRow {
            version: v.version,
            fingerprint: v.fingerprint.chars().take(12).collect(),
            major: v.major_version,
            created: time(v.create_time.as_ref()),
            by: v.registered_by.clone(),
            changes: v.changes.clone(),
        }
    }
}

impl From<&QualityResult> for QualityRow {
    fn from(q: &QualityResult) -> Self {
        QualityRow {
            rule: q.rule.clone(),
            passed: q.passed,
            checked: q.checked_rows,
            failed: q.failed_rows,
            description: q.description.clone(),
        }
    }
}

impl From<&Agreement> for AgreementRow {
    fn from(a: &Agreement) -> Self {
        AgreementRow {
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
        }
    }
}

/// A product's agreements as its page shows them to one visitor.
pub(super) struct AgreementSections {
    /// The visitor's own, in every state.
    pub mine: Vec<AgreementRow>,
    /// Requests waiting for a decision (owners only).
    pub pending: Vec<AgreementRow>,
    /// Agreements in force (owners only).
    pub in_force: Vec<AgreementRow>,
    /// Whether the visitor has a request waiting: one waits at a time.
    pub has_pending: bool,
    /// Whether the visitor has an agreement in force: a new request (for
    /// more columns) replaces it once approved.
    pub has_approved: bool,
}

impl AgreementSections {
    /// The sections of `agreements` for `visitor`, who may own the product.
    pub(super) fn of(agreements: &[Agreement], visitor: &Visitor, is_owner: bool) -> Self {
        let me = (&visitor.principal.subject, &visitor.principal.issuer);
        let is_mine = |a: &&Agreement| (&a.principal, &a.issuer) == me;
        let for_owners = |state: AgreementState| -> Vec<AgreementRow> {
            if !is_owner {
                return Vec::new();
            }
            agreements.iter().filter(|a| a.state() == state).map(AgreementRow::from).collect()
        };
        let mine_in = |state: AgreementState| agreements.iter().filter(is_mine).any(|a| a.state() == state);
        AgreementSections {
            mine: agreements.iter().filter(is_mine).map(AgreementRow::from).collect(),
            pending: for_owners(AgreementState::Pending),
            in_force: for_owners(AgreementState::Approved),
            has_pending: mine_in(AgreementState::Pending),
            has_approved: mine_in(AgreementState::Approved),
        }
    }
}
