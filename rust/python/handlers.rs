//! Tornado's fd handlers: `add_handler`, `update_handler`, `remove_handler`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::args::split_fd;
use super::callback::check_callable;
use super::context;
use super::core::LoopCore;
use super::errors;
use super::fd_owner::{FdOwner, TornadoHandler};
use super::release::locked;
use crate::{IoEvents, Trigger};

#[pymethods]
impl LoopCore {
    /// Registers `handler` to receive events for `fd`.
    ///
    /// `fd` is an int or an object with a `fileno()` method; the handler is called
    /// as `handler(fd, events)` with the same object, in the context current now.
    /// `events` is a combination of `READ`, `WRITE` and `ERROR`; errors are always
    /// reported.
    fn add_handler(
        &self,
        fd: &Bound<'_, PyAny>,
        handler: &Bound<'_, PyAny>,
        events: u32,
    ) -> PyResult<()> {
        self.check_process()?;
        check_callable(handler, "add_handler")?;
        let (raw, fileobj) = split_fd(fd)?;
        let owner = FdOwner::Handler(TornadoHandler {
            func: handler.clone().unbind(),
            fileobj: fileobj.unbind(),
            context: context::capture(fd.py())?,
        });
        // The owner of a closed fd whose number was reused: let go of after the lock.
        locked(self.shared.reactor(), |reactor, release| {
            let events = IoEvents::from_bits_truncate(events);
            let replaced = reactor.add_fd(raw, events, Trigger::Level, owner);
            release.later(replaced.map_err(errors::fd_error)?);
            Ok(())
        })
    }

    /// Changes the events we listen for on `fd`.
    fn update_handler(&self, fd: &Bound<'_, PyAny>, events: u32) -> PyResult<()> {
        self.check_process()?;
        let (raw, _) = split_fd(fd)?;
        let mut reactor = self.lock();
        if !matches!(
            reactor.fds.get(raw),
            None | Some(crate::FdEntry {
                handler: FdOwner::Handler(_),
                ..
            })
        ) {
            return Err(PyValueError::new_err(format!(
                "fd {raw} is not registered with add_handler"
            )));
        }
        reactor
            .update_fd(raw, IoEvents::from_bits_truncate(events))
            .map_err(errors::fd_error)
    }

    /// Stops listening for events on `fd`. Unknown fds are ignored, and so is any
    /// fd once the loop is closed (an object closed by `close(all_fds=True)` may
    /// remove its own handler).
    fn remove_handler(&self, fd: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.shared.is_closed() {
            return Ok(());
        }
        self.check_process()?;
        let raw = match split_fd(fd) {
            Ok((raw, _)) if raw >= 0 => Some(raw),
            // A closed file object (fileno() raises or returns -1): find it by identity.
            _ => None,
        };
        locked(self.shared.reactor(), |reactor, release| {
            let raw = raw.or_else(|| {
                reactor
                    .fds
                    .find(|owner| owner.fileobj().is_some_and(|f| f.is(fd)))
            });
            let is_handler = |r: &crate::FdEntry<FdOwner>| matches!(r.handler, FdOwner::Handler(_));
            if let Some(raw) = raw.filter(|&raw| reactor.fds.get(raw).is_some_and(is_handler)) {
                release.later(reactor.remove_fd(raw));
            }
        });
        Ok(())
    }
}
