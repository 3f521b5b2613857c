//! Parts of a read: a whole-product read split into ranges, each redeemed
//! on its own (side by side by a client that wants speed).
//!
//! The product's owners, reading every column of every row in the clear,
//! get ranges of rowids, in the load's order. Anyone else gets ranges of
//! their own keyed order of an identifier they receive as a pseudonym (or
//! may not read), each part in their order: the load's order is the
//! source's, which may follow a value the product never shows (a column
//! the loader left out, an arrival time), so no part boundary may follow
//! it; which part a row is in then depends only on a keyed hash of its
//! identifier, under a key that differs between callers. Callers whose
//! order has no such column get no parts.

use mesh_contracts::product::QueryRequest;

use crate::query::grant::Grant;

/// One part of a read: the rows whose rowid (or, when `keyed`, whose keyed
/// order of the first identifier the caller's order hashes) is in
/// `(after, up_to]`, of the load `load` (another load holds other rows).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Part {
    /// The value before the part's first (`i64::MIN` for the first part).
    #[prost(sfixed64, tag = "1")]
    pub after: i64,
    /// The part's last value (`i64::MAX` for the last part).
    #[prost(sfixed64, tag = "2")]
    pub up_to: i64,
    /// The load the part was planned on.
    #[prost(fixed64, tag = "3")]
    pub load: u64,
    /// A range of the caller's keyed order rather than of rowids.
    #[prost(bool, tag = "4")]
    pub keyed: bool,
}

/// How whole-product reads are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioning {
    /// The most parts of one read (1: never split).
    pub max_parts: usize,
    /// The fewest rows a part holds.
    pub min_rows: u64,
}

impl Default for Partitioning {
    fn default() -> Self {
        Self { max_parts: default_max_parts(), min_rows: 50_000 }
    }
}

/// One part per CPU, at most 8.
pub fn default_max_parts() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8)
}

impl Partitioning {
    /// The parts of a read of the `rows` rows of load `load`: as many as
    /// `max_parts` and `min_rows` allow, of equal size, the first and last
    /// open-ended so that every row is in exactly one part. By rowid, which
    /// every load numbers `1..=rows`; when `keyed`, by the keyed order,
    /// spread evenly over `0..=i64::MAX`.
    pub fn parts(&self, rows: u64, load: u64, keyed: bool) -> Vec<Part> {
        let count = (rows / self.min_rows.max(1)).clamp(1, self.max_parts.max(1) as u64);
        let span = if keyed { i64::MAX as u64 } else { rows };
        (0..count)
            .map(|i| Part {
                after: if i == 0 { i64::MIN } else { bound(span, i, count) },
                up_to: if i + 1 == count { i64::MAX } else { bound(span, i + 1, count) },
                load,
                keyed,
            })
            .collect()
    }
}

/// The last value of part `i` of `count` over `1..=span`.
fn bound(span: u64, i: u64, count: u64) -> i64 {
    (u128::from(span) * u128::from(i) / u128::from(count)) as i64
}

/// How a read of `request` under `grant` may come in parts, if at all: it
/// must ask for every row (no filter, order or limit; a part goes on from
/// a resume point after a replica's death). By rowid (`Some(false)`) when
/// the caller reads every column of every row in the clear as the
/// product's owner; by keyed order (`Some(true)`) when the caller's order
/// hashes an identifier (`keyed_order`) under a key of the caller's own
/// (a domain without a pseudonym key orders by a hash anyone can compute,
/// whose ranges would tell of the values hashed).
pub(crate) fn split(request: &QueryRequest, grant: &Grant, keyed_order: bool) -> Option<bool> {
    let whole = request.filter.is_empty() && request.order_by.is_empty() && request.limit == 0;
    match () {
        _ if !whole => None,
        _ if grant.reads_as_owner() => Some(false),
        _ if keyed_order && grant.pseudonyms.is_some() => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(parts: &[Part], rowid: i64) -> usize {
        parts.iter().filter(|p| p.after < rowid && rowid <= p.up_to).count()
    }

    #[test]
    fn every_rowid_is_in_exactly_one_part_and_parts_are_even() {
        let split = Partitioning { max_parts: 4, min_rows: 10 };
        let parts = split.parts(1_000, 7, false);
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.load == 7));
        for rowid in [i64::MIN + 1, -5, 0, 1, 250, 251, 500, 999, 1_000, 1_001, i64::MAX] {
            assert_eq!(covered(&parts, rowid), 1, "rowid {rowid}");
        }
        assert_eq!(parts[1].after, 250);
        assert_eq!(parts[2].up_to, 750);
    }

    #[test]
    fn small_reads_and_one_part_reads_are_not_split() {
        let split = Partitioning { max_parts: 8, min_rows: 50_000 };
        assert_eq!(split.parts(0, 1, false).len(), 1);
        assert_eq!(split.parts(99_999, 1, true).len(), 1);
        assert_eq!(split.parts(100_000, 1, false).len(), 2);
        assert_eq!(split.parts(10_000_000, 1, true).len(), 8);
        let whole = &Partitioning { max_parts: 1, min_rows: 1 }.parts(10, 3, false)[0];
        assert_eq!((whole.after, whole.up_to), (i64::MIN, i64::MAX));
        assert_eq!(Partitioning { max_parts: 0, min_rows: 0 }.parts(10, 3, false).len(), 1);
    }

    #[test]
    fn keyed_parts_split_the_keyed_order_evenly_whatever_the_row_count() {
        let parts = Partitioning { max_parts: 4, min_rows: 10 }.parts(1_000, 7, true);
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.keyed && p.load == 7));
        let quarter = i64::MAX / 4;
        assert_eq!((parts[1].after, parts[1].up_to), (quarter, 2 * quarter + 1));
        for order in [0, 1, quarter, quarter + 1, 2 * quarter + 1, 2 * quarter + 2, i64::MAX - 1, i64::MAX] {
            assert_eq!(covered(&parts, order), 1, "keyed order {order}");
        }
    }
}
