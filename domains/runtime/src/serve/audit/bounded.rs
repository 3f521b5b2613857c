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
/// Roles kept in a record, and the longest kept, in bytes.
const MAX_ROLES: usize = 32;
const MAX_ROLE: usize = 256;
/// Refusals recorded one by one per principal and product in a window.
pub const REFUSALS_PER_WINDOW: u64 = 10;
/// The window refusals are counted in.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(60);
/// Principals whose refusals are being counted, at most; past it, the
/// oldest window is closed early (its count recorded).
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
    record.roles.truncate(MAX_ROLES);
    for role in &mut record.roles {
        if role.len() > MAX_ROLE {
            role.truncate((0..=MAX_ROLE).rev().find(|&i| role.is_char_boundary(i)).unwrap_or(0));
        }
    }
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
    windows: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    open: HashMap<Key, Window>,
    /// Records of windows closed early (to make room), for [`RefusalLimiter::closed`].
    closed_early: Vec<ReadRecord>,
}

/// The record carrying a closed window's count, if it counted any.
fn count_of(window: Window) -> Option<ReadRecord> {
    (window.counted > 0).then(|| {
        let mut record = window.last;
        record.refusals_not_recorded = window.counted as i64 - 1;
        record.outcome = ReadOutcome::Refused.into();
        record
    })
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
        let carried = match windows.open.get_mut(&key) {
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
        if windows.open.len() >= MAX_COUNTED && !windows.open.contains_key(&key) {
            // Room for this principal: the oldest window closes early, its count kept.
            let oldest = windows.open.iter().min_by_key(|(_, w)| w.opened).map(|(k, _)| k.clone());
            if let Some(window) = oldest.and_then(|k| windows.open.remove(&k)) {
                windows.closed_early.extend(count_of(window));
            }
        }
        let last = record.clone();
        windows.open.insert(key, Window { opened: now, recorded: 1, counted: 0, last });
        Verdict::Record(carried)
    }

    /// Records for the windows closed by `now` (or early) whose refusals
    /// were counted and not yet recorded: each the last refusal counted,
    /// carrying the count. Forgets closed windows.
    pub(crate) fn closed(&self, now: Instant) -> Vec<ReadRecord> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = std::mem::take(&mut windows.closed_early);
        let expired: Vec<Key> = windows
            .open
            .iter()
            .filter(|(_, w)| now.duration_since(w.opened) >= REFUSAL_WINDOW)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            if let Some(window) = windows.open.remove(&key) {
                out.extend(count_of(window));
            }
        }
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
        record.roles = vec!["r".repeat(10_000); 1000];
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
    fn when_too_many_principals_are_counted_the_oldest_window_closes_with_its_count() {
        let limiter = RefusalLimiter::default();
        let start = Instant::now();
        for _ in 0..REFUSALS_PER_WINDOW + 2 {
            limiter.admit(&refused("first", ""), start);
        }
        for i in 1..MAX_COUNTED {
            limiter.admit(&refused(&format!("p{i}"), ""), start + Duration::from_millis(1));
        }
        assert_eq!(limiter.admit(&refused("newcomer", ""), start), Verdict::Record(0), "recorded, not lost");
        let closed = limiter.closed(start + Duration::from_millis(2));
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].principal.as_str(), closed[0].refusals_not_recorded), ("first", 1));
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
