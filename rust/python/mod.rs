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

/// The native core of mioloop.
#[pymodule(gil_used = true)]
fn _mioloop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<event_loop::Loop>()?;
    m.add_class::<handles::Handle>()?;
    m.add_class::<handles::TimerHandle>()?;
    m.add("READ", crate::IoEvents::READ.bits())?;
    m.add("WRITE", crate::IoEvents::WRITE.bits())?;
    m.add("ERROR", crate::IoEvents::ERROR.bits())?;
    Ok(())
}
