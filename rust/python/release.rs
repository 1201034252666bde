//! "No Python object is dropped while a lock is held" as a mechanism rather than
//! a habit: a dropped object may run `__del__`, which may call back into the loop
//! and want the lock again.
//!
//! [`locked`] runs a closure on a mutex's value with a [`Release`] beside it:
//! whatever the closure takes out of the state (a replaced callback, a removed fd
//! owner, a protocol let go) goes into the `Release`, which drops it only after
//! the guard is gone, on every path out of the closure, an early `return` or an
//! error included.

use std::sync::{Mutex, PoisonError};

/// What a locked section let go of, dropped once the lock is released.
#[derive(Default)]
pub(crate) struct Release {
    held: Vec<Box<dyn Send>>,
}

impl Release {
    /// Keeps `value` until the lock is released.
    pub(crate) fn later<T: Send + 'static>(&mut self, value: T) {
        if std::mem::needs_drop::<T>() {
            self.held.push(Box::new(value));
        }
    }
}

/// Runs `f` on `mutex`'s value; what it puts in the [`Release`] is dropped after
/// the lock is released. A poisoned mutex is used as it is (no code panics while
/// holding one of the loop's locks, so its value is consistent).
pub(crate) fn locked<T, R>(mutex: &Mutex<T>, f: impl FnOnce(&mut T, &mut Release) -> R) -> R {
    let mut release = Release::default();
    let result = {
        let mut guard = mutex.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard, &mut release)
    };
    drop(release);
    result
}
