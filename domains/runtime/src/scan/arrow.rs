//! Writing rows straight from the database into Arrow record batches,
//! column by column in the scan's thread, each sent as an Arrow Flight
//! `FlightData` message (IPC) with the batch's resume token as its
//! `app_metadata`: no row message in between.
//!
//! Columns keep the contract's semantics: a product column has no null
//! (proto3 scalars), so a NULL in storage arrives as the type's default,
//! as it does in a `Query` row. Integers are 64-bit (the storage's integer,
//! and a pseudonym needs 63 bits), reals `Float64` (`Float32` for `float`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_buffer::{
    ArrowNativeType, BooleanBuffer, BooleanBufferBuilder, Buffer, OffsetBuffer, ScalarBuffer,
};
use arrow_ipc::writer::{DictionaryTracker, EncodedData, IpcDataGenerator, IpcWriteContext, IpcWriteOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use mesh_grpc::codec::Pieces;

use crate::error::{DomainError, Result};
use crate::query::pseudonym::{PSEUDONYM_DIGITS, PseudonymKey};
use crate::scan::encode::{delivered, pseudonym_key};
use crate::values::cell::{Cell, CellRow};
use crate::values::schema::{ColumnDef, ColumnKind};

/// Bytes of column data a batch holds before it is sent: large enough for
/// columnar readers, well below gRPC's 4 MiB default message limit.
pub const ARROW_BATCH_BYTES: usize = 2 * 1024 * 1024;

// On glibc the allocator keeps two batches' worth of freed memory at each
// arena's top (crate::heap).
const _: () = assert!(crate::heap::HEAP_TOP_PAD >= 2 * ARROW_BATCH_BYTES);

pub use mesh_contracts::arrow_metadata as metadata;

/// The Arrow type a column is delivered as.
fn data_type(column: &ColumnDef) -> DataType {
    match column.kind {
        ColumnKind::String => DataType::Utf8,
        ColumnKind::Integer => DataType::Int64,
        ColumnKind::Real if column.float32 => DataType::Float32,
        ColumnKind::Real => DataType::Float64,
        ColumnKind::Bool => DataType::Boolean,
    }
}

/// The Arrow schema of a read of `product` delivering `columns` (those in
/// `pseudonymized` as pseudonyms) and withholding `withheld`: each field
/// carries its description, classification and unit as metadata.
pub fn arrow_schema<'a>(
    product: &str,
    columns: impl IntoIterator<Item = &'a ColumnDef>,
    pseudonymized: &[bool],
    withheld: &[String],
) -> Schema {
    let fields: Vec<Field> = columns
        .into_iter()
        .enumerate()
        .map(|(i, column)| {
            let mut about = HashMap::from([
                (metadata::DESCRIPTION.to_owned(), column.description.clone()),
                (metadata::CLASSIFICATION.to_owned(), column.classification.as_str_name().to_owned()),
            ]);
            if !column.unit.is_empty() {
                about.insert(metadata::UNIT.to_owned(), column.unit.clone());
            }
            if pseudonymized.get(i).copied().unwrap_or(false) {
                about.insert(metadata::PSEUDONYMIZED.to_owned(), "true".to_owned());
            }
            Field::new(&column.name, data_type(column), false).with_metadata(about)
        })
        .collect();
    let mut about = HashMap::from([(metadata::PRODUCT.to_owned(), product.to_owned())]);
    if !withheld.is_empty() {
        about.insert(metadata::WITHHELD_COLUMNS.to_owned(), withheld.join(","));
    }
    Schema::new(fields).with_metadata(about)
}

/// One column being built, in plain vectors whose allocations serve batch
/// after batch: each is lent to its batch's array and reclaimed once the
/// batch is encoded, so that a read's batches after the first are built
/// without allocating (fresh megabytes per batch, faulted in and trimmed
/// again by the allocator, cost about a tenth of a whole read's time).
#[derive(Debug)]
enum Column {
    /// Text: the offsets (starting at 0) and the bytes.
    Text(Vec<i32>, Vec<u8>),
    Integer(Vec<i64>),
    Real(Vec<f64>),
    Real32(Vec<f32>),
    Bool(BooleanBufferBuilder),
}

/// A column's buffers while its batch holds them.
enum Lent {
    Text(Buffer, Buffer),
    Integer(Buffer),
    Real(Buffer),
    Real32(Buffer),
    Bool(BooleanBuffer),
}

impl Column {
    /// An empty column with room for `rows` values.
    fn with_capacity(data_type: &DataType, rows: usize) -> Self {
        match data_type {
            DataType::Utf8 => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                Self::Text(offsets, Vec::with_capacity(rows * 8))
            }
            DataType::Int64 => Self::Integer(Vec::with_capacity(rows)),
            DataType::Float32 => Self::Real32(Vec::with_capacity(rows)),
            DataType::Boolean => Self::Bool(BooleanBufferBuilder::new(rows)),
            _ => Self::Real(Vec::with_capacity(rows)),
        }
    }

    /// Appends `cell` (the column's default for NULL or a mismatched kind);
    /// the bytes of column data it added. Inlined into the row loop, as
    /// the cell it is given is.
    #[inline(always)]
    fn append(&mut self, cell: Cell<'_>) -> Result<usize> {
        Ok(match self {
            Self::Text(offsets, values) => {
                let text = match cell {
                    Cell::Text(text) => std::str::from_utf8(text)
                        .map_err(|_| DomainError::Internal("a stored text value is not UTF-8".to_owned()))?,
                    _ => "",
                };
                let end = i32::try_from(values.len() + text.len()).map_err(|_| {
                    DomainError::Internal("an Arrow batch's text column would pass 2 GiB".to_owned())
                })?;
                values.extend_from_slice(text.as_bytes());
                offsets.push(end);
                text.len() + 4
            }
            Self::Integer(values) => {
                values.push(match cell {
                    Cell::Integer(n) => n,
                    _ => 0,
                });
                8
            }
            Self::Real(values) => {
                values.push(real(cell));
                8
            }
            Self::Real32(values) => {
                values.push(real(cell) as f32);
                4
            }
            Self::Bool(values) => {
                values.append(matches!(cell, Cell::Integer(n) if n != 0) || cell == Cell::Bool(true));
                1
            }
        })
    }

    /// The values so far, lent to the batch; the column is empty until
    /// [`Column::reclaimed`].
    fn lend(&mut self) -> Lent {
        match self {
            Self::Text(offsets, values) => Lent::Text(
                Buffer::from_vec(std::mem::take(offsets)),
                Buffer::from_vec(std::mem::take(values)),
            ),
            Self::Integer(values) => Lent::Integer(Buffer::from_vec(std::mem::take(values))),
            Self::Real(values) => Lent::Real(Buffer::from_vec(std::mem::take(values))),
            Self::Real32(values) => Lent::Real32(Buffer::from_vec(std::mem::take(values))),
            Self::Bool(values) => Lent::Bool(values.finish()),
        }
    }

    /// The column again, in the buffers it `lent` once nothing else holds
    /// them, emptied (fresh ones of their size if something still does).
    fn reclaimed(lent: Lent) -> Self {
        match lent {
            Lent::Text(offsets, values) => {
                let mut offsets = emptied(offsets);
                offsets.push(0);
                Self::Text(offsets, emptied(values))
            }
            Lent::Integer(values) => Self::Integer(emptied(values)),
            Lent::Real(values) => Self::Real(emptied(values)),
            Lent::Real32(values) => Self::Real32(emptied(values)),
            // A boolean column starts anew (an eighth of a byte a value).
            Lent::Bool(values) => Self::Bool(BooleanBufferBuilder::new(values.len())),
        }
    }
}

impl Lent {
    /// The array of the lent values (sharing their buffers).
    fn array(&self) -> Result<ArrayRef> {
        Ok(match self {
            Self::Text(offsets, values) => {
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets.clone()));
                let array = StringArray::try_new(offsets, values.clone(), None)
                    .map_err(|e| DomainError::Internal(format!("building an Arrow text column: {e}")))?;
                Arc::new(array)
            }
            Self::Integer(values) => Arc::new(Int64Array::new(ScalarBuffer::from(values.clone()), None)),
            Self::Real(values) => Arc::new(Float64Array::new(ScalarBuffer::from(values.clone()), None)),
            Self::Real32(values) => Arc::new(Float32Array::new(ScalarBuffer::from(values.clone()), None)),
            Self::Bool(values) => Arc::new(BooleanArray::new(values.clone(), None)),
        })
    }
}

/// The vector of a lent buffer no one else holds now, emptied; a fresh one
/// of its size if it is still shared. Room beyond twice a batch's bytes
/// (a batch that one huge cell filled) is given back rather than held for
/// the rest of the read.
fn emptied<T: ArrowNativeType>(lent: Buffer) -> Vec<T> {
    let most = 2 * ARROW_BATCH_BYTES / std::mem::size_of::<T>();
    let used = lent.len() / std::mem::size_of::<T>();
    match lent.into_vec::<T>() {
        Ok(mut values) => {
            values.clear();
            values.shrink_to(most);
            values
        }
        Err(_) => Vec::with_capacity(used.min(most)),
    }
}

/// A real column's value: integers widened, anything else its default.
fn real(cell: Cell<'_>) -> f64 {
    match cell {
        Cell::Real(x) => x,
        Cell::Integer(n) => n as f64,
        Cell::Float(x) => f64::from(x),
        _ => 0.0,
    }
}

/// The rows of one batch being built, and the IPC encoder they leave by.
#[derive(Debug)]
pub(crate) struct ArrowBatch {
    schema: SchemaRef,
    columns: Vec<Column>,
    /// Per column, whether it is delivered as pseudonyms.
    pseudonymized: Vec<bool>,
    pseudonyms: Option<PseudonymKey>,
    bytes: usize,
    ipc: IpcDataGenerator,
    dictionaries: DictionaryTracker,
    options: IpcWriteOptions,
    context: IpcWriteContext,
}

impl ArrowBatch {
    /// A batch of rows whose first `schema.fields().len()` cells are the
    /// schema's columns, delivering those in `pseudonymized` as pseudonyms
    /// under `pseudonyms`.
    pub(crate) fn new(schema: Schema, pseudonymized: &[bool], pseudonyms: Option<PseudonymKey>) -> Self {
        let columns = schema.fields().iter().map(|f| Column::with_capacity(f.data_type(), 1024)).collect();
        let pseudonymized =
            (0..schema.fields().len()).map(|i| pseudonymized.get(i).copied().unwrap_or(false)).collect();
        Self {
            schema: Arc::new(schema),
            columns,
            pseudonymized,
            pseudonyms,
            bytes: 0,
            ipc: IpcDataGenerator::default(),
            dictionaries: DictionaryTracker::new(false),
            options: IpcWriteOptions::default(),
            context: IpcWriteContext::default(),
        }
    }

    /// Appends one result row.
    #[inline]
    pub(crate) fn row(&mut self, row: &impl CellRow) -> Result<()> {
        let mut pseudonym = [0u8; PSEUDONYM_DIGITS];
        for (i, column) in self.columns.iter_mut().enumerate() {
            let key =
                if self.pseudonymized[i] { Some(pseudonym_key(self.pseudonyms.as_ref())?) } else { None };
            self.bytes += column.append(delivered(row.cell(i)?, key, &mut pseudonym))?;
        }
        Ok(())
    }

    /// Whether the batch should be sent now.
    pub(crate) fn is_full(&self) -> bool {
        self.bytes >= ARROW_BATCH_BYTES
    }

    /// The `FlightData` message of the schema, which comes first.
    pub(crate) fn schema_message(&mut self) -> Pieces {
        let encoded = self.ipc.schema_to_bytes_with_dictionary_tracker(
            &self.schema,
            &mut self.dictionaries,
            &self.options,
        );
        flight_data(encoded, &[])
    }

    /// The `FlightData` message of the rows appended since the last one,
    /// with `app_metadata` (the resume token after its last row); the
    /// builders start over.
    pub(crate) fn finish(&mut self, app_metadata: &[u8]) -> Result<Pieces> {
        let lent: Vec<Lent> = self.columns.iter_mut().map(Column::lend).collect();
        let encoded = lent.iter().map(Lent::array).collect::<Result<Vec<_>>>().and_then(|columns| {
            let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)
                .map_err(|e| DomainError::Internal(format!("building an Arrow batch: {e}")))?;
            let (_, encoded) = self
                .ipc
                .encode(&batch, &mut self.dictionaries, &self.options, &mut self.context)
                .map_err(|e| DomainError::Internal(format!("encoding an Arrow batch: {e}")))?;
            Ok(encoded)
        });
        // The batch is gone (encoded as a copy): its buffers come back.
        self.columns = lent.into_iter().map(Column::reclaimed).collect();
        self.bytes = 0;
        Ok(flight_data(encoded?, app_metadata))
    }
}

/// `arrow.flight.protocol.FlightData` in wire format: the IPC message as
/// `data_header` (2), `app_metadata` (3), the buffers as `data_body` (1000),
/// kept as the encoder wrote it (the second piece) rather than copied
/// behind the fields.
fn flight_data(encoded: EncodedData, app_metadata: &[u8]) -> Pieces {
    use mesh_rows::wire::{put_len_field, put_len_prefix};
    let mut head = Vec::with_capacity(encoded.ipc_message.len() + app_metadata.len() + 24);
    put_len_field(&mut head, 2, &encoded.ipc_message);
    if !app_metadata.is_empty() {
        put_len_field(&mut head, 3, app_metadata);
    }
    if !encoded.arrow_data.is_empty() {
        put_len_prefix(&mut head, 1000, encoded.arrow_data.len());
    }
    Pieces { head: Bytes::from(head), body: Bytes::from(encoded.arrow_data) }
}

#[cfg(test)]
#[path = "arrow_tests.rs"]
mod tests;
