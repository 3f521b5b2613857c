//! How the process's C allocator keeps and gives back the memory a domain
//! frees (glibc's malloc; elsewhere these do nothing). One setting for the
//! whole process, made as a domain starts serving or loading, before the
//! threads of its scans and loads allocate:
//!
//! - blocks under 32 MiB come from the heap, and glibc trims an arena's top
//!   once more than 1 MiB is free there: left to itself, glibc raises both
//!   thresholds each time a large block is freed, so the arenas of a load's
//!   threads would keep their freed tops for good (25 MiB after 400,000
//!   rows);
//! - what a trim gives back is what lies beyond [`HEAP_TOP_PAD`]: a read
//!   sends its Arrow batches' IPC bodies (2 MiB each) and frees them once
//!   sent, and with a top trimmed down to glibc's default 128 KiB every
//!   batch faulted its pages in afresh (19,000-36,000 page faults for a
//!   400,000-row read, about 2,000 with the pad: `mesh-bench --only arrow`).
//!
//! A setting the operator made (`MALLOC_MMAP_THRESHOLD_`,
//! `MALLOC_TRIM_THRESHOLD_`, `MALLOC_TOP_PAD_`, or the same in
//! `GLIBC_TUNABLES`) wins over ours.

/// Free memory kept at the top of each arena: two Arrow batches' worth.
pub const HEAP_TOP_PAD: usize = 4 << 20;

/// Sets how the allocator keeps what is freed, once per process.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static TUNED: std::sync::Once = std::sync::Once::new();
        TUNED.call_once(|| {
            let settings = [
                (libc::M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold", 32 << 20),
                (libc::M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold", 1 << 20),
                (libc::M_TOP_PAD, "MALLOC_TOP_PAD_", "glibc.malloc.top_pad", HEAP_TOP_PAD as libc::c_int),
            ];
            let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
            for (parameter, variable, tunable, value) in settings {
                let set = std::env::var_os(variable).is_some_and(|v| !v.is_empty());
                if !set && !tunables.contains(tunable) {
                    // SAFETY: mallopt sets one of malloc's global parameters
                    // under the main arena's lock; it takes no pointer.
                    unsafe { libc::mallopt(parameter, value) };
                }
            }
        });
    }
}

/// Returns to the system the memory a load freed: parsing, the writer's
/// large page cache and the index sorts leave free blocks inside the heap
/// that only `malloc_trim` hands back, so a domain idles after its first
/// load about as it does after a restart (`mesh-bench --only memory`).
pub fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; it takes no
    // pointer and leaves allocated memory untouched.
    unsafe {
        libc::malloc_trim(0);
    }
}
