//! Background threads (backups, the search indexer) run below the chat's CPU priority: on a
//! small box, copying or indexing must not take a core from the writer and the sockets while
//! people chat, and finishing a little later harms nobody.

/// A backup: as low as it goes.
pub const BACKUP_NICENESS: i32 = 19;
/// The search indexer: low, but it must keep up with a busy office over a day (nice 10 still
/// gets about a tenth of a contended core, and all of an idle one).
pub const SEARCH_NICENESS: i32 = 10;

/// Lowers the calling thread's CPU priority; threads it starts afterwards inherit it. Linux
/// gives a "process" priority set on a thread id to that thread alone.
pub fn lower_this_threads_priority(niceness: i32) {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), niceness) {
        tracing::debug!(error = %e, "this thread keeps its CPU priority");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = niceness;
}
