//! A declared product opened over its domain's store: the product the
//! runtime serves, made from the product file and its compiled contract,
//! and its quality rules (the key unique, amounts not negative, and the
//! file's conditions), each condition compiled against the table before
//! any load needs it.

use std::sync::Arc;

use mesh_product_file::{Declared, Mistakes};
use mesh_runtime::quality::{self, QualityRule};
use mesh_runtime::{DomainError, DomainStore, Product, ProductSpec, Result};

/// A product of a product file, ready to load and serve.
#[derive(Debug)]
pub struct Published {
    /// What its file declares.
    pub declared: Declared,
    /// The product served.
    pub product: Arc<Product>,
    /// The rules every load of it must pass.
    pub rules: Vec<QualityRule>,
}

/// What the runtime is told of a declared product.
pub fn spec(declared: &Declared) -> ProductSpec {
    let file = &declared.file;
    ProductSpec {
        id: file.product.clone(),
        service: file.contract.service.clone(),
        table: file.table().to_owned(),
        key: file.key.clone(),
        indexes: file.indexes.clone(),
        amounts: file.amounts.clone(),
        major_version: file.major_version,
    }
}

impl Published {
    /// Opens `declared` over `store` (its table created if needed) and
    /// compiles its quality rules.
    pub fn open(declared: Declared, store: DomainStore) -> Result<Arc<Self>> {
        let refused = |pointer: &str, message: String| {
            DomainError::Config(Mistakes(vec![declared.file.mistake(pointer, message)]).to_string())
        };
        let product = Product::from_pool(spec(&declared), &declared.contract.pool, store)
            .map_err(|error| refused("", error.to_string()))?;
        let mut rules = vec![QualityRule::unique_key(&product.schema)];
        rules.extend(QualityRule::no_negative_amounts(&product.schema));
        let columns = declared.columns();
        for (i, declared_rule) in declared.file.quality.iter().enumerate() {
            let pointer = format!("/quality/{i}/holds");
            if let Some(reason) = crate::condition::refusal(&declared_rule.holds, &columns) {
                return Err(refused(
                    &pointer,
                    format!("quality.{i}.holds: rule `{}`: {reason}", declared_rule.name),
                ));
            }
            // A row fails when the condition is false; one it cannot be
            // judged on (NULL) passes, as in an SQL CHECK constraint.
            let rule = QualityRule::failing_when(
                &declared_rule.name,
                &declared_rule.description,
                format!("NOT ({})", declared_rule.holds),
            );
            quality::compiles(&product.store, &product.spec.id, &product.schema, &rule).map_err(|error| {
                refused(
                    &pointer,
                    format!(
                        "quality.{i}.holds: rule `{}` is not an SQL condition over the product's columns: {error}",
                        declared_rule.name
                    ),
                )
            })?;
            rules.push(rule);
        }
        Ok(Arc::new(Self { declared, product, rules }))
    }

    /// The product's id.
    pub fn id(&self) -> &str {
        &self.product.spec.id
    }
}
