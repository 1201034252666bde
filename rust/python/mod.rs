//! The Python bindings: every PyO3 item of the crate lives in this folder.
//!
//! - `event_loop.rs`: `Loop`, the engine as a Python class (both faces subclass it);
//! - `callback.rs`: how a queued callback is stored and called;
//! - `handles.rs`: `Handle` and `TimerHandle`, what scheduling returns;
//! - `errors.rs`: engine errors as the right Python exceptions.

mod callback;
mod errors;
mod event_loop;
mod handles;
mod thread_id;

use pyo3::prelude::*;

/// Calls ``func()`` ``n`` times from native code and returns the seconds it took:
/// the floor of what running a Python callback costs (``benches/floors.py``).
#[pyfunction]
fn _bench_calls(func: &Bound<'_, PyAny>, n: u64) -> PyResult<f64> {
    let start = std::time::Instant::now();
    for _ in 0..n {
        func.call0()?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// The native core of mioloop.
#[pymodule(gil_used = true)]
fn _mioloop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<event_loop::Loop>()?;
    m.add_function(wrap_pyfunction!(_bench_calls, m)?)?;
    m.add_class::<handles::Handle>()?;
    m.add_class::<handles::TimerHandle>()?;
    m.add("READ", crate::IoEvents::READ.bits())?;
    m.add("WRITE", crate::IoEvents::WRITE.bits())?;
    m.add("ERROR", crate::IoEvents::ERROR.bits())?;
    Ok(())
}
