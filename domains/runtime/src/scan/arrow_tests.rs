//! Batches built in buffers reused from batch to batch hold their own rows
//! alone, whatever the batches before them held.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_flight::FlightData;
use arrow_schema::{DataType, Field, Schema};
use prost::Message;

use super::{ARROW_BATCH_BYTES, ArrowBatch, Column};
use crate::values::cell::Cell;

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("count", DataType::Int64, false),
        Field::new("share", DataType::Float64, false),
        Field::new("ratio", DataType::Float32, false),
        Field::new("active", DataType::Boolean, false),
    ])
}

/// The record batch in a `FlightData` message the batch wrote.
fn decoded(pieces: mesh_grpc::codec::Pieces) -> RecordBatch {
    let mut wire = pieces.head.to_vec();
    wire.extend_from_slice(&pieces.body);
    let data = FlightData::decode(wire.as_slice()).expect("a FlightData message");
    arrow_flight::utils::flight_data_to_arrow_batch(&data, Arc::new(schema()), &HashMap::new())
        .expect("an Arrow record batch")
}

#[test]
fn each_batch_holds_its_own_rows_alone() {
    let mut batch = ArrowBatch::new(schema(), &[], None);
    // Long names first, so that a batch reusing their buffers would show
    // leftovers if it were not emptied.
    let rounds: [(&str, usize); 3] = [("a long customer name", 300), ("b", 5), ("", 1)];
    let mut first_allocation = None;
    for (round, (name, rows)) in rounds.into_iter().enumerate() {
        for i in 0..rows {
            let n = (round * 1000 + i) as i64;
            let cells = [
                Cell::Text(name.as_bytes()),
                Cell::Integer(n),
                Cell::Real(n as f64 / 2.0),
                // NULL and a mismatched kind arrive as the type's default.
                if i % 2 == 0 { Cell::Null } else { Cell::Real(0.25) },
                Cell::Integer(i as i64 % 2),
            ];
            batch.row(&&cells[..]).expect("a row appended");
        }
        let got = decoded(batch.finish(b"token").expect("a batch encoded"));
        assert_eq!(got.num_rows(), rows, "round {round}");
        let names: &StringArray = got.column(0).as_any().downcast_ref().expect("text");
        assert!(names.iter().all(|value| value == Some(name)), "round {round}: {names:?}");
        let counts: &Int64Array = got.column(1).as_any().downcast_ref().expect("integers");
        let expected: Vec<i64> = (0..rows).map(|i| (round * 1000 + i) as i64).collect();
        assert_eq!(counts.values().to_vec(), expected, "round {round}");
        let shares: &Float64Array = got.column(2).as_any().downcast_ref().expect("reals");
        assert_eq!(shares.value(rows - 1), expected[rows - 1] as f64 / 2.0);
        let ratios: &Float32Array = got.column(3).as_any().downcast_ref().expect("floats");
        let expected: Vec<f32> = (0..rows).map(|i| if i % 2 == 0 { 0.0 } else { 0.25 }).collect();
        assert_eq!(ratios.values().to_vec(), expected, "round {round}");
        let active: &BooleanArray = got.column(4).as_any().downcast_ref().expect("booleans");
        assert_eq!(active.true_count(), rows / 2, "round {round}");
        assert_eq!(got.columns().iter().map(|c| c.null_count()).sum::<usize>(), 0);
        // The next batch is built in the same allocation.
        let Column::Integer(counts) = &batch.columns[1] else { panic!("an integer column") };
        assert!(counts.is_empty() && counts.capacity() >= 300, "round {round}: {}", counts.capacity());
        assert_eq!(*first_allocation.get_or_insert(counts.as_ptr()), counts.as_ptr(), "round {round}");
    }
}

#[test]
fn a_batch_one_huge_cell_filled_gives_its_room_back() {
    let mut batch = ArrowBatch::new(schema(), &[], None);
    let huge = "x".repeat(3 * ARROW_BATCH_BYTES);
    let cells = [Cell::Text(huge.as_bytes()), Cell::Integer(1), Cell::Real(1.0), Cell::Null, Cell::Null];
    batch.row(&&cells[..]).expect("a row appended");
    let got = decoded(batch.finish(b"").expect("a batch encoded"));
    let names: &StringArray = got.column(0).as_any().downcast_ref().expect("text");
    assert_eq!(names.value(0).len(), huge.len());
    let Column::Text(offsets, values) = &batch.columns[0] else { panic!("a text column") };
    assert_eq!(offsets, &[0]);
    assert!(values.is_empty() && values.capacity() <= 2 * ARROW_BATCH_BYTES, "{}", values.capacity());
}
