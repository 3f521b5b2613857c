//! The filter parser and compiler: any text compiles or is refused.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &str| mesh_runtime::fuzzing::filter(input));
