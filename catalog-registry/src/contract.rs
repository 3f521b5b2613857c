//! Reading a registered product's contract out of its descriptor set.

use mesh_contracts::catalog::Product;
use mesh_contracts::descriptor::{ProductShape, ShapeError, service_descriptor_set};
use prost_reflect::DescriptorPool;
use sha2::{Digest, Sha256};

use crate::error::{RegistryError, Result};
use crate::validate;

/// Largest descriptor set accepted.
pub const MAX_DESCRIPTOR_SET: usize = 2 * 1024 * 1024;

/// What a descriptor set says about one product.
#[derive(Debug, Clone)]
pub struct Contract {
    /// The product service and its row type.
    pub shape: ProductShape,
    /// The service's file and its imports only, encoded with options kept.
    pub descriptor_set: Vec<u8>,
    /// SHA-256 of `descriptor_set`, hex encoded.
    pub fingerprint: String,
    /// The catalog entry fields that come from the contract: service, row
    /// type, metadata, description and columns.
    pub entry: Product,
}

impl Contract {
    /// Reads the contract of `service` from an encoded `FileDescriptorSet`.
    pub fn read(descriptor_set: &[u8], service: &str) -> Result<Self> {
        if descriptor_set.is_empty() {
            return Err(RegistryError::invalid(
                "descriptor_set",
                "is empty: send the encoded FileDescriptorSet holding the product service and its imports",
            ));
        }
        if descriptor_set.len() > MAX_DESCRIPTOR_SET {
            return Err(RegistryError::invalid(
                "descriptor_set",
                format!(
                    "is {} bytes, above the limit of {MAX_DESCRIPTOR_SET}: send only the product's files",
                    descriptor_set.len()
                ),
            ));
        }
        let pool = DescriptorPool::decode(descriptor_set).map_err(|e| {
            RegistryError::invalid("descriptor_set", format!("does not parse as a FileDescriptorSet: {e}"))
        })?;
        let shape = ProductShape::find(&pool, service).map_err(|e| match e {
            ShapeError::ServiceNotFound { .. } => RegistryError::invalid("service", e.to_string()),
            ShapeError::Convention { .. } => RegistryError::invalid("descriptor_set", e.to_string()),
        })?;
        let metadata = shape.options();
        if metadata.owner_team.trim().is_empty() {
            return Err(RegistryError::invalid(
                "descriptor_set",
                format!(
                    "service `{service}` names no owner: set `option (mesh.product.v1.product).owner_team` \
                     (every product needs an owner who answers for it)"
                ),
            ));
        }
        for input in &metadata.input_products {
            validate::product_id("descriptor_set", input).map_err(|_| {
                RegistryError::invalid(
                    "descriptor_set",
                    format!("input product `{input}` in service `{service}` is not a product name like `payment.card_spending`"),
                )
            })?;
        }
        let descriptor_set = service_descriptor_set(&shape.service);
        let fingerprint = hex(&Sha256::digest(&descriptor_set));
        let entry = shape.catalog_entry();
        Ok(Self { shape, descriptor_set, fingerprint, entry })
    }

    /// Lowercase text that free-text search looks in: name, title,
    /// description, purpose and column descriptions.
    pub fn search_text(&self, product_id: &str) -> String {
        let metadata = self.entry.metadata.clone().unwrap_or_default();
        let mut text = vec![product_id, &metadata.title, &self.entry.description, &metadata.purpose];
        text.extend(self.entry.columns.iter().map(|c| c.description.as_str()));
        text.extend(self.entry.columns.iter().map(|c| c.name.as_str()));
        text.extend(metadata.tags.iter().map(String::as_str));
        text.join("\n").to_lowercase()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
