//! The registry's sense of time, injectable so that lease expiry can be
//! tested without waiting for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Tells the time in ms since the Unix epoch: the system's, or a manual
/// one that only moves when told.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that starts at the system's time now and moves only by
    /// [`Clock::advance`] (for tests).
    pub fn manual() -> Self {
        Self(Some(Arc::new(AtomicI64::new(mesh_contracts::time::now_ms()))))
    }

    /// The time now, ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            None => mesh_contracts::time::now_ms(),
            Some(manual) => manual.load(Ordering::SeqCst),
        }
    }

    /// Whether this is a manual clock (tests), not the system's.
    pub fn is_manual(&self) -> bool {
        self.0.is_some()
    }

    /// Moves a manual clock forward by `by` (and every clone of it); the
    /// system clock cannot be moved, so this does nothing to it.
    pub fn advance(&self, by: Duration) {
        if let Some(manual) = &self.0 {
            manual.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        }
    }
}
