//! What the loop does with a callback's exception: `KeyboardInterrupt` and
//! `SystemExit` leave `start()`; anything else goes to the loop's exception
//! handler ("Exception in callback ...") and the loop goes on.

use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::callback::PyCallback;
use super::hooks::Hooks;

/// What a callback's failure means for the loop.
enum Failure {
    /// `KeyboardInterrupt` or `SystemExit`: leave `start()`.
    Exit(PyErr),
    /// Any other exception: report it and go on.
    Report(PyErr),
}

/// Whether `err` is `asyncio.CancelledError`.
pub(crate) fn is_cancelled_error(py: Python<'_>, err: &PyErr) -> bool {
    py.import(intern!(py, "asyncio"))
        .and_then(|asyncio| asyncio.getattr(intern!(py, "CancelledError")))
        .is_ok_and(|cancelled| err.get_type(py).is_subclass(&cancelled).unwrap_or(false))
}

/// Sorts a callback's error: exits propagate, the rest are reported.
fn classify(py: Python<'_>, err: PyErr) -> Failure {
    if err.is_instance_of::<PyKeyboardInterrupt>(py) || err.is_instance_of::<PySystemExit>(py) {
        Failure::Exit(err)
    } else {
        Failure::Report(err)
    }
}

/// Handles `err`, raised by the asyncio callback `callback`: an exit is
/// returned, anything else goes to `event_loop.call_exception_handler` as
/// asyncio's handles report it ("Exception in callback func(args) at file:line",
/// with the `handle`, and in debug mode where it was made).
pub(crate) fn fail_callback(
    event_loop: &Bound<'_, PyAny>,
    err: PyErr,
    callback: &PyCallback,
) -> PyResult<()> {
    let py = event_loop.py();
    exit_or(py, err, |err| {
        let func = callback.func.bind(py);
        let args = callback.args().map(|a| a.bind(py).clone());
        let source = py
            .import(intern!(py, "mioloop._handles"))
            .and_then(|h| h.call_method1(intern!(py, "callback_source"), (func, args)))
            .map_or_else(|_| describe(func), |s| s.to_string());
        let context = PyDict::new(py);
        context.set_item(
            intern!(py, "message"),
            format!("Exception in callback {source}"),
        )?;
        context.set_item(intern!(py, "exception"), err.value(py))?;
        match callback.handle() {
            Some(handle) => {
                let handle = handle.object().bind(py);
                context.set_item(intern!(py, "handle"), handle)?;
                let traceback = handle.getattr(intern!(py, "_source_traceback"))?;
                if traceback.is_truthy()? {
                    context.set_item(intern!(py, "source_traceback"), traceback)?;
                }
                call_exception_handler(event_loop, context)
            }
            // No handle to name its context (a timer's, a reader's): the handler
            // runs in it, as asyncio's runs in its handle's (from 3.12).
            None => {
                context.set_item(intern!(py, "callback"), func)?;
                callback.in_context_if_free(py, || call_exception_handler(event_loop, context))
            }
        }
    })
}

/// Handles `err`, raised by `culprit`: an exit is returned, anything else is
/// passed to `event_loop.call_exception_handler`.
pub(crate) fn fail(
    event_loop: &Bound<'_, PyAny>,
    err: PyErr,
    culprit: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let py = event_loop.py();
    exit_or(py, err, |err| {
        let context = PyDict::new(py);
        let message = format!("Exception in callback {}", describe(culprit));
        context.set_item(intern!(py, "message"), message)?;
        context.set_item(intern!(py, "exception"), err.value(py))?;
        context.set_item(intern!(py, "callback"), culprit)?;
        call_exception_handler(event_loop, context)
    })
}

/// Handles `err`, raised out of `transport`'s I/O (a `connection_lost` called
/// once its queue was flushed, a failing `shutdown` after `write_eof`...): an
/// exit is returned, anything else goes to the exception handler with the
/// transport and its protocol, as asyncio's handles report what its transports'
/// `_read_ready` and `_write_ready` raise.
pub(crate) fn fail_transport(
    event_loop: &Bound<'_, PyAny>,
    err: PyErr,
    transport: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let message = format!("Exception in callback {}", describe(transport));
    let protocol = transport.call_method0(intern!(event_loop.py(), "get_protocol"))?;
    report_transport(event_loop, &message, err, transport, &protocol)
}

/// Handles `err`, raised in `transport`'s work with `protocol`: an exit is
/// returned, anything else goes to the exception handler with `message`, the
/// transport and the protocol.
pub(crate) fn report_transport(
    event_loop: &Bound<'_, PyAny>,
    message: &str,
    err: PyErr,
    transport: &Bound<'_, PyAny>,
    protocol: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let py = event_loop.py();
    exit_or(py, err, |err| {
        let context = PyDict::new(py);
        context.set_item(intern!(py, "message"), message)?;
        context.set_item(intern!(py, "exception"), err.value(py))?;
        context.set_item(intern!(py, "transport"), transport)?;
        context.set_item(intern!(py, "protocol"), protocol)?;
        call_exception_handler(event_loop, context)
    })
}

/// Handles `err`, raised by `culprit`, a callback with Tornado's semantics
/// (`add_callback`, `add_timeout`...): an exit is returned, anything else goes to
/// `event_loop._tornado_callback_failed(description, callback, exception)`. The
/// asyncio face logs it as Tornado does ("Exception in callback ..." on
/// `tornado.application`); the IOLoop face passes it to its exception handler.
pub(crate) fn fail_tornado(
    event_loop: &Bound<'_, PyAny>,
    hooks: &Hooks,
    err: PyErr,
    culprit: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let py = event_loop.py();
    exit_or(py, err, |err| {
        let failed = hooks.tornado_callback_failed.bind(py);
        let called = failed.call1((event_loop, describe(culprit), culprit, err.value(py)));
        unraisable_unless_exit(event_loop, called.map(drop))
    })
}

/// Returns an exit (`KeyboardInterrupt`, `SystemExit`); hands anything else to
/// `report`.
fn exit_or(py: Python<'_>, err: PyErr, report: impl FnOnce(PyErr) -> PyResult<()>) -> PyResult<()> {
    match classify(py, err) {
        Failure::Exit(err) => Err(err),
        Failure::Report(err) => report(err),
    }
}

/// `repr(obj)`, or a plain description when its `__repr__` raises: reporting one
/// error must not raise another and lose the first.
fn describe(obj: &Bound<'_, PyAny>) -> String {
    match obj.repr() {
        Ok(repr) => repr.to_string(),
        Err(_) => {
            let type_name = obj
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            format!("<{type_name} object (its __repr__ raised)>")
        }
    }
}

/// Passes `context` to the loop's exception handler; an exception from the
/// handler itself is unraisable, unless it is an exit.
pub(crate) fn call_exception_handler(
    event_loop: &Bound<'_, PyAny>,
    context: Bound<'_, PyDict>,
) -> PyResult<()> {
    let py = event_loop.py();
    report_to(
        event_loop,
        intern!(py, "call_exception_handler"),
        (context,),
    )
}

/// Calls the loop's reporting method `method` with `args`; an exception from it
/// is unraisable (reporting one error must not lose it to another), unless it is
/// an exit.
fn report_to<'py>(
    event_loop: &Bound<'py, PyAny>,
    method: &Bound<'py, pyo3::types::PyString>,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> PyResult<()> {
    unraisable_unless_exit(event_loop, event_loop.call_method1(method, args).map(drop))
}

/// An error out of a reporting method is unraisable (reporting one error must
/// not lose it to another), unless it is an exit.
fn unraisable_unless_exit(event_loop: &Bound<'_, PyAny>, reported: PyResult<()>) -> PyResult<()> {
    if let Err(report_err) = reported {
        match classify(event_loop.py(), report_err) {
            Failure::Exit(exit) => return Err(exit),
            Failure::Report(e) => e.write_unraisable(event_loop.py(), Some(event_loop)),
        }
    }
    Ok(())
}

/// Tornado awaits a coroutine or future returned by a callback, to log its error.
/// Inlined: nearly every callback returns `None`.
#[inline]
pub(crate) fn after_tornado_call(
    event_loop: &Bound<'_, PyAny>,
    hooks: &Hooks,
    result: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if result.is_none() {
        return Ok(());
    }
    await_returned(event_loop, hooks, result)
}

fn await_returned(
    event_loop: &Bound<'_, PyAny>,
    hooks: &Hooks,
    result: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let returned = hooks.callback_returned.bind(event_loop.py());
    match returned.call1((event_loop, result)) {
        Ok(_) => Ok(()),
        Err(err) => fail_tornado(event_loop, hooks, err, result),
    }
}
