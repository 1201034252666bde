//! A cheap identity for the current thread, to tell the loop's thread from others.

use std::sync::atomic::{AtomicU64, Ordering};

/// No thread has this id: the loop is not running.
pub(crate) const NO_THREAD: u64 = 0;

static NEXT: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CURRENT: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
}

/// The current thread's id (never [`NO_THREAD`]).
pub(crate) fn current() -> u64 {
    CURRENT.with(|id| *id)
}
