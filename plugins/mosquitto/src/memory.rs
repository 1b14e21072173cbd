//! Memory the background thread freed goes back to the system: a full
//! reconciliation reads and drops a copy of the whole registry, and glibc
//! keeps freed memory in its arenas unless asked (at the end of a soak,
//! `malloc_trim` gave 16 MiB of a 37.6 MiB broker back).

/// Gives the free pages of every glibc arena back to the system. Passed as
/// `SyncConfig::release_memory`, so it runs on the background thread after
/// each reconciliation, never on the broker thread.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and touches only glibc's own
    // arenas, each under its lock; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
