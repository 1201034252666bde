//! `TimerHandle`: what `add_timeout`, `call_later` and `call_at` return.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Weak;

use pyo3::prelude::*;

use super::shared::Shared;
use crate::TimerKey;

/// A timer. Cancelling it releases its callback and arguments at once.
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
