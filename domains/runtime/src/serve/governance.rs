//! The access rules a domain enforces: the agreements for its products,
//! kept current from the registry (asked every [`SYNC_EVERY`]) and in a
//! durable local copy, so that while the registry is down the agreements
//! already made are still enforced and data still flows (nothing new can be
//! granted then); and the mesh's pseudonym key.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::{Agreement, AgreementState, ListAgreementsRequest, ListAgreementsResponse};
use mesh_contracts::product::ReadRecord;
use mesh_grpc::Credentials;
use mesh_grpc::auth::Principal;
use prost::Message;
use tokio::sync::watch;

use crate::error::{DomainError, Result};
use crate::query::grant::Grant;
use crate::query::pseudonym::PseudonymKey;
use crate::serve::audit::{Audit, AuditLog};
use crate::serve::product::Product;
use crate::serve::registries::{RegistryClient, Timeouts};

/// How often the agreements are asked for: a revocation takes effect
/// within this (plus one call) while the registry is up.
pub const SYNC_EVERY: Duration = Duration::from_secs(2);

/// A domain's agreements and pseudonym key.
#[derive(Debug)]
pub struct Governance {
    agreements: RwLock<HashMap<String, Vec<Agreement>>>,
    copy: Option<PathBuf>,
    pseudonyms: Option<PseudonymKey>,
    audit: Option<AuditLog>,
}

/// Whether `end` is still ahead of now, to the nanosecond (an agreement
/// lasts until the instant it names, not the second before).
fn not_yet(end: &prost_types::Timestamp) -> bool {
    std::time::SystemTime::try_from(*end).is_ok_and(|end| end > std::time::SystemTime::now())
}

impl Governance {
    /// The agreements last kept in `copy` (if given and present),
    /// `pseudonyms` for identifier columns, and `audit` for every read.
    pub fn open(
        copy: Option<PathBuf>,
        pseudonyms: Option<PseudonymKey>,
        audit: Option<AuditLog>,
    ) -> Result<Arc<Self>> {
        let mut agreements: HashMap<String, Vec<Agreement>> = HashMap::new();
        if let Some(path) = copy.as_ref().filter(|p| p.exists()) {
            let bytes = std::fs::read(path)?;
            let kept = ListAgreementsResponse::decode(bytes.as_slice()).map_err(|e| {
                DomainError::Schema(format!("the agreements kept in {} are damaged: {e}", path.display()))
            })?;
            for agreement in kept.agreements {
                agreements.entry(agreement.product.clone()).or_default().push(agreement);
            }
        }
        Ok(Arc::new(Self { agreements: RwLock::new(agreements), copy, pseudonyms, audit }))
    }

    /// The read log, if the domain keeps one.
    pub fn audit_log(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    /// The start of the record of `caller` reading `product`.
    pub(crate) fn audit(&self, caller: &Principal, product: &Product) -> Audit {
        let record = ReadRecord {
            product: product.spec.id.to_owned(),
            principal: caller.subject.clone(),
            issuer: caller.issuer.clone(),
            roles: caller.roles.clone(),
            start_time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
            ..Default::default()
        };
        Audit { log: self.audit.clone(), record }
    }

    /// What `caller` may read of `product` now.
    pub fn grant(&self, caller: &Principal, product: &Product) -> Result<Grant> {
        let policy = product.access_policy();
        let agreements = self.agreements.read().unwrap_or_else(|p| p.into_inner());
        let in_force = agreements.get(product.spec.id).and_then(|list| {
            list.iter().find(|a| {
                a.state() == AgreementState::Approved
                    && a.principal == caller.subject
                    && a.issuer == caller.issuer
                    && a.end_time.as_ref().is_some_and(not_yet)
            })
        });
        Grant::decide(caller, policy, in_force, self.pseudonyms.as_ref())
    }

    /// Replaces `product`'s agreements with `agreements` (newest first) and
    /// keeps them in the local copy.
    fn replace(&self, product: &str, agreements: Vec<Agreement>) -> Result<()> {
        let mut book = self.agreements.write().unwrap_or_else(|p| p.into_inner());
        if book.get(product) == Some(&agreements) {
            return Ok(());
        }
        book.insert(product.to_owned(), agreements);
        if let Some(path) = &self.copy {
            let all = ListAgreementsResponse {
                agreements: book.values().flatten().cloned().collect(),
                ..Default::default()
            };
            mesh_grpc::private_files::write_private(path, &all.encode_to_vec())?;
        }
        Ok(())
    }
}

/// Every agreement in force (or pending) for `product`, page by page:
/// none is left out however many there are.
async fn all_agreements(
    client: &mut AccessServiceClient<mesh_grpc::MeshChannel>,
    product: &str,
) -> std::result::Result<Vec<Agreement>, tonic::Status> {
    let mut request = ListAgreementsRequest { product: product.to_owned(), ..Default::default() };
    let mut agreements = Vec::new();
    loop {
        let page = client.list_agreements(request.clone()).await?.into_inner();
        agreements.extend(page.agreements.into_iter().filter(|a| a.state() == AgreementState::Approved));
        if page.next_page_token.is_empty() {
            return Ok(agreements);
        }
        request.page_token = page.next_page_token;
    }
}

/// How long asking the registry for agreements may take.
const SYNC_TIMEOUTS: Timeouts = Timeouts { connect: Duration::from_secs(5), call: Duration::from_secs(5) };

/// Keeps `governance` current with the agreements of `products` from the
/// registry at the first of `registries` that answers (moving on to the
/// next while one cannot be reached) until `stop` turns true.
pub(crate) async fn keep_agreements(
    governance: Arc<Governance>,
    registries: Vec<String>,
    credentials: Credentials,
    products: Vec<&'static str>,
    mut stop: watch::Receiver<bool>,
) {
    let mut registry =
        match RegistryClient::new(registries, credentials, SYNC_TIMEOUTS, AccessServiceClient::new) {
            Ok(registry) => registry,
            Err(error) => {
                tracing::error!(%error, "cannot ask the registry for agreements");
                return;
            }
        };
    let mut failing = false;
    loop {
        for product in &products {
            match all_agreements(&mut registry.client, product).await {
                Ok(agreements) => {
                    if failing {
                        tracing::info!(registry = %registry.url(), "agreements current again");
                        failing = false;
                    }
                    if let Err(error) = governance.replace(product, agreements) {
                        tracing::error!(%error, "cannot keep the agreements locally");
                    }
                }
                Err(status) => {
                    if !failing {
                        tracing::warn!(registry = %registry.url(), reason = status.message(),
                            "cannot fetch agreements; enforcing the ones kept");
                        failing = true;
                    }
                    if registry.fail_over(&status) {
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(SYNC_EVERY) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
}
