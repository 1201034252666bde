//! The Python bindings: every PyO3 item of the crate lives in this folder.
//!
//! - `core.rs`: `LoopCore`, the engine as a Python class (both faces subclass it);
//!   its methods are spread by concern over `run.rs` (the iteration),
//!   `scheduling.rs` (callbacks and timers), `handlers.rs` (Tornado's fd handlers)
//!   and `watchers.rs` (asyncio's readers and writers);
//! - `shared.rs`: the state shared with handles and other threads;
//! - `fd_owner.rs`: who owns a registered fd, and what its events run;
//! - `callback.rs`, `context.rs`, `handle/` (on `raw_type.rs`): a queued
//!   callback, the `contextvars` it runs in, and the handles that cancel it;
//! - `transport/`: asyncio transports with their I/O in Rust;
//! - `report.rs`: what happens to a callback's exception; `debug.rs`: asyncio's
//!   debug mode (slow callbacks, calls from other threads);
//! - `signals.rs`: the signal wake-up socket;
//! - `fastcall/`: the scheduling methods of both faces without a tuple per call;
//! - `args.rs`, `errors.rs`, `thread_id.rs`: arguments in, exceptions out, and
//!   which thread is the loop's.

mod args;
mod callback;
mod context;
mod core;
mod debug;
mod errors;
mod fastcall;
mod fd_owner;
mod handle;
mod handlers;
mod hooks;
mod raw_type;
mod release;
mod report;
mod run;
mod scheduling;
mod shared;
mod signals;
mod tasks;
mod thread_id;
mod transport;
mod watchers;

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
    m.add_class::<core::LoopCore>()?;
    fastcall::install(&m.py().get_type::<core::LoopCore>())?;
    m.add_function(wrap_pyfunction!(_bench_calls, m)?)?;
    handle::add_to(m)?;
    transport::add_to(m)?;
    m.add("READ", crate::IoEvents::READ.bits())?;
    m.add("WRITE", crate::IoEvents::WRITE.bits())?;
    m.add("ERROR", crate::IoEvents::ERROR.bits())?;
    Ok(())
}
