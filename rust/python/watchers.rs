//! asyncio's fd watchers: `add_reader`, `add_writer`, `remove_reader`,
//! `remove_writer`, level-triggered, on the same fd table as Tornado's handlers.

use std::os::fd::RawFd;
use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyTuple};

use super::args;
use super::callback::PyCallback;
use super::core::LoopCore;
use super::errors;
use super::fd_owner::{FdOwner, Watchers};
use super::release::{locked, Release};
use super::shared::PyReactor;
use crate::{FdError, IoEvents, Trigger};

#[derive(Clone, Copy)]
enum Side {
    Reader,
    Writer,
}

fn slot(watchers: &mut Watchers, side: Side) -> &mut Option<Arc<PyCallback>> {
    match side {
        Side::Reader => &mut watchers.reader,
        Side::Writer => &mut watchers.writer,
    }
}

/// Whether an update failed because the fd was closed (and maybe its number
/// reused) since it was registered: the fd table reports it as not registered.
fn stale(err: &FdError) -> bool {
    matches!(err, FdError::NotRegistered(_))
}

/// Sets the watcher on `side` of `fd`; what it replaces or removes goes to
/// `release`, dropped once the lock is released, on every path.
fn set_watcher(
    reactor: &mut PyReactor,
    release: &mut Release,
    fd: RawFd,
    side: Side,
    callback: Arc<PyCallback>,
    fileobj: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    if let Some(entry) = reactor.fds.get_mut(fd) {
        let interest = match &mut entry.handler {
            FdOwner::Watchers(w) => {
                release.later(slot(w, side).replace(callback.clone()));
                if w.fileobj.is_none() {
                    w.fileobj = fileobj.map(|o| o.clone().unbind());
                }
                w.interest()
            }
            FdOwner::Handler(_) => {
                return Err(PyValueError::new_err(format!(
                    "fd {fd} is registered with add_handler"
                )))
            }
            FdOwner::Transport(_) => {
                // No repr() here: it would take the transport's lock under the
                // reactor's, the reverse of the transport's own order.
                return Err(PyRuntimeError::new_err(format!(
                    "File descriptor {fd} is used by a transport"
                )));
            }
        };
        match reactor.update_fd(fd, interest) {
            Ok(()) => return Ok(()),
            // The entry belonged to a closed fd: start afresh.
            Err(e) if stale(&e) => release.later(reactor.remove_fd(fd)),
            Err(e) => return Err(errors::fd_error(e)),
        }
    }
    let mut watchers = Watchers {
        fileobj: fileobj.map(|o| o.clone().unbind()),
        ..Watchers::default()
    };
    *slot(&mut watchers, side) = Some(callback);
    let interest = watchers.interest();
    let added = reactor.add_fd(fd, interest, Trigger::Level, FdOwner::Watchers(watchers));
    release.later(added.map_err(errors::fd_error)?);
    Ok(())
}

/// Takes the watcher on `side` of the fd `number` (or, for a closed file
/// object, of the entry it was watched through); whether there was one.
fn take_watcher(
    reactor: &mut PyReactor,
    release: &mut Release,
    fd: &Bound<'_, PyAny>,
    number: PyResult<RawFd>,
    side: Side,
) -> PyResult<bool> {
    let raw = match number {
        Ok(raw) => raw,
        // A closed socket: the entry it was watched through, as asyncio's
        // selector finds it; its ValueError if there is none.
        Err(invalid) => {
            let watched_through = |owner: &FdOwner| matches!(owner, FdOwner::Watchers(Watchers { fileobj: Some(o), .. }) if o.is(fd));
            reactor.fds.find(watched_through).ok_or(invalid)?
        }
    };
    let Some(FdOwner::Watchers(watchers)) = reactor.fds.get_mut(raw).map(|e| &mut e.handler) else {
        return Ok(false);
    };
    let Some(removed) = slot(watchers, side).take() else {
        return Ok(false);
    };
    release.later(removed);
    let interest = watchers.interest();
    // Closed since it was watched: nothing of it is left in the poll.
    if interest == IoEvents::NONE || reactor.update_fd(raw, interest).is_err() {
        release.later(reactor.remove_fd(raw));
    }
    Ok(true)
}

impl LoopCore {
    fn add_watcher(
        &self,
        fd: &Bound<'_, PyAny>,
        side: Side,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        method: &str,
    ) -> PyResult<()> {
        self.check_process()?;
        let raw = args::fileno(fd)?;
        let callback = Arc::new(PyCallback::asyncio(callback, args, None, method)?);
        let fileobj = (!fd.is_instance_of::<PyInt>()).then_some(fd);
        locked(self.shared.reactor(), |reactor, release| {
            set_watcher(reactor, release, raw, side, callback, fileobj)
        })
    }

    fn remove_watcher(&self, fd: &Bound<'_, PyAny>, side: Side) -> PyResult<bool> {
        if self.shared.is_closed() {
            return Ok(false);
        }
        self.check_process()?;
        // Python runs here (fileno()), before the lock is taken.
        let number = match args::fileno(fd) {
            Ok(raw) => Ok(raw),
            Err(e) if args::is_closed_fileobj(fd) => Err(e),
            Err(e) => return Err(e),
        };
        locked(self.shared.reactor(), |reactor, release| {
            take_watcher(reactor, release, fd, number, side)
        })
    }
}

#[pymethods]
impl LoopCore {
    /// asyncio: calls `callback(*args)` whenever `fd` is readable (replacing any
    /// previous reader of `fd`), in the context current now.
    #[pyo3(signature = (fd, callback, *args))]
    fn add_reader(
        &self,
        fd: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        self.add_watcher(fd, Side::Reader, callback, args, "add_reader")
    }

    /// asyncio: calls `callback(*args)` whenever `fd` is writable (replacing any
    /// previous writer of `fd`), in the context current now.
    #[pyo3(signature = (fd, callback, *args))]
    fn add_writer(
        &self,
        fd: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<()> {
        self.add_watcher(fd, Side::Writer, callback, args, "add_writer")
    }

    /// asyncio: stops watching `fd` for reading; returns whether it was watched.
    fn remove_reader(&self, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.remove_watcher(fd, Side::Reader)
    }

    /// asyncio: stops watching `fd` for writing; returns whether it was watched.
    fn remove_writer(&self, fd: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.remove_watcher(fd, Side::Writer)
    }
}
