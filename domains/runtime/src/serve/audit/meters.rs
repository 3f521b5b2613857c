//! What a product's reads count, at the one place every read ends (its
//! audit record): reads by format and outcome, rows and bytes served by
//! format, refusals by the code the caller got. Labelled with the product
//! (a constant of the product's own families) and values from closed sets.

use prometheus::core::Collector;
use prometheus::{IntCounterVec, Opts};
use tonic::Code;

/// One product's read meters.
#[derive(Debug, Clone)]
pub struct ReadMeters {
    reads: IntCounterVec,
    rows: IntCounterVec,
    bytes: IntCounterVec,
    refusals: IntCounterVec,
}

fn family(name: &str, help: &str, product: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help).const_label("product", product), labels)
        .expect("a valid counter family")
}

impl ReadMeters {
    /// Meters of `product`'s reads, registered nowhere yet.
    pub fn new(product: &str) -> Self {
        Self {
            reads: family(
                "mesh_reads_total",
                "Reads of the product, by format (grpc, json, csv, ndjson, arrow) and outcome (served, cancelled, failed, refused)",
                product,
                &["format", "outcome"],
            ),
            rows: family(
                "mesh_rows_served_total",
                "Rows served, by product and format",
                product,
                &["format"],
            ),
            bytes: family(
                "mesh_bytes_served_total",
                "Bytes of row batches served, by product and format",
                product,
                &["format"],
            ),
            refusals: family(
                "mesh_read_refusals_total",
                "Reads refused, by product and the gRPC code the caller got (PERMISSION_DENIED, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...)",
                product,
                &["reason"],
            ),
        }
    }

    /// The collectors to register.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.reads.clone()),
            Box::new(self.rows.clone()),
            Box::new(self.bytes.clone()),
            Box::new(self.refusals.clone()),
        ]
    }

    /// Counts a read in `format` that ended as `outcome` after `rows` rows
    /// and `bytes` bytes.
    pub(crate) fn ended(&self, format: &str, outcome: &str, rows: u64, bytes: u64) {
        self.reads.with_label_values(&[format, outcome]).inc();
        self.rows.with_label_values(&[format]).inc_by(rows);
        self.bytes.with_label_values(&[format]).inc_by(bytes);
    }

    /// Counts a read in `format` refused with `code`.
    pub(crate) fn refused(&self, format: &str, code: Code) {
        self.reads.with_label_values(&[format, "refused"]).inc();
        self.refusals.with_label_values(&[mesh_grpc::rest::status_name(code)]).inc();
    }
}
