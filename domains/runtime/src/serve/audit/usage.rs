//! A product's usage for its owners, from its read log: reads, rows and
//! bytes per day (UTC) and refusals by the code the callers got, from the
//! daily sums kept as reads are recorded (so a flood of reads cannot push
//! older days out), and the slowest reads among at most
//! [`MAX_USAGE_RECORDS`] records, newest first, each weighed as it is
//! decoded; the answer says when the log held more.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use mesh_contracts::product::{DailyUsage, GetUsageResponse, ReadOutcome, ReadRecord, RefusalCount};

use crate::store::UsageSum;
use crate::store::read_log::DAY_MS;

/// Records read to find the slowest reads (held raw while they are
/// weighed: records are bounded to a few KiB, so at most a few hundred MiB).
pub const MAX_USAGE_RECORDS: i64 = 100_000;
/// The most slow reads returned.
pub const MAX_SLOWEST: usize = 100;
/// The slowest reads returned unless asked for another number.
pub const DEFAULT_SLOWEST: usize = 10;
/// The reason of refusals recorded before their code was.
const UNRECORDED: &str = "UNRECORDED";

fn ms(timestamp: Option<&prost_types::Timestamp>) -> i64 {
    timestamp.map_or(0, |t| t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos) / 1_000_000))
}

/// `2026-12-04` for the UTC day `day` (days since the epoch).
fn day_name(day: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis((day * DAY_MS).max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()[..10].to_owned()
}

/// What `read` adds to its product's usage of its day: a refusal under
/// its code (standing for itself and those counted before it), or what it
/// served; nothing for a read that served nothing.
pub(crate) fn of(read: &ReadRecord) -> Option<UsageSum> {
    if read.outcome == ReadOutcome::Refused as i32 {
        let reason = if read.refusal_code.is_empty() { UNRECORDED } else { read.refusal_code.as_str() };
        let refused = 1_i64.saturating_add(read.refusals_not_recorded.max(0));
        return Some(UsageSum { day: 0, reason: reason.to_owned(), reads: refused, rows: 0, bytes: 0 });
    }
    let reads = i64::from(super::delivered(read));
    let (rows, bytes) = (read.rows.max(0), read.bytes.max(0));
    (reads > 0 || rows > 0 || bytes > 0).then(|| UsageSum {
        day: 0,
        reason: String::new(),
        reads,
        rows,
        bytes,
    })
}

/// `product`'s usage from the day of `since_ms` to the day of `now_ms`
/// from its daily `sums`, with the `slowest` of `records` (newest first);
/// `truncated` when the log held more records than were read. `since_ms`
/// must be at most a few hundred days before `now_ms` (one entry per day
/// is made).
pub fn summarize(
    product: &str,
    sums: &[UsageSum],
    records: impl IntoIterator<Item = ReadRecord>,
    (since_ms, now_ms): (i64, i64),
    slowest: usize,
    truncated: bool,
) -> GetUsageResponse {
    let (first_day, last_day) = (since_ms.div_euclid(DAY_MS), now_ms.div_euclid(DAY_MS));
    let mut days: Vec<DailyUsage> =
        (first_day..=last_day).map(|day| DailyUsage { day: day_name(day), ..Default::default() }).collect();
    let mut reasons: HashMap<&str, i64> = HashMap::new();
    for sum in sums {
        let index = sum.day.saturating_sub(first_day);
        let Some(day) = usize::try_from(index).ok().and_then(|i| days.get_mut(i)) else { continue };
        if sum.reason.is_empty() {
            day.reads = day.reads.saturating_add(sum.reads);
            day.rows = day.rows.saturating_add(sum.rows);
            day.bytes = day.bytes.saturating_add(sum.bytes);
        } else {
            day.refusals = day.refusals.saturating_add(sum.reads);
            let count = reasons.entry(sum.reason.as_str()).or_default();
            *count = count.saturating_add(sum.reads);
        }
    }
    let mut refusals: Vec<RefusalCount> = reasons
        .into_iter()
        .map(|(reason, count)| RefusalCount { reason: reason.to_owned(), count })
        .collect();
    refusals.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    let (slowest, count) = slowest_of(records, slowest.min(MAX_SLOWEST));
    GetUsageResponse { product: product.to_owned(), days, refusals, slowest, records: count, truncated }
}

/// The `keep` slowest of `records` that were not refused, slowest first,
/// and how many records were read.
fn slowest_of(records: impl IntoIterator<Item = ReadRecord>, keep: usize) -> (Vec<ReadRecord>, i64) {
    // The slowest so far, fastest on top: (duration, order read, record).
    let mut slow: BinaryHeap<Reverse<(i64, usize, Slow)>> = BinaryHeap::new();
    let mut count = 0;
    for read in records {
        count += 1;
        if keep == 0 || read.outcome == ReadOutcome::Refused as i32 || read.end_time.is_none() {
            continue;
        }
        let duration = ms(read.end_time.as_ref()).saturating_sub(ms(read.start_time.as_ref()));
        slow.push(Reverse((duration, count, Slow(read))));
        if slow.len() > keep {
            slow.pop();
        }
    }
    let slowest = slow.into_sorted_vec().into_iter().map(|Reverse((_, _, Slow(read)))| read).collect();
    (slowest, count as i64)
}

/// A record kept among the slowest, ordered by the duration beside it.
struct Slow(ReadRecord);

impl PartialEq for Slow {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Slow {}

impl PartialOrd for Slow {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Slow {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds: ms / 1000, nanos: (ms % 1000) as i32 * 1_000_000 })
    }

    fn read(start: i64, took: i64, outcome: ReadOutcome, rows: i64) -> ReadRecord {
        ReadRecord {
            product: "p.a".into(),
            start_time: at(start),
            end_time: at(start + took),
            outcome: outcome.into(),
            rows,
            bytes: rows * 10,
            ..Default::default()
        }
    }

    #[test]
    fn days_sum_reads_rows_bytes_and_refusals_by_reason() {
        let day = DAY_MS;
        let since = 20_000 * day;
        let refused = |code: &str, counted| ReadRecord {
            refusal_code: code.into(),
            refusals_not_recorded: counted,
            ..read(since + day + 5, 0, ReadOutcome::Refused, 0)
        };
        let records = vec![
            read(since + 2 * day + 1, 900, ReadOutcome::Served, 3),
            read(since + 10, 50, ReadOutcome::Served, 7),
            read(since + 20, 5_000, ReadOutcome::Cancelled, 2),
            read(since + 30, 10, ReadOutcome::Failed, 0),
            refused("PERMISSION_DENIED", 4),
            refused("INVALID_ARGUMENT", 0),
            refused("", 0),
            read(since - 1, 10, ReadOutcome::Served, 100),
        ];
        // The sums the log keeps, as each record adds to its day.
        let sums: Vec<UsageSum> = records
            .iter()
            .filter_map(|r| {
                of(r).map(|sum| UsageSum { day: ms(r.start_time.as_ref()).div_euclid(day), ..sum })
            })
            .collect();
        assert_eq!(sums.len(), 7, "a failed read that served nothing adds nothing");
        let usage = summarize("p.a", &sums, records, (since, since + 2 * day + 100), 2, false);
        let days: Vec<(&str, i64, i64, i64, i64)> =
            usage.days.iter().map(|d| (d.day.as_str(), d.reads, d.rows, d.bytes, d.refusals)).collect();
        assert_eq!(
            days,
            [("2024-10-04", 2, 9, 90, 0), ("2024-10-05", 0, 0, 0, 7), ("2024-10-06", 1, 3, 30, 0)],
            "a cancelled read that delivered rows counts; one before `since`'s day does not"
        );
        let reasons: Vec<(&str, i64)> = usage.refusals.iter().map(|r| (r.reason.as_str(), r.count)).collect();
        assert_eq!(reasons, [("PERMISSION_DENIED", 5), ("INVALID_ARGUMENT", 1), ("UNRECORDED", 1)]);
        let slowest: Vec<i64> = usage.slowest.iter().map(|r| r.rows).collect();
        assert_eq!(slowest, [2, 3], "the two slowest, slowest first, refusals left out");
        assert_eq!(usage.records, 8);
    }
}
