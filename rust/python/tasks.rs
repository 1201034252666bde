//! asyncio's `create_future` and `create_task` without a Python frame: a server
//! makes a Task and a Future or two per request (uvicorn, aiohttp), and a Python
//! method in between was the loop's largest share of them after the engine's own.
//! Anything but the plain case (a task factory, keywords other than `name` and
//! `context`, `context=` before 3.11) goes to the face's `_create_task_slow`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

use super::core::LoopCore;

/// `asyncio.futures` and `asyncio.tasks`, imported once. Their `Future` and `Task`
/// are looked up at each call, as asyncio's own loop does: a program that replaces
/// them gets its own classes here too.
static FUTURES: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static TASKS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// `module.name`, the module imported on first use.
fn class_of<'py>(
    py: Python<'py>,
    module: &'static PyOnceLock<Py<PyModule>>,
    path: &str,
    name: &Bound<'py, pyo3::types::PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    let module = module.get_or_try_init(py, || py.import(path).map(Bound::unbind))?;
    module.bind(py).getattr(name)
}

#[pymethods]
impl LoopCore {
    /// Creates an asyncio ``Future`` attached to this loop.
    fn create_future<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "loop"), slf)?;
        class_of(py, &FUTURES, "asyncio.futures", intern!(py, "Future"))?.call((), Some(&kwargs))
    }

    /// Schedules a coroutine as an asyncio ``Task`` on this loop (made by the task
    /// factory, if one is set). Other keyword arguments (``eager_start``...) go to
    /// the ``Task`` or the factory, from Python 3.13 as asyncio's do; from 3.14 the
    /// factory gets ``name`` and ``context`` too.
    #[pyo3(signature = (coro, *, name = None, context = None, **kwargs))]
    fn create_task<'py>(
        slf: &Bound<'py, Self>,
        coro: &Bound<'py, PyAny>,
        name: Option<&Bound<'py, PyAny>>,
        context: Option<&Bound<'py, PyAny>>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        if slf.get().shared.is_closed() {
            return Err(PyRuntimeError::new_err("Event loop is closed"));
        }
        let name = name.filter(|n| !n.is_none());
        let context = context.filter(|c| !c.is_none());
        let plain = kwargs.map_or(true, |k| k.is_empty())
            && (context.is_none() || py.version_info() >= (3, 11))
            && slf.getattr(intern!(py, "_task_factory"))?.is_none();
        let all = kwargs.map_or_else(|| Ok(PyDict::new(py)), |k| k.copy())?;
        if let Some(name) = name {
            all.set_item(intern!(py, "name"), name)?;
        }
        if let Some(context) = context {
            all.set_item(intern!(py, "context"), context)?;
        }
        if !plain {
            return slf.call_method(intern!(py, "_create_task_slow"), (coro,), Some(&all));
        }
        all.set_item(intern!(py, "loop"), slf)?;
        class_of(py, &TASKS, "asyncio.tasks", intern!(py, "Task"))?.call((coro,), Some(&all))
    }
}
