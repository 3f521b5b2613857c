//! Record batches written to stdout as they come: an Arrow IPC stream, or
//! a Parquet file in row groups of bounded size (`mesh query` and `mesh
//! sql` with `--format arrow|parquet`).

use std::io::{IsTerminal, Write};

use anyhow::Result;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::commands::query::Format;

/// Rows of one Parquet row group at most.
const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Bytes a Parquet row group may gather in memory before it is written,
/// whatever its rows hold: bounds what the writer keeps.
const ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// Where the record batches go.
pub(crate) enum BatchFile {
    Arrow(arrow_ipc::writer::StreamWriter<std::io::BufWriter<std::io::Stdout>>),
    Parquet(ArrowWriter<std::io::BufWriter<std::io::Stdout>>),
}

impl BatchFile {
    /// The output of `format` (arrow or parquet) for batches of `schema`.
    pub(crate) fn create(format: Format, schema: &SchemaRef) -> Result<Self> {
        let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
        Ok(match format {
            Format::Parquet => {
                let properties = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .build();
                Self::Parquet(ArrowWriter::try_new(out, schema.clone(), Some(properties))?)
            }
            _ => Self::Arrow(arrow_ipc::writer::StreamWriter::try_new(out, schema)?),
        })
    }

    /// Writes one batch.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Self::Arrow(writer) => writer.write(batch)?,
            Self::Parquet(writer) => {
                writer.write(batch)?;
                if writer.in_progress_size() > ROW_GROUP_BYTES {
                    writer.flush()?;
                }
            }
        }
        Ok(())
    }

    /// Ends the file.
    pub(crate) fn finish(self) -> Result<()> {
        match self {
            Self::Arrow(mut writer) => {
                writer.finish()?;
                writer.into_inner()?.flush()?;
            }
            Self::Parquet(writer) => {
                writer.into_inner()?.flush()?;
            }
        }
        Ok(())
    }
}

/// Refuses to write a binary `format` to a terminal.
pub(crate) fn check_output(format: Format) -> Result<()> {
    if std::io::stdout().is_terminal() {
        anyhow::bail!(
            "--format {0}: the output is binary; redirect it to a file, e.g. `> rows.{0}`",
            format.name()
        );
    }
    Ok(())
}
