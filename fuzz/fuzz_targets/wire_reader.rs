//! The CLI's wire reader: any batch decodes or is refused, for the payment
//! row type with every column selected.
#![no_main]

use std::ops::ControlFlow;
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, FieldDescriptor};

#[path = "../../cli/src/wire.rs"]
#[allow(dead_code, unreachable_pub)]
mod wire;

fn columns() -> &'static Vec<FieldDescriptor> {
    static COLUMNS: OnceLock<Vec<FieldDescriptor>> = OnceLock::new();
    COLUMNS.get_or_init(|| {
        let pool = DescriptorPool::decode(mesh_contracts::FILE_DESCRIPTOR_SET).expect("contracts decode");
        pool.get_message_by_name("woori.payment.v1.CardSpending").expect("the row type").fields().collect()
    })
}

libfuzzer_sys::fuzz_target!(|batch: &[u8]| {
    let reader = wire::RowReader::new(1, columns()).expect("scalar columns");
    let mut rows = 0u64;
    let _ = reader.read(batch, |cells| {
        assert_eq!(cells.len(), columns().len());
        rows += 1;
        Ok(ControlFlow::Continue(()))
    });
});
