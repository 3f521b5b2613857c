//! The `products`, `product_tags` and `schema_versions` tables.

use mesh_contracts::catalog::{
    DataStatus, Deprecation, Domain, InputPort, Product, SchemaVersion, ServingStatus,
};
use prost::Message;

use super::sql::{Backend, Sql, Value};
use super::{endpoints, timestamp};
use crate::error::{RegistryError, Result};
use crate::params;

/// The registration state of a product, as needed to register it again.
#[derive(Debug, Clone)]
pub struct ProductRow {
    /// The product service's full name.
    pub service: String,
    /// The product's major version.
    pub major_version: u32,
    /// Its latest schema version.
    pub latest_version: i64,
}

/// Reads the registration state of a product.
pub fn find(db: &mut dyn Sql, product_id: &str) -> Result<Option<ProductRow>> {
    db.query_opt(
        "SELECT service, major_version, latest_version FROM products WHERE product_id = $1",
        params![product_id],
    )?
    .map(|row| {
        Ok(ProductRow { service: row.text(0)?, major_version: row.u32(1)?, latest_version: row.int(2)? })
    })
    .transpose()
}

/// One stored schema: its fingerprint and descriptor set.
#[derive(Debug, Clone)]
pub struct StoredSchema {
    /// SHA-256 of the descriptor set, hex.
    pub fingerprint: String,
    /// The encoded descriptor set.
    pub descriptor_set: Vec<u8>,
}

/// Reads one schema version of a product.
pub fn schema(db: &mut dyn Sql, product_id: &str, version: i64) -> Result<Option<StoredSchema>> {
    db.query_opt(
        "SELECT fingerprint, descriptor_set FROM schema_versions WHERE product_id = $1 AND version = $2",
        params![product_id, version],
    )?
    .map(|row| Ok(StoredSchema { fingerprint: row.text(0)?, descriptor_set: row.blob(1)? }))
    .transpose()
}

/// What a registration writes to the product's row.
#[derive(Debug)]
pub struct ProductWrite<'a> {
    /// The product id.
    pub product_id: &'a str,
    /// The owning domain.
    pub domain: &'a str,
    /// The contract-derived catalog entry (service, metadata, columns).
    pub entry: &'a Product,
    /// Lowercase text for free-text search.
    pub search_text: &'a str,
    /// The product's major version after this registration.
    pub major_version: u32,
    /// Its latest schema version after this registration.
    pub latest_version: i64,
    /// The time of the registration, in ms.
    pub now: i64,
}

/// Creates or updates a product's row and tags.
pub fn upsert(db: &mut dyn Sql, write: &ProductWrite<'_>) -> Result<()> {
    let metadata = write.entry.metadata.clone().unwrap_or_default();
    db.execute(
        "INSERT INTO products (product_id, domain, service, owner_team, major_version, latest_version,
                               entry, search_text, create_time, update_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
         ON CONFLICT (product_id) DO UPDATE SET
             service = $3, owner_team = $4, major_version = $5, latest_version = $6,
             entry = $7, search_text = $8, update_time = $9",
        params![
            write.product_id,
            write.domain,
            &write.entry.service,
            &metadata.owner_team,
            write.major_version,
            write.latest_version,
            write.entry.encode_to_vec(),
            write.search_text,
            write.now,
        ],
    )?;
    db.execute("DELETE FROM product_tags WHERE product_id = $1", params![write.product_id])?;
    // Tags are unique whatever their case.
    let mut seen = std::collections::HashSet::new();
    for tag in metadata.tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if seen.insert(tag.to_lowercase()) {
            db.execute(
                "INSERT INTO product_tags (product_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                params![write.product_id, tag],
            )?;
        }
    }
    Ok(())
}

/// A schema version to record.
#[derive(Debug)]
pub struct NewVersion<'a> {
    /// The product.
    pub product_id: &'a str,
    /// Its number, counting from 1.
    pub version: i64,
    /// The major version it belongs to.
    pub major_version: u32,
    /// SHA-256 of the descriptor set.
    pub fingerprint: &'a str,
    /// The product's own files, options kept.
    pub descriptor_set: &'a [u8],
    /// What changed from the previous version, in words.
    pub changes: &'a [String],
    /// When it was registered, ms since the epoch.
    pub now: i64,
    /// Who registered it (the caller's subject).
    pub registered_by: &'a str,
}

/// Records a new schema version.
pub fn insert_version(db: &mut dyn Sql, new: &NewVersion<'_>) -> Result<()> {
    db.execute(
        "INSERT INTO schema_versions (product_id, version, major_version, fingerprint, descriptor_set, changes,
                                      create_time, registered_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        params![
            new.product_id,
            new.version,
            new.major_version,
            new.fingerprint,
            new.descriptor_set,
            new.changes.join("\n"),
            new.now,
            new.registered_by
        ],
    )?;
    Ok(())
}

/// Reads a whole catalog entry: contract, versions, endpoints, status,
/// deprecation and input ports, as of `now`.
pub fn load(db: &mut dyn Sql, product_id: &str, now: i64) -> Result<Option<Product>> {
    let row = db
        .query_opt(
            "SELECT domain, major_version, latest_version, entry, deprecation_message, deprecate_time,
                    create_time, update_time, data
             FROM products WHERE product_id = $1",
            params![product_id],
        )?
        .map(|row| {
            Ok::<_, RegistryError>(StoredProduct {
                domain: row.text(0)?,
                major_version: row.u32(1)?,
                latest_version: row.int(2)?,
                entry: row.blob(3)?,
                deprecation: row.opt_text(4)?,
                deprecate_time: row.opt_int(5)?,
                create_time: row.int(6)?,
                update_time: row.int(7)?,
                data: row.opt_blob(8)?,
            })
        })
        .transpose()?;
    let Some(stored) = row else {
        return Ok(None);
    };
    let unreadable = |e: prost::DecodeError| {
        RegistryError::Internal(format!("stored entry of `{product_id}` is unreadable: {e}"))
    };
    let mut product = Product::decode(stored.entry.as_slice()).map_err(unreadable)?;
    product.name = format!("products/{product_id}");
    product.product_id = product_id.to_owned();
    product.domain = stored.domain;
    product.major_version = stored.major_version;
    product.latest_version = stored.latest_version;
    product.versions = versions(db, product_id)?;
    product.endpoints = endpoints::list(db, product_id, now)?;
    product.status = endpoints::status_of(&product.endpoints) as i32;
    product.deprecation = stored
        .deprecation
        .map(|message| Deprecation { message, deprecate_time: stored.deprecate_time.map(timestamp) });
    product.data =
        stored.data.map(|bytes| DataStatus::decode(bytes.as_slice())).transpose().map_err(unreadable)?;
    let inputs = product.metadata.as_ref().map(|m| m.input_products.clone()).unwrap_or_default();
    product.input_ports = inputs
        .into_iter()
        .map(|input| {
            let status = status(db, &input, now)?;
            Ok(InputPort { product: input, status: status as i32 })
        })
        .collect::<Result<_>>()?;
    product.create_time = Some(timestamp(stored.create_time));
    product.update_time = Some(timestamp(stored.update_time));
    Ok(Some(product))
}

/// A `products` row as stored.
struct StoredProduct {
    domain: String,
    major_version: u32,
    latest_version: i64,
    entry: Vec<u8>,
    deprecation: Option<String>,
    deprecate_time: Option<i64>,
    create_time: i64,
    update_time: i64,
    data: Option<Vec<u8>>,
}

fn versions(db: &mut dyn Sql, product_id: &str) -> Result<Vec<SchemaVersion>> {
    let rows = db.query(
        "SELECT version, major_version, fingerprint, changes, create_time, registered_by
         FROM schema_versions WHERE product_id = $1 ORDER BY version",
        params![product_id],
    )?;
    rows.iter()
        .map(|row| {
            Ok(SchemaVersion {
                version: row.int(0)?,
                major_version: row.u32(1)?,
                fingerprint: row.text(2)?,
                create_time: Some(timestamp(row.int(4)?)),
                changes: row.text(3)?.lines().map(str::to_owned).collect(),
                registered_by: row.text(5)?,
            })
        })
        .collect()
}

/// The serving status of a product by id; `NOT_REGISTERED` if unknown.
fn status(db: &mut dyn Sql, product_id: &str, now: i64) -> Result<ServingStatus> {
    if find(db, product_id)?.is_none() {
        return Ok(ServingStatus::NotRegistered);
    }
    Ok(endpoints::status_of(&endpoints::list(db, product_id, now)?))
}

/// The filters of a product listing.
#[derive(Debug, Default, Clone)]
pub struct ProductFilter {
    /// Only this domain, if not empty.
    pub domain: String,
    /// Only this owner team (case-insensitive), if not empty.
    pub owner: String,
    /// Only products with this tag (case-insensitive), if not empty.
    pub tag: String,
    /// Words that must all occur in the product's search text.
    pub words: Vec<String>,
}

impl ProductFilter {
    /// The values a page token is bound to.
    pub fn token_key(&self) -> [String; 5] {
        let words = self.words.join(" ").to_lowercase();
        [
            "products".to_owned(),
            self.domain.clone(),
            self.owner.to_lowercase(),
            self.tag.to_lowercase(),
            words,
        ]
    }
}

/// One page of product ids matching `filter`, after `after`, plus the number
/// of matches over all pages.
pub fn list_ids(
    db: &mut dyn Sql,
    filter: &ProductFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<String>, i64)> {
    let mut conditions = vec![
        "($1 = '' OR domain = $1)".to_owned(),
        "($2 = '' OR lower(owner_team) = lower($2))".to_owned(),
        "($3 = '' OR EXISTS (SELECT 1 FROM product_tags t WHERE t.product_id = p.product_id \
         AND lower(t.tag) = lower($3)))"
            .to_owned(),
    ];
    let mut values: Vec<Value> = params![&filter.domain, &filter.owner, &filter.tag].to_vec();
    let contains = match db.backend() {
        Backend::Sqlite => "instr",
        Backend::Postgres => "strpos",
    };
    for word in &filter.words {
        values.push(word.to_lowercase().into());
        conditions.push(format!("{contains}(search_text, ${}) > 0", values.len()));
    }
    let matching = conditions.join(" AND ");
    let total =
        db.query_one(&format!("SELECT count(*) FROM products p WHERE {matching}"), &values)?.int(0)?;
    values.push(after.unwrap_or("").into());
    let after_param = values.len();
    let sql = format!(
        "SELECT product_id FROM products p WHERE {matching} AND product_id > ${after_param}
         ORDER BY product_id LIMIT {limit}"
    );
    let ids = db.query(&sql, &values)?.iter().map(|row| row.text(0)).collect::<Result<_>>()?;
    Ok((ids, total))
}

/// Whether domain `domain` has a product in the catalog.
pub fn has_domain(db: &mut dyn Sql, domain: &str) -> Result<bool> {
    Ok(db.query_opt("SELECT 1 FROM products WHERE domain = $1 LIMIT 1", params![domain])?.is_some())
}

/// Up to `limit` domains ordered by name, after `after`, with their products.
pub fn domains(db: &mut dyn Sql, after: Option<&str>, limit: usize, now: i64) -> Result<Vec<Domain>> {
    let rows = db.query(
        "SELECT domain, product_id, owner_team,
                CASE WHEN EXISTS (SELECT 1 FROM endpoints e
                                  WHERE e.product_id = p.product_id AND e.lease_expire_time > $2)
                     THEN 1 ELSE 0 END
         FROM products p
         WHERE domain IN (SELECT DISTINCT domain FROM products WHERE domain > $1 ORDER BY domain LIMIT $3)
         ORDER BY domain, product_id",
        params![after.unwrap_or(""), now, limit as i64],
    )?;
    let mut domains: Vec<Domain> = Vec::new();
    for row in rows {
        let (domain, product, owner, serving) = (row.text(0)?, row.text(1)?, row.text(2)?, row.bool(3)?);
        if domains.last().is_none_or(|d| d.name != domain) {
            domains.push(Domain { name: domain, ..Default::default() });
        }
        let current = domains.last_mut().expect("pushed above");
        current.products.push(product);
        if !current.owner_teams.contains(&owner) {
            current.owner_teams.push(owner);
        }
        current.serving_products += i32::from(serving);
    }
    Ok(domains)
}

/// Sets (`Some(message)`) or clears (`None`) a product's deprecation at
/// `now`; false if the product is unknown.
pub fn set_deprecation(db: &mut dyn Sql, product_id: &str, message: Option<&str>, now: i64) -> Result<bool> {
    let deprecate_time = if message.is_some() { Value::Int(now) } else { Value::Null };
    let changed = db.execute(
        "UPDATE products SET deprecation_message = $2, deprecate_time = $3, update_time = $4
         WHERE product_id = $1",
        &[product_id.into(), message.into(), deprecate_time, now.into()],
    )?;
    Ok(changed == 1)
}

/// Records what the product's domain reports about its data; false if the
/// product is unknown.
pub fn set_data(db: &mut dyn Sql, product_id: &str, data: &DataStatus) -> Result<bool> {
    let changed = db.execute(
        "UPDATE products SET data = $2 WHERE product_id = $1",
        params![product_id, data.encode_to_vec()],
    )?;
    Ok(changed == 1)
}

/// Deletes a product with its tags, versions and endpoints; false if unknown.
pub fn delete(db: &mut dyn Sql, product_id: &str) -> Result<bool> {
    let changed = db.execute("DELETE FROM products WHERE product_id = $1", params![product_id])?;
    Ok(changed == 1)
}
