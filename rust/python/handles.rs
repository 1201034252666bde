//! What scheduling returns: handles that cancel a callback or a timer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Weak;

use pyo3::prelude::*;

use super::event_loop::Shared;
use crate::TimerKey;

/// A callback scheduled with `call_soon`; `cancel()` stops it from running.
#[pyclass(frozen, module = "mioloop._mioloop")]
pub(crate) struct Handle {
    cancelled: AtomicBool,
}

impl Handle {
    pub(crate) fn new() -> Self {
        Handle {
            cancelled: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

#[pymethods]
impl Handle {
    /// Cancels the callback; does nothing if it already ran.
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether `cancel()` was called.
    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }

    fn __repr__(&self) -> String {
        format!(
            "<Handle{}>",
            if self.is_cancelled() {
                " cancelled"
            } else {
                ""
            }
        )
    }
}

/// A timer (`add_timeout`, `call_later`, `call_at`). Cancelling it releases its
/// callback and arguments at once.
#[pyclass(frozen, module = "mioloop._mioloop")]
pub(crate) struct TimerHandle {
    key: TimerKey,
    when: f64,
    shared: Weak<Shared>,
    cancelled: AtomicBool,
}

impl TimerHandle {
    pub(crate) fn new(key: TimerKey, when: f64, shared: Weak<Shared>) -> Self {
        TimerHandle {
            key,
            when,
            shared,
            cancelled: AtomicBool::new(false),
        }
    }
}

#[pymethods]
impl TimerHandle {
    /// Cancels the timer; does nothing if it already ran or was cancelled.
    fn cancel(&self) {
        if self.cancelled.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(shared) = self.shared.upgrade() {
            // Dropped after the lock is released: dropping may run Python code.
            let callback = shared.lock().timers.cancel(self.key);
            drop(callback);
        }
    }

    /// Whether `cancel()` was called.
    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// The timer's deadline, in the loop's time.
    fn when(&self) -> f64 {
        self.when
    }

    fn __repr__(&self) -> String {
        let state = if self.cancelled() { " cancelled" } else { "" };
        format!("<TimerHandle when={}{state}>", self.when)
    }
}
