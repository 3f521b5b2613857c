//! What each page template shows, already in words: the templates only
//! lay it out (and escape it).

use askama::Template;

use super::Visitor;
use super::lineage::Lineage;

/// The parts of every page: who is signed in, the form token, a notice.
pub(crate) struct Chrome {
    pub user: Option<String>,
    pub roles: String,
    pub csrf: String,
    pub notice: Option<String>,
    pub notice_kind: &'static str,
    pub auth_off: bool,
}

impl Chrome {
    /// The chrome for `visitor`, with `notice` (kind and text) shown on top.
    pub(crate) fn of(visitor: Option<&Visitor>, notice: Option<(&'static str, String)>) -> Self {
        let (notice_kind, notice) = match notice {
            Some((kind, text)) => (kind, Some(text)),
            None => ("info", None),
        };
        Self {
            user: visitor.map(|v| v.principal.subject.clone()),
            roles: visitor.map(|v| v.principal.roles.join(", ")).unwrap_or_default(),
            csrf: visitor.map(|v| v.session.csrf.clone()).unwrap_or_default(),
            notice,
            notice_kind,
            auth_off: visitor.is_some_and(|v| v.session.token.is_empty()),
        }
    }
}

/// A message (error or confirmation) with a link back.
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    pub chrome: Chrome,
    pub heading: String,
    pub message: String,
    pub back: String,
    pub back_label: String,
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "signin.html")]
pub(crate) struct SignInPage {
    pub chrome: Chrome,
    pub idp: Option<String>,
    pub csrf: String,
    pub next: String,
    pub error: Option<String>,
}

/// The page after signing in through the IdP: it moves on to `next` from
/// the catalog's own origin, so the SameSite=Strict cookie goes with it.
#[derive(Template)]
#[template(path = "redirect.html")]
pub(crate) struct RedirectPage {
    pub next: String,
}

/// What the search asked for.
pub(crate) struct SearchQuery {
    pub q: String,
    pub any: bool,
}

/// One facet: a filter with each of its values and how many products have it.
pub(crate) struct Facet {
    pub name: &'static str,
    pub label: &'static str,
    pub options: Vec<FacetOption>,
}

/// One value of a facet.
pub(crate) struct FacetOption {
    pub value: String,
    pub label: String,
    pub count: usize,
    pub selected: bool,
}

/// A product in the search results.
pub(crate) struct ProductCard {
    pub id: String,
    pub title: String,
    pub description: String,
    pub owner: String,
    pub domain: String,
    pub tags: Vec<String>,
    pub status: String,
    pub access: String,
}

/// The search page.
#[derive(Template)]
#[template(path = "search.html")]
pub(crate) struct SearchPage {
    pub chrome: Chrome,
    pub query: SearchQuery,
    pub facets: Vec<Facet>,
    pub results: Vec<ProductCard>,
    pub total: usize,
}

/// The product's metadata in words.
pub(crate) struct ProductFacts {
    pub id: String,
    /// The owning domain (`payment`).
    pub domain: String,
    pub title: String,
    pub description: String,
    pub status: String,
    pub access: String,
    pub access_words: String,
    pub open: bool,
    pub tags: Vec<String>,
    pub deprecation: Option<String>,
    pub owner_team: String,
    pub owner_contact: String,
    pub owner_mailto: Option<String>,
    pub purpose: String,
    pub source: String,
    pub policy: String,
    pub freshness: String,
    pub data: String,
    pub service: String,
    pub row_type: String,
}

/// One endpoint: its gRPC and REST addresses.
pub(crate) struct EndpointRow {
    pub grpc: String,
    pub rest: String,
    pub status: String,
    pub lease: String,
}

/// One column.
pub(crate) struct ColumnRow {
    pub name: String,
    pub kind: String,
    pub classification: String,
    pub unit: String,
    pub source_column: String,
    pub description: String,
    /// Ticked in the request form: columns most rules grant at once.
    pub suggested: bool,
}

/// One schema version.
pub(crate) struct VersionRow {
    pub version: i64,
    pub fingerprint: String,
    pub major: u32,
    pub created: String,
    pub by: String,
    pub changes: Vec<String>,
}

/// One event of the product's recent ones.
pub(crate) struct EventRow {
    pub sequence: i64,
    pub time: String,
    pub kind: String,
    pub details: String,
}

/// One quality result.
pub(crate) struct QualityRow {
    pub rule: String,
    pub passed: bool,
    pub checked: i64,
    pub failed: i64,
    pub description: String,
}

/// One agreement, with what an owner weighs before deciding.
pub(crate) struct AgreementRow {
    pub id: String,
    pub name: String,
    pub principal: String,
    /// The issuer of the consumer's token.
    pub issuer: String,
    pub state: String,
    pub columns: String,
    /// Identifier columns asked for as their real values.
    pub raw: String,
    /// The rows asked for (`all rows` when no scope).
    pub scope: String,
    pub until: String,
    /// How long it lasts from its request, in days.
    pub days: i64,
    pub purpose: String,
    pub decided: String,
}

/// A product's page.
#[derive(Template)]
#[template(path = "product.html")]
pub(crate) struct ProductPage {
    pub chrome: Chrome,
    pub p: ProductFacts,
    pub endpoints: Vec<EndpointRow>,
    pub preview_url: Option<String>,
    /// Every serving endpoint's usage of the product over the last
    /// [`USAGE_DAYS`](super::product_view::USAGE_DAYS) days, for owners.
    pub usage_url: Option<String>,
    pub columns: Vec<ColumnRow>,
    pub is_owner: bool,
    pub owner_role: String,
    pub can_request: bool,
    /// The visitor has an agreement in force: a request asks for more.
    pub widening: bool,
    pub mine: Vec<AgreementRow>,
    pub pending: Vec<AgreementRow>,
    pub in_force: Vec<AgreementRow>,
    pub lineage: Lineage,
    pub versions: Vec<VersionRow>,
    pub quality: Vec<QualityRow>,
    /// The newest events about the product the visitor may see.
    pub events: Vec<EventRow>,
}
