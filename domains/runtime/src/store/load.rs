//! What a load hands the store: the rows parsed in chunks, what they
//! replace and how they are checked, and what the store reports back.

use mesh_contracts::product::QualityResult;

use crate::error::{DomainError, Result};
use crate::values::schema::RowSchema;

/// Rows parsed for a load, in chunks, from the reader thread.
pub type Chunks = std::sync::mpsc::Receiver<Result<Chunk>>;

/// The quality checks a load runs over its rows in its own transaction:
/// statements of counts, each answered by one row of integers.
pub trait QualityCheck: Sync {
    /// The statements of counts over `table` (the table's real name).
    fn statements(&self, table: &str) -> Vec<String>;
    /// The rules' results from each statement's row.
    fn results(&self, answers: &[Vec<i64>]) -> Vec<QualityResult>;
}

/// How much smaller than the rows it replaces a load may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shrink {
    /// Refused if it leaves fewer than half the rows: most likely a
    /// truncated or wrong source.
    AtMostHalf,
    /// Refused only if it leaves no rows where there were some.
    NotToEmpty,
    /// Any size: the operator said so (`--allow-shrink`).
    Any,
}

/// What a load replaces and checks.
pub struct LoadPlan<'a> {
    /// The product loaded.
    pub product: &'a str,
    /// Its table.
    pub schema: &'a RowSchema,
    /// Its extra indexed columns.
    pub indexes: &'a [String],
    /// The quality checks run over the new rows before they commit.
    pub quality: &'a dyn QualityCheck,
    /// Where the rows come from, for the load's record.
    pub source: &'a str,
    /// What identifies the source's content.
    pub fingerprint: &'a str,
    /// How much smaller than the rows it replaces the load may be.
    pub shrink: Shrink,
}

impl LoadPlan<'_> {
    /// Refuses `after` rows replacing `before` when the policy forbids it.
    pub(crate) fn check_shrink(&self, before: i64, after: i64) -> Result<()> {
        let refused = match self.shrink {
            Shrink::AtMostHalf => after * 2 < before,
            Shrink::NotToEmpty => after == 0 && before > 0,
            Shrink::Any => false,
        };
        if !refused {
            return Ok(());
        }
        let (product, source) = (self.product, self.source);
        Err(DomainError::Load(match self.shrink {
            Shrink::NotToEmpty => format!(
                "{source}: the rebuild of {product} came out empty where it had {before} rows; the previous \
                 rows stay (are the source products empty?)"
            ),
            _ => format!(
                "{source}: {after} rows would replace {before}, shrinking {product} by more than half; the \
                 previous rows stay; check the source, or pass --allow-shrink (MESH_ALLOW_SHRINK) if this \
                 is meant"
            ),
        }))
    }
}

/// What a finished load did.
#[derive(Debug, Clone)]
pub struct LoadSummary {
    /// Rows now in the table.
    pub rows: i64,
    /// The quality rules' outcomes.
    pub quality: Vec<QualityResult>,
}

/// How long each phase of a load took, for the log.
pub(crate) struct Phases {
    last: std::time::Instant,
    done: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    pub(crate) fn start() -> Self {
        Self { last: std::time::Instant::now(), done: Vec::new() }
    }

    pub(crate) fn end(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        self.done.push((phase, now - self.last));
        self.last = now;
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phases: Vec<String> =
            self.done.iter().map(|(phase, took)| format!("{phase} {:.2}s", took.as_secs_f64())).collect();
        f.write_str(&phases.join(", "))
    }
}

/// Parsed rows, row-major (one cell per column), with their text in one
/// buffer: a chunk of a thousand rows is a few allocations, not thousands.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The fields, row after row.
    pub(crate) cells: Vec<ChunkCell>,
    /// The text of every text field.
    pub(crate) text: String,
}

/// One field of a parsed row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Field<'a> {
    /// An integer (or a bool as 0/1).
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(&'a str),
}

/// One parsed field, as stored in a chunk.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChunkCell {
    Integer(i64),
    Real(f64),
    /// A byte range of the chunk's text.
    Text(u32, u32),
}

impl Chunk {
    pub(crate) fn with_capacity(rows: usize, width: usize) -> Self {
        Self { cells: Vec::with_capacity(rows * width), text: String::new() }
    }

    pub(crate) fn row_count(&self, width: usize) -> usize {
        self.cells.len() / width.max(1)
    }

    /// The rows, each as its fields in column order.
    pub(crate) fn rows(&self, width: usize) -> impl Iterator<Item = impl Iterator<Item = Field<'_>>> {
        self.cells.chunks_exact(width.max(1)).map(|row| {
            row.iter().map(|cell| match *cell {
                ChunkCell::Integer(n) => Field::Integer(n),
                ChunkCell::Real(x) => Field::Real(x),
                ChunkCell::Text(start, end) => Field::Text(&self.text[start as usize..end as usize]),
            })
        })
    }
}
