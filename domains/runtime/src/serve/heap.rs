//! How a process serving reads keeps memory it frees: glibc's malloc gives
//! the free memory at the top of a thread's heap back to the system at
//! once, so the megabytes an Arrow batch is encoded and sent in were
//! faulted in afresh batch after batch (about 20,000 page faults and a
//! tenth of the domain's CPU for a 400,000-row read). Keeping a few
//! megabytes at each heap's top lets the next batch reuse them.

/// Bytes of free memory kept at the top of each heap: two batches' worth.
pub const HEAP_TOP_PAD: usize = 2 * crate::scan::arrow::ARROW_BATCH_BYTES;

/// Keeps [`HEAP_TOP_PAD`] bytes at the top of each heap, for the whole
/// process, unless the operator set `MALLOC_TOP_PAD_` (which wins). Does
/// nothing where the C library is not glibc.
pub fn keep_heap_top() {
    if std::env::var_os("MALLOC_TOP_PAD_").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets one of malloc's parameters.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, HEAP_TOP_PAD as libc::c_int);
    }
}
