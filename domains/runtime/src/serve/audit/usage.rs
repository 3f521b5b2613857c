//! A product's usage for its owners, summed from its read log: reads, rows
//! and bytes per day (UTC), refusals by the code the callers got, and the
//! slowest reads. At most [`MAX_USAGE_RECORDS`] records are read, newest
//! first, each summed as it is decoded; the answer says when the log held
//! more.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use mesh_contracts::product::{DailyUsage, GetUsageResponse, ReadOutcome, ReadRecord, RefusalCount};

use crate::store::read_log::DAY_MS;

/// Records read to sum one product's usage (held raw while they are summed:
/// records are bounded to a few KiB, so at most a few hundred MiB).
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

/// Sums `records` (newest first, from `since_ms` on) of `product` into its
/// usage up to `now_ms`, with the `slowest` reads; `truncated` when the log
/// held more records than were read. `since_ms` must be at most a few
/// hundred days before `now_ms` (one entry per day is made).
pub fn summarize(
    product: &str,
    records: impl IntoIterator<Item = ReadRecord>,
    (since_ms, now_ms): (i64, i64),
    slowest: usize,
    truncated: bool,
) -> GetUsageResponse {
    let (first_day, last_day) = (since_ms.div_euclid(DAY_MS), now_ms.div_euclid(DAY_MS));
    let mut days: Vec<DailyUsage> =
        (first_day..=last_day).map(|day| DailyUsage { day: day_name(day), ..Default::default() }).collect();
    let mut reasons: HashMap<String, i64> = HashMap::new();
    let keep = slowest.min(MAX_SLOWEST);
    // The slowest so far, fastest on top: (duration, order read, record).
    let mut slow: BinaryHeap<Reverse<(i64, usize, Slow)>> = BinaryHeap::new();
    let mut count = 0;
    for read in records {
        count += 1;
        let duration = ms(read.end_time.as_ref()).saturating_sub(ms(read.start_time.as_ref()));
        let index = ms(read.start_time.as_ref()).div_euclid(DAY_MS) - first_day;
        let Some(day) = usize::try_from(index).ok().and_then(|i| days.get_mut(i)) else { continue };
        if read.outcome == ReadOutcome::Refused as i32 {
            // A recorded refusal stands for itself and those counted before it.
            let refused = 1 + read.refusals_not_recorded.max(0);
            day.refusals += refused;
            let reason = if read.refusal_code.is_empty() { UNRECORDED } else { read.refusal_code.as_str() };
            *reasons.entry(reason.to_owned()).or_default() += refused;
            continue;
        }
        if read.outcome == ReadOutcome::Served as i32 || read.rows > 0 {
            day.reads += 1;
        }
        day.rows += read.rows.max(0);
        day.bytes += read.bytes.max(0);
        if keep > 0 && read.end_time.is_some() {
            slow.push(Reverse((duration, count, Slow(read))));
            if slow.len() > keep {
                slow.pop();
            }
        }
    }
    let mut refusals: Vec<RefusalCount> =
        reasons.into_iter().map(|(reason, count)| RefusalCount { reason, count }).collect();
    refusals.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    let slowest = slow.into_sorted_vec().into_iter().map(|Reverse((_, _, Slow(read)))| read).collect();
    GetUsageResponse {
        product: product.to_owned(),
        days,
        refusals,
        slowest,
        records: count as i64,
        truncated,
    }
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
        let usage = summarize("p.a", records, (since, since + 2 * day + 100), 2, false);
        let days: Vec<(&str, i64, i64, i64, i64)> =
            usage.days.iter().map(|d| (d.day.as_str(), d.reads, d.rows, d.bytes, d.refusals)).collect();
        assert_eq!(
            days,
            [("2024-10-04", 2, 9, 90, 0), ("2024-10-05", 0, 0, 0, 7), ("2024-10-06", 1, 3, 30, 0)],
            "a cancelled read that delivered rows counts; one before `since` does not"
        );
        let reasons: Vec<(&str, i64)> = usage.refusals.iter().map(|r| (r.reason.as_str(), r.count)).collect();
        assert_eq!(reasons, [("PERMISSION_DENIED", 5), ("INVALID_ARGUMENT", 1), ("UNRECORDED", 1)]);
        let slowest: Vec<i64> = usage.slowest.iter().map(|r| r.rows).collect();
        assert_eq!(slowest, [2, 3], "the two slowest, slowest first, refusals left out");
    }
}
