//! What one caller may read of a product, decided for each query from the
//! product's access mode, its columns' classifications and the caller's
//! agreement:
//! - the product's owners, its domain's service identity and admins read
//!   everything, raw;
//! - PUBLIC and INTERNAL columns are readable under any agreement (and by
//!   anyone on an OPEN product); identifier columns too, as a keyed
//!   pseudonym unless the agreement grants the raw value;
//! - QUASI_IDENTIFIER, SENSITIVE and unclassified columns only where the
//!   agreement grants them;
//! - on a BY_AGREEMENT product, a caller without an agreement in force
//!   reads nothing.

use mesh_contracts::access::{Delivery, delivery};
use mesh_contracts::catalog::Agreement;
use mesh_contracts::product::AccessMode;
use mesh_grpc::auth::{Principal, owner_role, service_role};
use sha2::{Digest, Sha256};

use crate::error::{DomainError, Result};
use crate::query::pseudonym::PseudonymKey;
use crate::values::schema::RowSchema;

/// What one caller may read of one product.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Per schema column: whether the caller may read it.
    pub(crate) readable: Vec<bool>,
    /// Per schema column: whether it is delivered as a pseudonym.
    pub(crate) pseudonymized: Vec<bool>,
    /// The agreement's row scope (a filter), empty for every row.
    pub(crate) row_scope: String,
    /// Who reads under which agreement, bound into resume tokens.
    pub(crate) binding: Vec<u8>,
    /// The caller's pseudonym key, when a column is pseudonymized.
    pub(crate) pseudonyms: Option<PseudonymKey>,
    /// The agreement read under (`agreements/7`), if any.
    pub(crate) agreement: Option<String>,
    /// The product, for advice in refusals.
    pub(crate) product: String,
    /// The agreement's purpose, for the audit.
    pub(crate) purpose: String,
    /// The caller reads as the product's owner (or its domain itself).
    pub(crate) owner: bool,
}

/// The product facts a grant is decided on.
#[derive(Debug, Clone, Copy)]
pub struct AccessPolicy<'a> {
    /// The product, e.g. `payment.card_spending`.
    pub product: &'a str,
    /// Its domain.
    pub domain: &'a str,
    /// OPEN or BY_AGREEMENT.
    pub mode: AccessMode,
    /// Its columns.
    pub schema: &'a RowSchema,
}

impl Grant {
    /// Everything, raw: for the product's owners and for the domain itself.
    pub fn full(schema: &RowSchema) -> Self {
        let columns = schema.columns.len();
        Self {
            readable: vec![true; columns],
            pseudonymized: vec![false; columns],
            row_scope: String::new(),
            binding: b"full".to_vec(),
            pseudonyms: None,
            agreement: None,
            product: String::new(),
            purpose: String::new(),
            owner: true,
        }
    }

    /// Whether the caller reads every column of every row in the clear,
    /// as the product's owner: the source's order of the rows (which may
    /// follow a column the product does not show) is theirs to see.
    pub(crate) fn reads_as_owner(&self) -> bool {
        self.owner
            && self.row_scope.is_empty()
            && self.readable.iter().all(|r| *r)
            && !self.pseudonymized.iter().any(|p| *p)
    }

    /// What `caller` may read under `policy`, given the caller's agreement
    /// in force (if any) and the mesh's pseudonym key.
    pub fn decide(
        caller: &Principal,
        policy: AccessPolicy<'_>,
        agreement: Option<&Agreement>,
        pseudonym_master: Option<&PseudonymKey>,
    ) -> Result<Self> {
        let owner = caller.has_role_or_admin(&owner_role(policy.domain))
            || caller.has_role(&service_role(policy.domain));
        if owner {
            let mut grant = Self::full(policy.schema);
            grant.binding = binding(caller, "owner");
            grant.product = policy.product.to_owned();
            return Ok(grant);
        }
        let open = policy.mode == AccessMode::Open;
        if agreement.is_none() && !open {
            return Err(DomainError::PermissionDenied(format!(
                "`{}` has no agreement in force for {}, which is read by agreement; ask for one with \
                 `mesh access request {} --purpose \"...\" --columns ...` (mesh describe {} shows what is \
                 granted at once)",
                caller.subject, policy.product, policy.product, policy.product
            )));
        }
        let (columns, raw) = agreement.map(|a| (&a.columns[..], &a.raw_columns[..])).unwrap_or_default();
        let mut readable = Vec::new();
        let mut pseudonymized = Vec::new();
        for column in &policy.schema.columns {
            let delivery = delivery(column.classification, &column.name, columns, raw);
            readable.push(delivery != Delivery::Withheld);
            pseudonymized.push(delivery == Delivery::Pseudonym);
        }
        // The consumer's own key: its pseudonyms, and its keyed order of
        // any key column it may not read in the clear (even one withheld).
        let pseudonyms = pseudonym_master.map(|master| master.for_consumer(&caller.issuer, &caller.subject));
        if pseudonyms.is_none() && pseudonymized.iter().any(|p| *p) {
            return Err(DomainError::Unavailable(format!(
                "{} delivers identifiers as pseudonyms, but this domain has no pseudonym key (--pseudonym-key)",
                policy.product
            )));
        }
        let name = agreement.map(|a| a.name.clone());
        Ok(Self {
            readable,
            pseudonymized,
            row_scope: agreement.map(|a| a.row_scope.clone()).unwrap_or_default(),
            binding: binding(caller, name.as_deref().unwrap_or("open")),
            pseudonyms,
            agreement: name,
            product: policy.product.to_owned(),
            purpose: agreement.map(|a| a.purpose.clone()).unwrap_or_default(),
            owner: false,
        })
    }

    /// The names of the columns the caller may not read, in schema order.
    pub(crate) fn withheld(&self, schema: &RowSchema) -> Vec<String> {
        schema.columns.iter().zip(&self.readable).filter(|(_, r)| !**r).map(|(c, _)| c.name.clone()).collect()
    }
}

/// Who reads under what, hashed: bound into resume tokens so another
/// caller, or the same one under another agreement, cannot use them.
fn binding(caller: &Principal, under: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for part in [caller.issuer.as_str(), caller.subject.as_str(), under] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().to_vec()
}
