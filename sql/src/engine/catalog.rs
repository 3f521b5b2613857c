//! The products the caller can see, as tables: each product id in the
//! default schema (`"payment.card_spending"`), and each domain as a
//! schema of its products' short names (`payment.card_spending`). A table
//! is made when a query names it: its columns are asked of the owning
//! domain with the caller's token.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};

use super::Mesh;
use super::scan::external;
use super::table::ProductTable;
use crate::flight::{ReadSettings, schema_of};

/// The default schema: every product under its id.
pub const PRODUCTS_SCHEMA: &str = "public";

/// The product catalog of one caller.
#[derive(Debug)]
pub(crate) struct MeshCatalog {
    products: Arc<Products>,
}

/// What the caller's tables are made from.
struct Products {
    ids: Vec<String>,
    mesh: Arc<dyn Mesh>,
    settings: ReadSettings,
}

impl std::fmt::Debug for Products {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} products", self.ids.len())
    }
}

impl MeshCatalog {
    /// The catalog of products `ids`, read through `mesh`.
    pub(crate) fn new(mut ids: Vec<String>, mesh: Arc<dyn Mesh>, settings: ReadSettings) -> Self {
        ids.sort();
        ids.dedup();
        Self { products: Arc::new(Products { ids, mesh, settings }) }
    }

    fn domains(&self) -> Vec<String> {
        let mut domains: Vec<String> =
            self.products.ids.iter().filter_map(|id| id.split_once('.')).map(|(d, _)| d.to_owned()).collect();
        domains.dedup();
        domains
    }
}

impl CatalogProvider for MeshCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = vec![PRODUCTS_SCHEMA.to_owned()];
        names.extend(self.domains().into_iter().filter(|d| d != PRODUCTS_SCHEMA));
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let domain = (name != PRODUCTS_SCHEMA).then(|| name.to_owned());
        if domain.as_ref().is_some_and(|d| !self.domains().contains(d)) {
            return None;
        }
        Some(Arc::new(ProductSchema { domain, products: self.products.clone() }))
    }
}

/// The default schema (`domain` none) or one domain's.
#[derive(Debug)]
struct ProductSchema {
    domain: Option<String>,
    products: Arc<Products>,
}

impl ProductSchema {
    /// The product id a table name of this schema stands for.
    fn product(&self, table: &str) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}.{table}"),
            None => table.to_owned(),
        }
    }
}

#[async_trait]
impl SchemaProvider for ProductSchema {
    fn table_names(&self) -> Vec<String> {
        let ids = self.products.ids.iter();
        match &self.domain {
            None => ids.cloned().collect(),
            Some(domain) => ids
                .filter_map(|id| id.strip_prefix(domain.as_str())?.strip_prefix('.'))
                .map(str::to_owned)
                .collect(),
        }
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let product = self.product(name);
        if !self.products.ids.contains(&product) {
            return Err(unknown_product(&product, &self.products.ids));
        }
        let mut replicas = self.products.mesh.replicas(&product).await.map_err(external)?;
        let schema = schema_of(&mut replicas, &product, &self.products.settings).await.map_err(external)?;
        Ok(Some(Arc::new(ProductTable::new(product, schema, replicas, self.products.settings.clone()))))
    }

    /// Every product is a base table: said without asking its domain, so
    /// listing tables (`information_schema`) calls no domain.
    async fn table_type(&self, name: &str) -> Result<Option<datafusion::datasource::TableType>> {
        Ok(self.table_exist(name).then_some(datafusion::datasource::TableType::Base))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.products.ids.contains(&self.product(name))
    }
}

/// The error for a table name that is no product the caller can see.
fn unknown_product(product: &str, known: &[String]) -> DataFusionError {
    let close: Vec<&str> = known
        .iter()
        .filter(|k| k.contains(product) || product.contains(k.as_str()) || same_name(k, product))
        .map(String::as_str)
        .take(5)
        .collect();
    let hint = match close.as_slice() {
        [] => "`mesh products` lists the products you can see".to_owned(),
        close => {
            format!("did you mean \"{}\"? (quote product ids: FROM \"domain.product\")", close.join("\", \""))
        }
    };
    DataFusionError::Plan(format!("no product `{product}` in the catalog; {hint}"))
}

/// Whether `a` and `b` name the same product but for its domain.
fn same_name(a: &str, b: &str) -> bool {
    let name = |id: &str| id.rsplit('.').next().unwrap_or(id).to_owned();
    name(a) == name(b)
}
