//! The insight rebuild as it was written in Rust before insight was
//! declared in SQL, kept as the baseline of the `insight` group: stream
//! both source products from their domains (found through the registry),
//! merge-join them on quarter + customer, aggregate per segment, suppress
//! segments of fewer than 5 customers, replace the table.

use mesh_grpc::{Credentials, MeshChannel};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use csv::ByteRecord;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::catalog::{GetProductRequest, ProductView, ServingStatus};
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::customer::v1::CustomerProfile;
use mesh_contracts::woori::customer::v1::customer_profile_service_client::CustomerProfileServiceClient;
use mesh_contracts::woori::payment::v1::CardSpending;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_runtime::ingest::{self, MemorySource};
use mesh_runtime::quality::QualityRule;
use mesh_runtime::{DomainError, Product, Result};
use tonic::Streaming;
use woori_data::layout::BROAD_COLUMNS;

/// The source products (input ports).
pub(crate) const CUSTOMER_PRODUCT: &str = "customer.profiles";
/// The source products (input ports).
pub(crate) const PAYMENT_PRODUCT: &str = "payment.card_spending";

/// The broad categories, as field names of both rows and the segment table.
fn broad_fields() -> Vec<String> {
    BROAD_COLUMNS.iter().map(|c| c.to_ascii_lowercase()).collect()
}

/// What insight reads of customer.profiles.
const PROFILE_FIELDS: [&str; 5] = ["bas_yh", "seq", "life_stage", "hous_sido_nm", "mbr_rk"];

/// What insight reads of payment.card_spending.
fn spending_fields() -> Vec<String> {
    let mut fields: Vec<String> = ["bas_yh", "seq", "tot_use_am"].map(str::to_owned).to_vec();
    fields.extend(broad_fields());
    fields
}

/// A source refusing insight right after its agreement was granted has not
/// learnt of it yet (domains fetch agreements every few seconds): retry.
fn not_yet_granted(status: tonic::Status) -> DomainError {
    if status.code() == tonic::Code::PermissionDenied {
        DomainError::Unavailable(format!(
            "a source does not let insight read yet ({}); retry shortly",
            status.message()
        ))
    } else {
        DomainError::Upstream(status)
    }
}

/// The segment table's columns before the broad categories.
const SEGMENT_FIELDS: [&str; 7] =
    ["bas_yh", "life_stage", "hous_sido_nm", "mbr_rk", "customer_count", "tot_use_am", "avg_use_am"];

/// Bounds connecting to the registry and the sources, and each unary call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// quarter, life stage, province, grade.
type SegmentKey = (String, String, String, String);

#[derive(Default)]
struct Totals {
    customers: i64,
    total: i64,
    broad: [i64; BROAD_COLUMNS.len()],
}

/// Finds a serving endpoint of `product` in the registry.
async fn endpoint_of(registry: &mut CatalogServiceClient<MeshChannel>, product: &str) -> Result<String> {
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

fn mask(paths: &[String]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.to_vec() })
}

/// Where the sources are and how to call them.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    /// The registry that knows the sources' endpoints.
    pub registry_url: String,
    /// The credentials the sources are read with.
    pub credentials: Credentials,
}

/// Rebuilds `product`'s table from the sources, leaving out segments with
/// fewer than `min_customers` customers.
pub(crate) async fn rebuild(product: &Arc<Product>, sources: &Sources, min_customers: i64) -> Result<i64> {
    let credentials = &sources.credentials;
    let registry_channel = mesh_grpc::client::channel(&sources.registry_url, CALL_TIMEOUT, credentials)?;
    let profile_fields: Vec<String> = PROFILE_FIELDS.iter().map(|f| (*f).to_owned()).collect();
    let spending_fields = spending_fields();
    let mut registry = CatalogServiceClient::new(registry_channel);
    let customer_url = endpoint_of(&mut registry, CUSTOMER_PRODUCT).await?;
    let payment_url = endpoint_of(&mut registry, PAYMENT_PRODUCT).await?;
    // Each source is read with a token for its domain alone.
    let for_customer = credentials
        .for_domain(&sources.registry_url, mesh_contracts::access::domain_of(CUSTOMER_PRODUCT))
        .await?;
    let for_payment = credentials
        .for_domain(&sources.registry_url, mesh_contracts::access::domain_of(PAYMENT_PRODUCT))
        .await?;
    let mut customers = CustomerProfileServiceClient::new(mesh_grpc::client::stream_channel(
        &customer_url,
        CALL_TIMEOUT,
        &for_customer,
    )?)
    .max_decoding_message_size(16 << 20);
    let mut payments = CardSpendingServiceClient::new(mesh_grpc::client::stream_channel(
        &payment_url,
        CALL_TIMEOUT,
        &for_payment,
    )?)
    .max_decoding_message_size(16 << 20);
    let profile_stream = customers
        .query(QueryRequest { read_mask: mask(&profile_fields), ..Default::default() })
        .await
        .map_err(not_yet_granted)?
        .into_inner();
    let spending_stream = payments
        .query(QueryRequest { read_mask: mask(&spending_fields), ..Default::default() })
        .await
        .map_err(not_yet_granted)?
        .into_inner();

    let (segments, joined) = join_and_aggregate(profile_stream, spending_stream).await?;
    let source =
        format!("{CUSTOMER_PRODUCT} at {customer_url} joined with {PAYMENT_PRODUCT} at {payment_url}");
    let (published, suppressed) = publish(product, segments, min_customers, source).await?;
    tracing::debug!(published, suppressed, "segments rebuilt in Rust");
    Ok(joined)
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
                for (sum, value) in totals.broad.iter_mut().zip(broad_amounts(s)) {
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

/// A payment row's broad categories, in the order of [`BROAD_COLUMNS`]
/// (a unit test holds the two together).
fn broad_amounts(s: &CardSpending) -> [i64; BROAD_COLUMNS.len()] {
    [
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
    ]
}

/// Replaces the segment table with the segments of at least
/// `min_customers` customers, through the same load path as every product
/// (one transaction, quality rules, the load recorded). Returns the
/// segments published and suppressed.
async fn publish(
    product: &Arc<Product>,
    segments: BTreeMap<SegmentKey, Totals>,
    min_customers: i64,
    source: String,
) -> Result<(i64, i64)> {
    let mut records = Vec::with_capacity(segments.len());
    let mut suppressed = 0;
    for ((quarter, stage, province, grade), totals) in &segments {
        if totals.customers < min_customers {
            suppressed += 1;
            continue;
        }
        let average = (totals.total as f64 / totals.customers as f64).round() as i64;
        let mut record = ByteRecord::from(vec![quarter.as_str(), stage, province, grade]);
        for number in [totals.customers, totals.total, average].iter().chain(&totals.broad) {
            record.push_field(itoa::Buffer::new().format(*number).as_bytes());
        }
        records.push(record);
    }
    let broad = broad_fields();
    let header: Vec<&str> = SEGMENT_FIELDS.into_iter().chain(broad.iter().map(String::as_str)).collect();
    let mut rows = MemorySource::new(&header, records, source);
    let rules = vec![
        QualityRule::unique_key(&product.schema),
        QualityRule::failing_when(
            "segments_meet_suppression_threshold",
            &format!("every published segment has at least {min_customers} customers"),
            format!("customer_count < {min_customers}"),
        ),
        QualityRule::sum_equals(
            "tot_equals_sum_of_broad",
            &format!("tot_use_am = the sum of the {} broad categories", broad.len()),
            "tot_use_am",
            &broad.iter().map(String::as_str).collect::<Vec<_>>(),
        ),
    ];
    let product = Arc::clone(product);
    let summary = tokio::task::spawn_blocking(move || {
        ingest::load(&product.destination(), &mut rows, &rules, ingest::Shrink::NotToEmpty)
    })
    .await
    .map_err(|e| DomainError::Internal(format!("the publish task failed: {e}")))??;
    Ok((summary.rows, suppressed))
}
