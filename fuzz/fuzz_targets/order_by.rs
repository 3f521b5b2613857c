//! The `order_by` parser.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &str| mesh_runtime::fuzzing::order_by(input));
