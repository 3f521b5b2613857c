//! Who may see which event: everyone who may see a product sees its
//! catalog events; an agreement's events show to its consumer, the
//! product's owners, its domain and admins; a product's data events, when
//! it is read by agreement, to those and to consumers with an agreement in
//! force. A reader's answers about data events are kept per product until
//! the log shows a change that could alter them (any other event about the
//! product) or the agreement they rest on ends.

use std::collections::HashMap;

use mesh_contracts::catalog::AgreementState;
use mesh_contracts::product::AccessMode;
use mesh_grpc::auth::Principal;

use crate::access::{is_consumer_of, oversees};
use crate::error::Result;
use crate::store::Store;
use crate::store::agreements::{self, Listing};
use crate::store::events::{Audience, StoredEvent};
use crate::store::products;

/// One reader's view of the log.
#[derive(Debug)]
pub struct Viewer {
    caller: Principal,
    /// Per product: sees its data events until this time (ms; `i64::MAX`
    /// for good), or not at all (`i64::MIN`).
    data_until: HashMap<String, i64>,
}

impl Viewer {
    /// The view of `caller`.
    pub fn new(caller: Principal) -> Self {
        Self { caller, data_until: HashMap::new() }
    }

    /// Takes note of `event`, read in log order (every event about a
    /// product the reader follows passes through here, whether it asked
    /// for it or may see it): any change but data may change who sees the
    /// product's data.
    pub fn observe(&mut self, event: &StoredEvent) {
        if event.audience != Audience::Data {
            self.data_until.remove(&event.product);
        }
    }

    /// Whether the reader may see `event` (after [`Viewer::observe`]).
    pub async fn sees(&mut self, store: &Store, event: &StoredEvent) -> Result<bool> {
        Ok(match &event.audience {
            Audience::Catalog => true,
            Audience::Agreement { issuer, subject } => {
                is_consumer_of(&self.caller, issuer, subject) || oversees(&self.caller, &event.product)
            }
            Audience::Data if oversees(&self.caller, &event.product) => true,
            Audience::Data => {
                let until = match self.data_until.get(&event.product) {
                    Some(until) => *until,
                    None => {
                        let until = data_until(store, &self.caller, &event.product).await?;
                        self.data_until.insert(event.product.clone(), until);
                        until
                    }
                };
                mesh_contracts::time::now_ms() < until
            }
        })
    }
}

/// Until when `caller` may see `product`'s data events: for good when the
/// product is open, until its agreement ends when it holds one in force,
/// not at all otherwise (or when the product is gone).
async fn data_until(store: &Store, caller: &Principal, product: &str) -> Result<i64> {
    let (caller, product) = (caller.clone(), product.to_owned());
    store
        .read(move |db| {
            let now = db.now_ms()?;
            let Some(found) = products::load(db, &product, now)? else { return Ok(i64::MIN) };
            if found.metadata.is_some_and(|m| m.access_mode() == AccessMode::Open) {
                return Ok(i64::MAX);
            }
            let principal = (caller.subject.as_str(), caller.issuer.as_str());
            let listing = Listing::Consumer { principal, product: Some(&product) };
            let in_force = agreements::list(db, listing, false, (None, 10), now)?;
            Ok(in_force
                .iter()
                .filter(|a| a.state() == AgreementState::Approved)
                .filter_map(|a| a.end_time.as_ref())
                .map(mesh_contracts::time::ms)
                .max()
                .unwrap_or(i64::MIN))
        })
        .await
}
