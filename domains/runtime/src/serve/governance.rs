//! The access rules a domain enforces: the agreements for its products,
//! kept current from the registry and in a durable local copy, so that
//! while the registry is down the agreements already made are still
//! enforced and data still flows (nothing new can be granted then); and the
//! mesh's pseudonym key. The domain follows the registry's access events
//! (`Watch`) and asks again for a product's agreements the moment one of
//! them changes; every [`RESYNC_EVERY`] it asks for all of them anyway, and
//! while it cannot watch it asks every [`SYNC_EVERY`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::event_service_client::EventServiceClient;
use mesh_contracts::catalog::{
    Agreement, AgreementState, ListAgreementsRequest, ListAgreementsResponse, WatchRequest, WatchResponse,
};
use mesh_contracts::product::ReadRecord;
use mesh_grpc::Credentials;
use mesh_grpc::auth::Principal;
use prost::Message;
use tokio::sync::watch;

use crate::error::{DomainError, Result};
use crate::query::grant::Grant;
use crate::query::pseudonym::PseudonymKey;
use crate::serve::audit::{Audit, AuditLog};
use crate::serve::meters::AgreementMeters;
use crate::serve::product::Product;
use crate::serve::registries::{RegistryClient, Timeouts};

/// How often the agreements are asked for while the registry's events
/// cannot be followed: a revocation takes effect within this (plus one
/// call) while the registry is up.
pub const SYNC_EVERY: Duration = Duration::from_secs(2);
/// How often all agreements are asked for while events are followed.
pub const RESYNC_EVERY: Duration = Duration::from_secs(10);
/// The events that may change a product's agreements.
const ACCESS_EVENTS: &str = "mesh.access.*";

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
        Audit { log: self.audit.clone(), record, meters: Some(product.read_meters.clone()), format: "" }
    }

    /// What `caller` may read of `product` now.
    pub fn grant(&self, caller: &Principal, product: &Product) -> Result<Grant> {
        let policy = product.access_policy();
        let agreements = self.agreements.read().unwrap_or_else(|p| p.into_inner());
        let in_force = agreements.get(&product.spec.id).and_then(|list| {
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
/// How long one `Watch` of the registry's events may last before it is
/// opened again (from where it was).
const WATCH_TIMEOUTS: Timeouts =
    Timeouts { connect: Duration::from_secs(5), call: Duration::from_secs(3600) };

/// Keeps `governance` current with the agreements of `products` from the
/// registry at the first of `registries` that answers (moving on to the
/// next while one cannot be reached) until `stop` turns true.
pub(crate) async fn keep_agreements(
    governance: Arc<Governance>,
    meters: AgreementMeters,
    registries: Vec<String>,
    credentials: Credentials,
    products: Vec<String>,
    mut stop: watch::Receiver<bool>,
) {
    let clients =
        RegistryClient::new(registries.clone(), credentials.clone(), SYNC_TIMEOUTS, AccessServiceClient::new)
            .and_then(|access| {
                RegistryClient::new(registries, credentials, WATCH_TIMEOUTS, EventServiceClient::new)
                    .map(|events| (access, events))
            });
    let (mut registry, mut events) = match clients {
        Ok(clients) => clients,
        Err(error) => {
            tracing::error!(%error, "cannot ask the registry for agreements");
            return;
        }
    };
    let mut sync = AgreementSync { governance, meters, failing: false };
    let mut after = None;
    loop {
        // Watching before asking: nothing decided while we ask is missed.
        let watched = follow(&mut events, &mut after).await;
        for product in &products {
            if !sync.product(&mut registry, product).await {
                break;
            }
        }
        let quiet = match watched {
            Some(mut stream) => {
                let resync = tokio::time::sleep(RESYNC_EVERY);
                tokio::pin!(resync);
                loop {
                    tokio::select! {
                        message = stream.message() => match message {
                            Ok(Some(WatchResponse { event, resume_after })) => {
                                after = Some(resume_after);
                                let product = event.and_then(|e| products.iter().find(|p| **p == e.subject));
                                if let Some(product) = product {
                                    sync.product(&mut registry, product).await;
                                }
                            }
                            Ok(None) => break Duration::ZERO,
                            Err(status) => {
                                tracing::debug!(reason = status.message(), "the access events stopped; watching again");
                                events.fail_over(&status);
                                break SYNC_EVERY;
                            }
                        },
                        () = &mut resync => break Duration::ZERO,
                        _ = stop.changed() => return,
                    }
                }
            }
            None => SYNC_EVERY,
        };
        tokio::select! {
            () = tokio::time::sleep(quiet) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
}

/// The access events from the registry after `after` (from now on when
/// `None`, or when the registry no longer has the events after it: all
/// agreements are asked for next anyway); none while they cannot be watched.
async fn follow(
    events: &mut RegistryClient<EventServiceClient<mesh_grpc::MeshChannel>>,
    after: &mut Option<i64>,
) -> Option<tonic::Streaming<WatchResponse>> {
    let request = WatchRequest {
        after_sequence: after.unwrap_or(0),
        from_now: after.is_none(),
        types: vec![ACCESS_EVENTS.to_owned()],
        ..Default::default()
    };
    match events.client.watch(request).await {
        Ok(stream) => Some(stream.into_inner()),
        Err(status) => {
            tracing::debug!(reason = status.message(), "cannot watch the access events; asking every 2 s");
            if matches!(status.code(), tonic::Code::OutOfRange | tonic::Code::InvalidArgument) {
                *after = None;
            }
            events.fail_over(&status);
            None
        }
    }
}

/// Asking the registry for agreements, noting when it fails and recovers.
struct AgreementSync {
    governance: Arc<Governance>,
    meters: AgreementMeters,
    failing: bool,
}

impl AgreementSync {
    /// Asks for `product`'s agreements and keeps them; false when the
    /// registry did not answer (and moving on to another was tried).
    async fn product(
        &mut self,
        registry: &mut RegistryClient<AccessServiceClient<mesh_grpc::MeshChannel>>,
        product: &str,
    ) -> bool {
        match all_agreements(&mut registry.client, product).await {
            Ok(agreements) => {
                if self.failing {
                    tracing::info!(registry = %registry.url(), "agreements current again");
                    self.failing = false;
                }
                self.meters.synced(product, agreements.len());
                if let Err(error) = self.governance.replace(product, agreements) {
                    tracing::error!(%error, "cannot keep the agreements locally");
                }
                true
            }
            Err(status) => {
                if !self.failing {
                    tracing::warn!(registry = %registry.url(), reason = status.message(),
                        "cannot fetch agreements; enforcing the ones kept");
                    self.failing = true;
                }
                registry.fail_over(&status);
                false
            }
        }
    }
}
