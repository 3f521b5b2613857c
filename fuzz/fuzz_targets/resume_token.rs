//! Resume tokens: as sent by a client, and as signed payloads.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| mesh_runtime::fuzzing::resume_token(input));
