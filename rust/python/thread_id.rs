//! A cheap identity for the current thread, to tell the loop's thread from others.

/// No thread has this id: the loop is not running.
pub(crate) const NO_THREAD: u64 = 0;

/// The current thread's id (never [`NO_THREAD`]).
///
/// `pthread_self` reads the thread pointer directly, where a Rust `thread_local!`
/// in a shared library goes through `__tls_get_addr` on every call.
pub(crate) fn current() -> u64 {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    let id = unsafe { libc::pthread_self() };
    // On Linux a pthread_t is the address of the thread's control block: never 0.
    id as u64
}
