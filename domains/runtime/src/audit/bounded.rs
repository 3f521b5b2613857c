//! What keeps the read log from being used to exhaust the domain: every
//! record cut to a bounded size (the filter's length and BLAKE3 kept), and
//! refused reads of one principal on one product recorded a few a minute,
//! the rest counted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mesh_contracts::product::{ReadOutcome, ReadRecord};

/// Longest filter, order or detail text kept in a record, in bytes.
pub const MAX_TEXT: usize = 4 * 1024;
/// Longest record queued, in bytes: the texts above, the columns (one
/// contract's names) and the identity.
pub(crate) const MAX_RECORD: usize = 64 * 1024;
/// Refusals recorded one by one per principal and product in a window.
pub const REFUSALS_PER_WINDOW: u64 = 10;
/// The window refusals are counted in.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(60);
/// Principals whose refusals are being counted, at most; past it, the
/// oldest windows are closed early (their counts recorded).
const MAX_COUNTED: usize = 10_000;

/// `text` cut to at most [`MAX_TEXT`] bytes, at a character boundary.
fn cut(text: &mut String) {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// Cuts `record` to bounded size: the filter to [`MAX_TEXT`] with its
/// whole length and, when cut, its BLAKE3; the detail likewise; columns
/// beyond what fits dropped.
pub(crate) fn bound(record: &mut ReadRecord) {
    record.filter_length = record.filter.len() as i64;
    if record.filter.len() > MAX_TEXT {
        record.filter_blake3 = blake3::hash(record.filter.as_bytes()).to_hex().to_string();
        cut(&mut record.filter);
    }
    cut(&mut record.detail);
    for text in [&mut record.principal, &mut record.issuer, &mut record.agreement, &mut record.purpose] {
        cut(text);
    }
    record.roles.truncate(64);
    record.roles.iter_mut().for_each(cut);
    let columns = |list: &Vec<String>| list.iter().map(|c| c.len() + 2).sum::<usize>();
    while columns(&record.delivered_columns) + columns(&record.withheld_columns) > MAX_RECORD / 2 {
        if record.withheld_columns.pop().is_none() {
            record.delivered_columns.pop();
        }
    }
}

/// Who is refused, on what.
type Key = (String, String, String);

#[derive(Debug)]
struct Window {
    opened: Instant,
    recorded: u64,
    counted: u64,
    /// A record to carry the count when the window closes.
    last: ReadRecord,
}

/// Counts refusals per principal and product, letting a few a window
/// through to be recorded.
#[derive(Debug, Default)]
pub(crate) struct RefusalLimiter {
    windows: Mutex<HashMap<Key, Window>>,
}

/// What to do with a refused read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Record it, noting the refusals counted before it.
    Record(u64),
    /// Count it only.
    Count,
}

impl RefusalLimiter {
    /// Whether `record` (refused, at `now`) is recorded or counted; a
    /// recorded one carries the count of those before it.
    pub(crate) fn admit(&self, record: &ReadRecord, now: Instant) -> Verdict {
        let key = (record.product.clone(), record.issuer.clone(), record.principal.clone());
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let carried = match windows.get_mut(&key) {
            Some(window) if now.duration_since(window.opened) < REFUSAL_WINDOW => {
                if window.recorded < REFUSALS_PER_WINDOW {
                    window.recorded += 1;
                    return Verdict::Record(std::mem::take(&mut window.counted));
                }
                window.counted += 1;
                window.last = record.clone();
                return Verdict::Count;
            }
            Some(window) => window.counted,
            None => 0,
        };
        if windows.len() >= MAX_COUNTED && !windows.contains_key(&key) {
            return Verdict::Count;
        }
        let last = record.clone();
        windows.insert(key, Window { opened: now, recorded: 1, counted: 0, last });
        Verdict::Record(carried)
    }

    /// Records for the windows closed by `now` whose refusals were counted
    /// and not yet recorded: each the last refusal counted, carrying the
    /// count. Forgets closed windows.
    pub(crate) fn closed(&self, now: Instant) -> Vec<ReadRecord> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        windows.retain(|_, window| {
            if now.duration_since(window.opened) < REFUSAL_WINDOW {
                return true;
            }
            if window.counted > 0 {
                let mut record = window.last.clone();
                record.refusals_not_recorded = window.counted as i64 - 1;
                record.outcome = ReadOutcome::Refused.into();
                out.push(record);
            }
            false
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn refused(principal: &str, filter: &str) -> ReadRecord {
        ReadRecord {
            product: "p.a".into(),
            principal: principal.into(),
            filter: filter.into(),
            outcome: ReadOutcome::Refused.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_record_keeps_a_bounded_filter_with_its_length_and_digest() {
        let filter = format!("seq = \"{}\"", "가".repeat(2_000_000));
        let mut record = refused("ana", &filter);
        record.detail = "x".repeat(10 * MAX_TEXT);
        record.withheld_columns = vec!["c".repeat(1000); 1000];
        bound(&mut record);
        assert!(record.filter.len() <= MAX_TEXT && filter.starts_with(&record.filter));
        assert_eq!(record.filter_length as usize, filter.len());
        assert_eq!(record.filter_blake3, blake3::hash(filter.as_bytes()).to_hex().to_string());
        assert_eq!(record.detail.len(), MAX_TEXT);
        assert!(record.encoded_len() <= MAX_RECORD, "{}", record.encoded_len());
        let mut short = refused("ana", "amount > 1");
        bound(&mut short);
        assert_eq!(
            (short.filter.as_str(), short.filter_length, short.filter_blake3.as_str()),
            ("amount > 1", 10, "")
        );
    }

    #[test]
    fn a_few_refusals_a_window_are_recorded_and_the_rest_counted() {
        let limiter = RefusalLimiter::default();
        let start = Instant::now();
        let verdicts: Vec<Verdict> = (0..25).map(|_| limiter.admit(&refused("mallory", ""), start)).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Record(0)).count() as u64, REFUSALS_PER_WINDOW);
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Count).count(),
            25 - REFUSALS_PER_WINDOW as usize
        );
        // Another principal is not held back by mallory.
        assert_eq!(limiter.admit(&refused("ana", ""), start), Verdict::Record(0));
        // The window closes: the count is recorded, once.
        assert!(limiter.closed(start).is_empty());
        let later = start + REFUSAL_WINDOW;
        let closed = limiter.closed(later);
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].principal.as_str(), closed[0].refusals_not_recorded), ("mallory", 14));
        assert!(limiter.closed(later).is_empty());
        assert_eq!(limiter.admit(&refused("mallory", ""), later), Verdict::Record(0));
    }

    #[test]
    fn a_new_window_carries_the_count_of_the_last() {
        let limiter = RefusalLimiter::default();
        let start = Instant::now();
        for _ in 0..REFUSALS_PER_WINDOW + 3 {
            limiter.admit(&refused("mallory", ""), start);
        }
        assert_eq!(limiter.admit(&refused("mallory", ""), start + REFUSAL_WINDOW), Verdict::Record(3));
    }
}
