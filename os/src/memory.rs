//! Returning freed heap memory to the system.
//!
//! The allocator keeps memory freed by the program for reuse, so a server that once held many
//! connections would otherwise stay at that size for good. glibc's `malloc_trim` releases the free
//! memory at the top of the heap and in whole free pages; other C libraries have no such call,
//! and there [`trim`] does nothing.

/// Returns free heap memory to the system where the C library can (glibc): a walk of the heap,
/// well under a millisecond at a server's sizes, so call it rarely (after a burst, not per
/// request).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions: it takes the allocator's own lock and only
    // releases memory that is free, so no live allocation is affected.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trimming_keeps_live_memory_intact() {
        let keep: Vec<u64> = (0..100_000).collect();
        drop(
            (0..64)
                .map(|i| vec![i as u8; 64 * 1024])
                .collect::<Vec<_>>(),
        );
        super::trim();
        assert!(keep.iter().enumerate().all(|(i, &v)| v == i as u64));
    }
}
