//! Who may see who reads a product: its owners, its domain (which reported
//! them) and admins see the principals; everyone else sees only how many.

use mesh_contracts::catalog::Product;
use mesh_grpc::auth::{Principal, service_role};

/// Whether `caller` may see who reads `product`.
pub(crate) fn sees_readers(caller: &Principal, product: &str) -> bool {
    let domain = mesh_contracts::access::domain_of(product);
    crate::access::owns(caller, product) || caller.has_role(&service_role(domain))
}

/// Counts `product`'s readers, and leaves out who they are unless
/// `sees_readers`.
pub(crate) fn readers_shown(product: &mut Product, sees_readers: bool) {
    if let Some(data) = &mut product.data {
        data.consumer_count = i32::try_from(data.consumers.len()).unwrap_or(i32::MAX);
        if !sees_readers {
            data.consumers.clear();
        }
    }
}

/// `product` as `caller` may see it.
pub(crate) fn for_caller(mut product: Product, caller: &Principal) -> Product {
    let sees = sees_readers(caller, &product.product_id);
    readers_shown(&mut product, sees);
    product
}

#[cfg(test)]
mod tests {
    use mesh_contracts::catalog::{Consumer, DataStatus};

    use super::*;

    #[test]
    fn owners_see_who_reads_others_how_many() {
        let product = Product {
            product_id: "payment.card_spending".into(),
            data: Some(DataStatus {
                consumers: vec![Consumer { principal: "ana".into(), ..Default::default() }; 2],
                ..Default::default()
            }),
            ..Default::default()
        };
        let who = |roles: &[&str]| Principal {
            subject: "x".into(),
            issuer: String::new(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        };
        for (roles, sees) in [
            (&["owner:payment"][..], true),
            (&["admin"][..], true),
            (&["service:payment"][..], true),
            (&["analyst"][..], false),
            (&["owner:customer"][..], false),
        ] {
            let data = for_caller(product.clone(), &who(roles)).data.unwrap();
            assert_eq!(
                (data.consumers.len(), data.consumer_count),
                (if sees { 2 } else { 0 }, 2),
                "{roles:?}"
            );
        }
    }
}
