//! Read masks: the paths split at NUL bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &str| {
    mesh_runtime::fuzzing::read_mask(input.split('\0').map(str::to_owned).collect())
});
