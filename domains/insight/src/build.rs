//! Building the segments: stream both source products from their domains
//! (found through the registry), merge-join them on quarter + customer,
//! aggregate per segment, suppress small segments, replace the table.

use std::collections::BTreeMap;

use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{GetProductRequest, ProductView, ServingStatus};
use mesh_contracts::product::{QualityResult, QueryRequest};
use mesh_contracts::woori::customer::v1::CustomerProfile;
use mesh_contracts::woori::customer::v1::customer_profile_service_client::CustomerProfileServiceClient;
use mesh_contracts::woori::insight::v1::RefreshResponse;
use mesh_contracts::woori::payment::v1::CardSpending;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_domain_runtime::quality::{self, QualityRule};
use mesh_domain_runtime::store::record_load;
use mesh_domain_runtime::{DomainError, Product, Result};
use rusqlite::params;
use tonic::Streaming;

/// The source products (input ports).
pub const CUSTOMER_PRODUCT: &str = "customer.profiles";
/// The source products (input ports).
pub const PAYMENT_PRODUCT: &str = "payment.card_spending";

/// The broad categories, as field names of both rows and the segment table.
const BROAD: [&str; 10] = [
    "interior_am",
    "insuhos_am",
    "offedu_am",
    "trvlec_am",
    "fsbz_am",
    "svcarc_am",
    "dist_am",
    "plsanit_am",
    "clothgds_am",
    "auto_am",
];

/// quarter, life stage, province, grade.
type SegmentKey = (String, String, String, String);

#[derive(Default)]
struct Totals {
    customers: i64,
    total: i64,
    broad: [i64; 10],
}

/// Finds a serving endpoint of `product` in the registry.
async fn endpoint_of(
    registry: &mut CatalogServiceClient<tonic::transport::Channel>,
    product: &str,
) -> Result<String> {
    let found = registry
        .get_product(GetProductRequest {
            name: product.to_owned(),
            view: ProductView::Basic.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .product
        .ok_or_else(|| DomainError::Unavailable(format!("the registry returned no entry for {product}")))?;
    found
        .endpoints
        .iter()
        .find(|e| e.status() == ServingStatus::Serving)
        .map(|e| e.uri.clone())
        .ok_or_else(|| DomainError::Unavailable(format!("{product} has no serving endpoint in the registry")))
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

/// Rebuilds `product`'s table from the sources registered at `registry_url`,
/// leaving out segments with fewer than `min_customers` customers.
pub async fn rebuild(product: &Product, registry_url: &str, min_customers: i64) -> Result<RefreshResponse> {
    let mut registry = CatalogServiceClient::connect(registry_url.to_owned())
        .await
        .map_err(|e| DomainError::Unavailable(format!("registry {registry_url} unreachable: {e}")))?;
    let customer_url = endpoint_of(&mut registry, CUSTOMER_PRODUCT).await?;
    let payment_url = endpoint_of(&mut registry, PAYMENT_PRODUCT).await?;
    let connect_error =
        |url: &str, e: tonic::transport::Error| DomainError::Unavailable(format!("{url} unreachable: {e}"));
    let mut customers = CustomerProfileServiceClient::connect(customer_url.clone())
        .await
        .map_err(|e| connect_error(&customer_url, e))?
        .max_decoding_message_size(16 << 20);
    let mut payments = CardSpendingServiceClient::connect(payment_url.clone())
        .await
        .map_err(|e| connect_error(&payment_url, e))?
        .max_decoding_message_size(16 << 20);
    let profile_stream = customers
        .query(QueryRequest {
            read_mask: mask(&["bas_yh", "seq", "life_stage", "hous_sido_nm", "mbr_rk"]),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut spending_fields = vec!["bas_yh", "seq", "tot_use_am"];
    spending_fields.extend(BROAD);
    let spending_stream = payments
        .query(QueryRequest { read_mask: mask(&spending_fields), ..Default::default() })
        .await?
        .into_inner();

    let (segments, joined) = join_and_aggregate(profile_stream, spending_stream).await?;
    let source =
        format!("{CUSTOMER_PRODUCT} at {customer_url} joined with {PAYMENT_PRODUCT} at {payment_url}");
    let (published, suppressed) = write(product, segments, min_customers, source).await?;
    product.store.announce_load();
    tracing::info!(joined, published, suppressed, "segments rebuilt");
    Ok(RefreshResponse { joined_rows: joined, segments: published, suppressed_segments: suppressed })
}

/// Rows of a stream, one at a time.
struct Rows<T, B> {
    stream: Streaming<B>,
    buffer: std::vec::IntoIter<T>,
    take: fn(B) -> Vec<T>,
}

impl<T, B> Rows<T, B> {
    async fn next(&mut self) -> Result<Option<T>> {
        loop {
            if let Some(row) = self.buffer.next() {
                return Ok(Some(row));
            }
            match self.stream.message().await? {
                Some(batch) => self.buffer = (self.take)(batch).into_iter(),
                None => return Ok(None),
            }
        }
    }
}

/// Merge-joins two streams ordered by (bas_yh, seq): memory holds one batch
/// of each and the segment totals, whatever the sources' size.
async fn join_and_aggregate(
    profiles: Streaming<mesh_contracts::woori::customer::v1::QueryResponse>,
    spending: Streaming<mesh_contracts::woori::payment::v1::QueryResponse>,
) -> Result<(BTreeMap<SegmentKey, Totals>, i64)> {
    let mut profiles: Rows<CustomerProfile, _> = Rows {
        stream: profiles,
        buffer: Vec::new().into_iter(),
        take: |b: mesh_contracts::woori::customer::v1::QueryResponse| b.rows,
    };
    let mut spending: Rows<CardSpending, _> = Rows {
        stream: spending,
        buffer: Vec::new().into_iter(),
        take: |b: mesh_contracts::woori::payment::v1::QueryResponse| b.rows,
    };
    let mut segments: BTreeMap<SegmentKey, Totals> = BTreeMap::new();
    let mut joined = 0;
    let (mut profile, mut spend) = (profiles.next().await?, spending.next().await?);
    while let (Some(p), Some(s)) = (&profile, &spend) {
        match (&p.bas_yh, &p.seq).cmp(&(&s.bas_yh, &s.seq)) {
            std::cmp::Ordering::Less => profile = profiles.next().await?,
            std::cmp::Ordering::Greater => spend = spending.next().await?,
            std::cmp::Ordering::Equal => {
                let key = (p.bas_yh.clone(), p.life_stage.clone(), p.hous_sido_nm.clone(), p.mbr_rk.clone());
                let totals = segments.entry(key).or_default();
                totals.customers += 1;
                totals.total += s.tot_use_am;
                let broad = [
                    s.interior_am,
                    s.insuhos_am,
                    s.offedu_am,
                    s.trvlec_am,
                    s.fsbz_am,
                    s.svcarc_am,
                    s.dist_am,
                    s.plsanit_am,
                    s.clothgds_am,
                    s.auto_am,
                ];
                for (sum, value) in totals.broad.iter_mut().zip(broad) {
                    *sum += value;
                }
                joined += 1;
                profile = profiles.next().await?;
                spend = spending.next().await?;
            }
        }
    }
    Ok((segments, joined))
}

/// Replaces the segment table (one transaction) and records the load.
async fn write(
    product: &Product,
    segments: BTreeMap<SegmentKey, Totals>,
    min_customers: i64,
    source: String,
) -> Result<(i64, i64)> {
    let store = product.store.clone();
    let schema = product.schema.clone();
    let id = product.spec.id;
    tokio::task::spawn_blocking(move || {
        store.write(|conn| {
            let tx = conn.transaction()?;
            tx.execute(&format!("DELETE FROM {}", schema.table), [])?;
            let mut columns = vec![
                "bas_yh",
                "life_stage",
                "hous_sido_nm",
                "mbr_rk",
                "customer_count",
                "tot_use_am",
                "avg_use_am",
            ];
            columns.extend(BROAD);
            let placeholders = vec!["?"; columns.len()].join(", ");
            let mut insert = tx.prepare(&format!(
                "INSERT INTO {} ({}) VALUES ({placeholders})",
                schema.table,
                columns.join(", ")
            ))?;
            let (mut published, mut suppressed) = (0, 0);
            for ((quarter, stage, province, grade), totals) in &segments {
                if totals.customers < min_customers {
                    suppressed += 1;
                    continue;
                }
                let average = (totals.total as f64 / totals.customers as f64).round() as i64;
                let head = params![quarter, stage, province, grade, totals.customers, totals.total, average];
                for (i, value) in head.iter().enumerate() {
                    insert.raw_bind_parameter(i + 1, value)?;
                }
                for (i, value) in totals.broad.iter().enumerate() {
                    insert.raw_bind_parameter(head.len() + i + 1, value)?;
                }
                insert.raw_execute()?;
                published += 1;
            }
            drop(insert);
            let rules = [
                QualityRule::unique_key(&schema),
                QualityRule::failing_when(
                    "segments_meet_suppression_threshold",
                    &format!("every published segment has at least {min_customers} customers"),
                    format!("customer_count < {min_customers}"),
                ),
                QualityRule::failing_when(
                    "tot_equals_sum_of_broad",
                    "tot_use_am = the sum of the 10 broad categories",
                    format!("tot_use_am != {}", BROAD.join(" + ")),
                ),
            ];
            let quality: Vec<QualityResult> = quality::run(&tx, &schema, &rules)?;
            record_load(&tx, id, published, &source, &quality)?;
            tx.commit()?;
            Ok((published, suppressed))
        })
    })
    .await
    .map_err(|e| DomainError::Internal(e.to_string()))?
}
