//! asyncio's debug mode on the engine: callbacks that run longer than the
//! loop's `slow_callback_duration` are reported ("Executing ... took ...
//! seconds"), and the scheduling methods refuse calls from other threads.

use std::sync::atomic::Ordering;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;

use super::core::LoopCore;
use super::run::Culprit;

impl LoopCore {
    /// In debug mode, the slowest a callback may run before it is reported: the
    /// face's `slow_callback_duration` (the IOLoop face has none). `None`
    /// otherwise.
    pub(crate) fn slow_callback_limit(slf: &Bound<'_, Self>) -> PyResult<Option<Duration>> {
        if !slf.get().debug.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let py = slf.py();
        let Some(limit) = slf.getattr_opt(intern!(py, "slow_callback_duration"))? else {
            return Ok(None);
        };
        let seconds: f64 = limit.extract()?;
        Ok(Some(
            Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX),
        ))
    }

    /// Reports `culprit` (a callback, a handler, a transport) if it ran for
    /// `took`, at least `limit`.
    pub(crate) fn report_if_slow(
        slf: &Bound<'_, Self>,
        culprit: Culprit,
        took: Duration,
        limit: Duration,
    ) -> PyResult<()> {
        if took < limit {
            return Ok(());
        }
        let py = slf.py();
        let Culprit { func, args, handle } = culprit;
        let hook = slf.get().hooks.slow_callback.bind(py);
        hook.call1((slf, func, args, handle, took.as_secs_f64()))
            .map(drop)
    }

    /// In debug mode, refuses a non-thread-safe call from a thread other than
    /// the running loop's (asyncio's check).
    pub(crate) fn check_thread(&self) -> PyResult<()> {
        if self.debug.load(Ordering::Relaxed)
            && self.shared.is_running()
            && !self.shared.on_loop_thread()
        {
            return Err(PyRuntimeError::new_err(
                "Non-thread-safe operation invoked on an event loop other than the current one",
            ));
        }
        Ok(())
    }
}
