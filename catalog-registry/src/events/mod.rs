//! The catalog's events: what each change reports ([`kinds`]), the one task
//! that follows the log and fans new events out to readers ([`hub`]), who
//! may see which ([`visibility`]), the `EventService` that serves them
//! ([`service`]) and the sweep that reports what no call changes (stale
//! endpoints, agreements about to end: [`sweep`]). The log itself is
//! `store::events`.

pub mod cloudevent;
pub mod data;
pub mod hub;
pub mod kinds;
pub mod service;
pub mod slots;
pub mod sweep;
pub mod visibility;

pub use hub::EventHub;
pub use service::Events;

use std::time::Duration;

use crate::store::events::Retention;

/// How long and how many events the log keeps.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct EventArgs {
    /// How long the event log keeps an event, e.g. `30d`, `12h`: a reader
    /// may resume at most this far back.
    #[arg(long, env = "MESH_EVENT_RETENTION", default_value = "30d", value_parser = humantime::parse_duration)]
    pub event_retention: Duration,

    /// The most events the log keeps (the oldest go first).
    #[arg(long, env = "MESH_EVENT_RETENTION_COUNT", default_value_t = DEFAULT_KEPT)]
    pub event_retention_count: u64,
}

/// Events kept at most, by default.
pub const DEFAULT_KEPT: u64 = 1_000_000;
impl Default for EventArgs {
    fn default() -> Self {
        Self { event_retention: Duration::from_secs(30 * 24 * 3600), event_retention_count: DEFAULT_KEPT }
    }
}

impl EventArgs {
    /// The retention these flags ask for.
    pub fn retention(&self) -> Retention {
        Retention {
            max_age_ms: i64::try_from(self.event_retention.as_millis()).unwrap_or(i64::MAX),
            max_events: i64::try_from(self.event_retention_count).unwrap_or(i64::MAX),
        }
    }
}
