//! Release binaries of the CLI keep their line tables (backtraces name files
//! and lines) compressed: ELF linkers write the debug sections with zlib,
//! which the standard library's backtrace reads.

fn main() {
    let release = std::env::var("PROFILE").is_ok_and(|profile| profile == "release");
    let elf = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if release && elf {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
    }
}
