//! The `mesh.catalog.v1.AccessService` implementation: access requests,
//! owners' decisions and revocations, kept with the catalog. Every change
//! goes to the write log with its author; auto-approvals by a product's
//! rules are recorded like any other decision.

pub(crate) mod request;

use mesh_contracts::access::domain_of;
use mesh_contracts::catalog::access_service_server::AccessService;
use mesh_contracts::catalog::{
    Agreement, AgreementState, ApproveAgreementRequest, ApproveAgreementResponse, DenyAgreementRequest,
    DenyAgreementResponse, ListAgreementsRequest, ListAgreementsResponse, RequestAccessRequest,
    RequestAccessResponse, RevokeAgreementRequest, RevokeAgreementResponse,
};
use mesh_grpc::auth::layer::caller;
use mesh_grpc::auth::{ADMIN, Principal, owner_role, service_role};
use tonic::{Request, Response, Status};

use crate::error::{RegistryError, Result};
use crate::events::kinds;
use crate::page_token::PageTokens;
use crate::store::agreements::{self, Listing, NewAgreement};
use crate::store::{Store, events, products, writes};
use crate::validate;

/// The most requests one consumer may have waiting at once.
pub const MAX_PENDING: i64 = 20;
/// The most requests one consumer may make in a day (granted at once or not).
pub const MAX_PER_DAY: i64 = 200;
/// The most agreements one page of a listing holds (and the default).
const MAX_LISTED: usize = 1000;
/// The most agreements in force one consumer may hold by auto-approval
/// rules, across products: beyond it, requests wait for an owner.
pub const MAX_AUTO_APPROVED: i64 = 20;
/// Longest decision note accepted.
const MAX_NOTE: usize = 2000;

/// The registry's access service.
#[derive(Debug, Clone)]
pub struct Access {
    store: Store,
    tokens: PageTokens,
    meters: crate::meters::RegistryMeters,
}

impl Access {
    /// Access agreements kept in `store` (which tells the time), listed in
    /// pages with `tokens`.
    pub fn new(store: Store, tokens: PageTokens) -> Self {
        Self { store, tokens, meters: Default::default() }
    }

    /// The same service counting its decisions into `meters`.
    pub fn metered(self, meters: crate::meters::RegistryMeters) -> Self {
        Self { meters, ..self }
    }
}

/// What an owner (or the consumer) does to an agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Grant a pending request.
    Approve,
    /// Refuse a pending request, saying why.
    Deny,
    /// End an agreement in force.
    Revoke,
}

impl Decision {
    fn verb(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
            Decision::Revoke => "revoke",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Decision::Approve => "approved",
            Decision::Deny => "denied",
            Decision::Revoke => "revoked",
        }
    }

    /// The state it applies to and the state it leaves.
    fn transition(self) -> (AgreementState, AgreementState) {
        match self {
            Decision::Approve => (AgreementState::Pending, AgreementState::Approved),
            Decision::Deny => (AgreementState::Pending, AgreementState::Denied),
            Decision::Revoke => (AgreementState::Approved, AgreementState::Revoked),
        }
    }
}

/// Whether `caller` owns `product` (or is an admin).
pub(crate) fn owns(caller: &Principal, product: &str) -> bool {
    caller.has_role_or_admin(&owner_role(domain_of(product)))
}

/// Whether `caller` may see every agreement of `product`: its owners, its
/// domain's service identity (which enforces them) and admins.
pub(crate) fn oversees(caller: &Principal, product: &str) -> bool {
    owns(caller, product) || caller.has_role(&service_role(domain_of(product)))
}

pub(crate) fn is_consumer(caller: &Principal, agreement: &Agreement) -> bool {
    is_consumer_of(caller, &agreement.issuer, &agreement.principal)
}

/// Whether `caller` is the consumer `subject` of `issuer`.
pub(crate) fn is_consumer_of(caller: &Principal, issuer: &str, subject: &str) -> bool {
    caller.subject == subject && caller.issuer == issuer
}

/// The id in `agreements/{id}` or `{id}`.
fn agreement_id(name: &str) -> Result<i64> {
    name.strip_prefix("agreements/").unwrap_or(name).parse().ok().filter(|id| *id > 0).ok_or_else(|| {
        RegistryError::invalid("name", format!("`{name}` is not an agreement; expected agreements/<number>"))
    })
}

impl Access {
    /// RequestAccess for `caller`.
    pub(crate) async fn request(
        &self,
        caller: Principal,
        request: RequestAccessRequest,
    ) -> Result<Agreement> {
        let product_id = validate::product_name("product", &request.product)?.to_owned();
        self.store
            .write(move |db| {
                let now = db.now_ms()?;
                let product = products::load(db, &product_id, now)?
                    .ok_or_else(|| RegistryError::ProductNotFound(product_id.clone()))?;
                let checked = request::check(&request, &product, now)?;
                let principal = (caller.subject.as_str(), caller.issuer.as_str());
                // One consumer's requests one at a time across replicas: its
                // quotas and the agreement each supersedes are counted whole.
                db.lock(&format!("consumer\n{}\n{}", caller.issuer, caller.subject))?;
                if agreements::requested_since(db, principal, now - 86_400_000)? >= MAX_PER_DAY {
                    return Err(RegistryError::Quota(format!(
                        "you made {MAX_PER_DAY} requests for access in the last 24 hours, the most the registry \
                         takes; try again tomorrow, or ask an owner"
                    )));
                }
                if agreements::pending_of(db, principal)? >= MAX_PENDING {
                    return Err(RegistryError::Quota(format!(
                        "{MAX_PENDING} of your requests are already waiting for owners; withdraw some \
                         (mesh access revoke) or wait for their decisions"
                    )));
                }
                let mut approval = request::auto_approval(&product, &caller, &checked, now);
                if approval.is_some()
                    && agreements::auto_approved_in_force(db, principal, &product_id, now)? >= MAX_AUTO_APPROVED
                {
                    tracing::info!(caller = %caller.subject, product = %product_id,
                        "auto-approval cap reached; the request waits for an owner");
                    approval = None;
                }
                let (state, decided_by) = match &approval {
                    Some(_) => (AgreementState::Approved, "policy"),
                    None => (AgreementState::Pending, ""),
                };
                let id = agreements::insert(
                    db,
                    &NewAgreement {
                        product_id: &product_id,
                        principal,
                        purpose: &checked.purpose,
                        columns: &checked.columns,
                        raw_columns: &checked.raw_columns,
                        row_scope: &checked.row_scope,
                        end_time: checked.end_time,
                        state,
                        decided_by,
                        decision_note: approval.as_deref().unwrap_or_default(),
                        now,
                    },
                )?;
                let superseded = match approval {
                    Some(_) => agreements::supersede(db, &product_id, principal, id, now)?,
                    None => Vec::new(),
                };
                let action = if approval.is_some() { "request access (approved by rule)" } else { "request access" };
                writes::record(db, now, &caller.subject, action, &product_id)?;
                let agreement = agreements::get(db, id, now)?
                    .ok_or_else(|| RegistryError::Internal(format!("agreement {id} vanished")))?;
                let mut reported = vec![kinds::ACCESS_REQUESTED];
                if approval.is_some() {
                    reported.push(kinds::ACCESS_APPROVED);
                }
                for kind in reported {
                    events::append(db, kinds::agreement(kind, &change(&agreement, decided_by)))?;
                }
                report_superseded(db, &superseded, &agreement.name, now)?;
                tracing::info!(caller = %caller.subject, product = %product_id, id, ?state, "access requested");
                Ok(agreement)
            })
            .await
            .inspect(|agreement| {
                let approved = agreement.state() == AgreementState::Approved;
                self.meters.decision(if approved { "approved_by_rule" } else { "pending" });
            })
    }

    /// ListAgreements for `caller`: a page and the token of the next.
    pub(crate) async fn list(
        &self,
        caller: Principal,
        request: ListAgreementsRequest,
    ) -> Result<(Vec<Agreement>, String)> {
        let product = match request.product.trim() {
            "" => None,
            name => Some(validate::product_name("product", name)?.to_owned()),
        };
        let size = match request.page_size {
            0 => MAX_LISTED,
            n if n < 0 => {
                return Err(RegistryError::invalid("page_size", "is negative; use 1 to 1000, or 0"));
            }
            n => (n as usize).min(MAX_LISTED),
        };
        let filters = [
            caller.subject.clone(),
            caller.issuer.clone(),
            product.clone().unwrap_or_default(),
            request.include_inactive.to_string(),
        ];
        let before = match self.tokens.check(&request.page_token, &filters)? {
            None => None,
            Some(id) => Some(id.parse::<i64>().map_err(|_| {
                RegistryError::invalid(
                    "page_token",
                    "the token is damaged; start again with an empty page_token",
                )
            })?),
        };
        let listed = self
            .store
            .read(move |db| {
                let now = db.now_ms()?;
                let principal = (caller.subject.as_str(), caller.issuer.as_str());
                let listing = match product.as_deref() {
                    Some(product) if oversees(&caller, product) => Listing::Product(product),
                    product => Listing::Consumer { principal, product },
                };
                agreements::list(db, listing, request.include_inactive, (before, size + 1), now)
            })
            .await?;
        Ok(self.page(listed, size, &filters))
    }

    /// The first `size` of `listed` (one more was read to tell whether
    /// another page follows) and the token of the next page.
    fn page(&self, mut listed: Vec<Agreement>, size: usize, filters: &[String]) -> (Vec<Agreement>, String) {
        if listed.len() <= size {
            return (listed, String::new());
        }
        listed.truncate(size);
        let last =
            listed.last().map(|a| a.name.trim_start_matches("agreements/").to_owned()).unwrap_or_default();
        (listed, self.tokens.issue(filters, &last))
    }

    /// Approves, denies or revokes agreement `name` as `caller`.
    pub(crate) async fn decide(
        &self,
        caller: Principal,
        name: &str,
        note: &str,
        decision: Decision,
    ) -> Result<Agreement> {
        let id = agreement_id(name)?;
        let note = note.trim().to_owned();
        if decision == Decision::Deny && note.is_empty() {
            return Err(RegistryError::invalid("note", "say why the request is denied (--note)"));
        }
        if note.chars().count() > MAX_NOTE {
            return Err(RegistryError::invalid("note", format!("is longer than {MAX_NOTE} characters")));
        }
        self.store
            .write(move |db| {
                let now = db.now_ms()?;
                let agreement =
                    agreements::get(db, id, now)?.ok_or_else(|| RegistryError::AgreementNotFound(id))?;
                let allowed = owns(&caller, &agreement.product)
                    || (decision == Decision::Revoke && is_consumer(&caller, &agreement));
                if !allowed {
                    return Err(RegistryError::PermissionDenied(format!(
                        "`{}` may not {} agreements/{id}: only an owner of {} may, which needs the role `{}` or \
                         `{ADMIN}`{} (mesh whoami shows your roles)",
                        caller.subject,
                        decision.verb(),
                        agreement.product,
                        owner_role(domain_of(&agreement.product)),
                        if decision == Decision::Revoke { ", or the consumer it was granted to" } else { "" },
                    )));
                }
                let (from, to) = decision.transition();
                if agreement.state() != from || !agreements::decide(db, id, (from, to), &caller.subject, &note, now)? {
                    return Err(RegistryError::Conflict(format!(
                        "agreements/{id} is {}; only a {} agreement can be {}",
                        state_name(agreement.state()),
                        state_name(from),
                        decision.past(),
                    )));
                }
                let mut superseded = Vec::new();
                if decision == Decision::Approve {
                    db.lock(&format!("consumer\n{}\n{}", agreement.issuer, agreement.principal))?;
                    let principal = (agreement.principal.as_str(), agreement.issuer.as_str());
                    superseded = agreements::supersede(db, &agreement.product, principal, id, now)?;
                }
                writes::record(db, now, &caller.subject, &format!("{} access", decision.verb()), &agreement.product)?;
                let decided = agreements::get(db, id, now)?.ok_or_else(|| RegistryError::AgreementNotFound(id))?;
                let kind = match decision {
                    Decision::Approve => kinds::ACCESS_APPROVED,
                    Decision::Deny => kinds::ACCESS_DENIED,
                    Decision::Revoke => kinds::ACCESS_REVOKED,
                };
                events::append(db, kinds::agreement(kind, &change(&decided, &caller.subject)))?;
                report_superseded(db, &superseded, &decided.name, now)?;
                tracing::info!(caller = %caller.subject, id, decision = decision.verb(), "agreement decided");
                Ok(decided)
            })
            .await
            .inspect(|_| self.meters.decision(decision.past()))
    }
}

/// Appends the events of the agreements `ids` that agreement `newer`
/// superseded.
fn report_superseded(db: &mut dyn crate::store::sql::Sql, ids: &[i64], newer: &str, now: i64) -> Result<()> {
    for &id in ids {
        if let Some(ended) = agreements::get(db, id, now)? {
            events::append(db, kinds::agreement(kinds::ACCESS_SUPERSEDED, &change(&ended, newer)))?;
        }
    }
    Ok(())
}

/// What an event about `agreement`, changed by `by`, reports.
fn change<'a>(agreement: &'a Agreement, by: &'a str) -> kinds::AgreementChange<'a> {
    kinds::AgreementChange {
        name: &agreement.name,
        product: &agreement.product,
        consumer: (&agreement.issuer, &agreement.principal),
        state: agreement.state().as_str_name().trim_start_matches("AGREEMENT_STATE_"),
        by,
    }
}

fn state_name(state: AgreementState) -> String {
    state.as_str_name().trim_start_matches("AGREEMENT_STATE_").to_ascii_lowercase()
}

#[tonic::async_trait]
impl AccessService for Access {
    async fn request_access(
        &self,
        request: Request<RequestAccessRequest>,
    ) -> std::result::Result<Response<RequestAccessResponse>, Status> {
        let caller = caller(request.extensions())?;
        let agreement = self.request(caller, request.into_inner()).await?;
        Ok(Response::new(RequestAccessResponse { agreement: Some(agreement) }))
    }

    async fn list_agreements(
        &self,
        request: Request<ListAgreementsRequest>,
    ) -> std::result::Result<Response<ListAgreementsResponse>, Status> {
        let caller = caller(request.extensions())?;
        let (agreements, next_page_token) = self.list(caller, request.into_inner()).await?;
        Ok(Response::new(ListAgreementsResponse { agreements, next_page_token }))
    }

    async fn approve_agreement(
        &self,
        request: Request<ApproveAgreementRequest>,
    ) -> std::result::Result<Response<ApproveAgreementResponse>, Status> {
        let caller = caller(request.extensions())?;
        let request = request.into_inner();
        let agreement = self.decide(caller, &request.name, &request.note, Decision::Approve).await?;
        Ok(Response::new(ApproveAgreementResponse { agreement: Some(agreement) }))
    }

    async fn deny_agreement(
        &self,
        request: Request<DenyAgreementRequest>,
    ) -> std::result::Result<Response<DenyAgreementResponse>, Status> {
        let caller = caller(request.extensions())?;
        let request = request.into_inner();
        let agreement = self.decide(caller, &request.name, &request.note, Decision::Deny).await?;
        Ok(Response::new(DenyAgreementResponse { agreement: Some(agreement) }))
    }

    async fn revoke_agreement(
        &self,
        request: Request<RevokeAgreementRequest>,
    ) -> std::result::Result<Response<RevokeAgreementResponse>, Status> {
        let caller = caller(request.extensions())?;
        let request = request.into_inner();
        let agreement = self.decide(caller, &request.name, &request.note, Decision::Revoke).await?;
        Ok(Response::new(RevokeAgreementResponse { agreement: Some(agreement) }))
    }
}
