//! What a scan hands the store and gets back: the table read, where its
//! rows go, and why it stopped.

use std::sync::Arc;
use std::time::Duration;

use crate::error::DomainError;
use crate::values::cell::CellRow;

/// The table of a product: its id (PostgreSQL finds the current table by
/// it) and its name in the contract (SQLite's table).
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    /// The product's id, e.g. `payment.card_spending`.
    pub product: &'a str,
    /// The table's name.
    pub name: &'a str,
}

/// Where a scan's rows go, and whether it should stop.
pub trait RowSink {
    /// The identity of the load the scan reads, before its first row.
    fn begin(&mut self, load: u64) -> Result<(), Stop>;
    /// One result row; `Ok(false)` when no more are wanted.
    fn row(&mut self, row: &impl CellRow) -> Result<bool, Stop>;
    /// Why the scan should stop now, if it should.
    fn interrupted(&self) -> Option<Stop>;
}

/// Tells a running statement to stop; checked while the database works.
pub type StopCheck = Arc<dyn Fn() -> bool + Send + Sync>;

/// Why a scan stopped before its end.
#[derive(Debug)]
pub enum Stop {
    /// The client dropped the stream: nobody to tell.
    ClientGone,
    /// The client read nothing for the send timeout.
    Stalled(Duration),
    /// The query ran out of its time budget.
    OverBudget(Duration),
    /// The domain is shutting down.
    Shutdown,
    /// The query failed.
    Failed(DomainError),
}

impl Stop {
    /// The reason as a metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ClientGone => "client_gone",
            Self::Stalled(_) => "stalled",
            Self::OverBudget(_) => "budget",
            Self::Shutdown => "shutdown",
            Self::Failed(_) => "failed",
        }
    }
}

impl From<DomainError> for Stop {
    fn from(error: DomainError) -> Self {
        Self::Failed(error)
    }
}
