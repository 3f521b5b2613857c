//! Who may change what in the catalog: a domain's service identity
//! registers, renews and deregisters the domain's products and nothing
//! else; the domain's owners deprecate and undeprecate them; only an admin
//! deletes; an admin may do everything. Any authenticated caller reads.

use mesh_grpc::auth::{ADMIN, Principal, owner_role, service_role};

use crate::error::{RegistryError, Result};

/// A change to the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// RegisterProduct.
    Register,
    /// RenewLease.
    Renew,
    /// DeregisterEndpoint.
    Deregister,
    /// DeprecateProduct.
    Deprecate,
    /// UndeprecateProduct.
    Undeprecate,
    /// DeleteProduct.
    Delete,
}

impl Write {
    /// The verb, for messages and the write log.
    pub(super) fn verb(self) -> &'static str {
        match self {
            Write::Register => "register",
            Write::Renew => "renew the lease of",
            Write::Deregister => "deregister an endpoint of",
            Write::Deprecate => "deprecate",
            Write::Undeprecate => "undeprecate",
            Write::Delete => "delete",
        }
    }
}

/// Allows `caller` to make `write` to `product_id` (a validated
/// `domain.product` id), or says which role it lacks.
pub(super) fn authorize(caller: &Principal, write: Write, product_id: &str) -> Result<()> {
    if caller.has_role(ADMIN) {
        return Ok(());
    }
    let domain = mesh_contracts::access::domain_of(product_id);
    let (needed, who) = match write {
        Write::Register | Write::Renew | Write::Deregister => {
            (Some(service_role(domain)), format!("the {domain} domain's service identity"))
        }
        Write::Deprecate | Write::Undeprecate => {
            (Some(owner_role(domain)), format!("an owner of the {domain} domain"))
        }
        Write::Delete => (None, "an admin".to_owned()),
    };
    if needed.as_deref().is_some_and(|role| caller.has_role(role)) {
        return Ok(());
    }
    let roles = match needed {
        Some(role) => format!("the role `{role}` or `{ADMIN}`"),
        None => format!("the role `{ADMIN}`"),
    };
    Err(RegistryError::PermissionDenied(format!(
        "`{}` may not {} `{product_id}`: only {who} may, which needs {roles} (mesh whoami shows your roles)",
        caller.subject,
        write.verb()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[&str]) -> Principal {
        Principal {
            subject: "kim".into(),
            issuer: String::new(),
            roles: roles.iter().map(|r| (*r).into()).collect(),
        }
    }

    #[test]
    fn each_write_needs_its_role() {
        let payment = principal(&["service:payment"]);
        assert!(authorize(&payment, Write::Register, "payment.card_spending").is_ok());
        assert!(authorize(&payment, Write::Renew, "payment.card_spending").is_ok());
        let err = authorize(&payment, Write::Register, "customer.profiles").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`kim` may not register `customer.profiles`: only the customer domain's service identity may, \
             which needs the role `service:customer` or `admin` (mesh whoami shows your roles)"
        );
        assert!(authorize(&payment, Write::Deprecate, "payment.card_spending").is_err());
        let owner = principal(&["owner:payment"]);
        assert!(authorize(&owner, Write::Deprecate, "payment.card_spending").is_ok());
        assert!(authorize(&owner, Write::Undeprecate, "payment.card_spending").is_ok());
        assert!(authorize(&owner, Write::Register, "payment.card_spending").is_err());
        let err = authorize(&owner, Write::Delete, "payment.card_spending").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`kim` may not delete `payment.card_spending`: only an admin may, which needs the role `admin` \
             (mesh whoami shows your roles)"
        );
        assert!(authorize(&principal(&["admin"]), Write::Delete, "payment.card_spending").is_ok());
        // A role for a domain whose name starts like another's grants nothing there.
        assert!(authorize(&principal(&["service:pay"]), Write::Register, "payment.card_spending").is_err());
    }
}
