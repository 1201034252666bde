"""The Tornado face: ``IOLoop`` and ``PeriodicCallback`` on mioloop's engine."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import inspect
import logging
import math
import os
import random
import threading
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from . import _mioloop
from ._mioloop import LoopCore, TimerHandle
from .eventloop import EventLoop, _is_future

_T = TypeVar("_T")

__all__ = ["IOLoop", "PeriodicCallback"]

_app_log = logging.getLogger("tornado.application")


class _Current(threading.local):
    loop: IOLoop | None = None


_current = _Current()


class IOLoop(EventLoop):
    """An I/O event loop with Tornado's ``IOLoop`` API, whose engine is Rust (mio).

    A simple TCP echo server::

        import socket
        from mioloop import IOLoop

        def on_client(conn, events):
            data = conn.recv(4096)
            if data:
                conn.send(data)
            else:
                IOLoop.current().remove_handler(conn)
                conn.close()

        def on_accept(sock, events):
            conn, _ = sock.accept()
            conn.setblocking(False)
            IOLoop.current().add_handler(conn, on_client, IOLoop.READ)

        sock = socket.create_server(("127.0.0.1", 8888))
        sock.setblocking(False)
        io_loop = IOLoop.current()
        io_loop.add_handler(sock, on_accept, IOLoop.READ)
        io_loop.start()

    The loop is also an asyncio event loop: while it runs, ``asyncio.get_running_loop()``
    returns it, so coroutines, ``asyncio.sleep`` and ``run_in_executor`` work inside
    ``run_sync`` and callbacks.

    Only ``add_callback`` (and ``add_callback_from_signal``, ``spawn_callback``) may be
    called from another thread; every other method belongs to the loop's thread.

    Tornado itself is not needed. The one difference from Tornado is that this class
    is not ``tornado.ioloop.IOLoop``: ``IOLoop.configure`` does not exist, and
    Tornado's own classes (``IOStream``, ``HTTPServer``) use Tornado's IOLoop.
    """

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        """Tornado's IOLoop may be dropped without ``close()``: no warning (the
        asyncio face warns, as asyncio does)."""

    #: Event mask values, as in Tornado (``IOLoop.READ`` etc.).
    NONE = 0
    READ = _mioloop.READ
    WRITE = _mioloop.WRITE
    ERROR = _mioloop.ERROR

    _logger = _app_log

    def __init__(self, make_current: bool = True) -> None:
        super().__init__()
        if make_current:
            self.make_current()

    # The current loop

    @staticmethod
    def current(instance: bool = True) -> IOLoop | None:
        """Returns the current thread's IOLoop.

        That is the running loop if an ``IOLoop`` is running, else the one made
        current with ``make_current``. With ``instance=True`` (the default) a new
        IOLoop is created and made current if there is none.
        """
        running = asyncio.events._get_running_loop()
        if isinstance(running, IOLoop):
            return running
        if _current.loop is None and instance:
            IOLoop(make_current=True)
        return _current.loop

    @staticmethod
    def instance() -> IOLoop:
        """Deprecated alias for ``IOLoop.current()``."""
        loop = IOLoop.current()
        assert loop is not None
        return loop

    def make_current(self) -> None:
        """Makes this the IOLoop of the current thread."""
        _current.loop = self

    @staticmethod
    def clear_current() -> None:
        """Clears the current thread's IOLoop."""
        _current.loop = None

    @property
    def asyncio_loop(self) -> IOLoop:
        """The asyncio event loop behind this IOLoop: the IOLoop itself."""
        return self

    # Lifecycle

    def start(self) -> None:
        """Starts the I/O loop; it runs until ``stop()`` is called from a callback.

        Raises ``RuntimeError`` if the loop (or another asyncio loop in this thread)
        is already running. ``KeyboardInterrupt`` and ``SystemExit`` raised by a
        callback or a signal handler leave ``start()``; the loop stays usable and
        the callbacks still queued run on the next ``start()``.
        """
        previous = _current.loop
        _current.loop = self
        try:
            self.run_forever()
        finally:
            _current.loop = previous

    def close(self, all_fds: bool = False) -> None:  # type: ignore[override]
        """Closes the IOLoop, freeing every callback, timer and handler.

        With ``all_fds=True`` the file descriptors (or objects) registered with
        ``add_handler`` are closed too. The loop cannot run again.
        """
        fileobjs = self._release()
        if _current.loop is self:
            _current.loop = None
        if all_fds:
            for fileobj in fileobjs:
                self.close_fd(fileobj)

    # Callbacks and timeouts

    add_callback_from_signal = LoopCore.add_callback
    spawn_callback = LoopCore.add_callback

    call_later = LoopCore._tornado_call_later  # type: ignore[assignment]
    call_at = LoopCore._tornado_call_at  # type: ignore[assignment]

    def add_future(
        self,
        future: asyncio.Future[_T] | concurrent.futures.Future[_T],
        callback: Callable[[Any], object],
    ) -> None:
        """Calls ``callback(future)`` on the loop when ``future`` is done.

        ``future`` is an asyncio or a ``concurrent.futures`` future.
        """
        if not _is_future(future):
            raise TypeError(f"add_future() expects a future, got {type(future).__name__}")
        future.add_done_callback(lambda f: self.add_callback(callback, f))

    def run_sync(self, func: Callable[[], Any], timeout: float | None = None) -> Any:
        """Starts the loop, runs ``func`` and stops the loop when it is done.

        ``func`` returns ``None``, an awaitable (``async def`` functions included) or
        a future; its result is returned, or its exception raised (as in Tornado,
        any other return value raises ``TypeError``). With a
        ``timeout`` (seconds) and the work still pending then, it is cancelled and
        ``asyncio.TimeoutError`` is raised.
        """
        if self.is_running():
            # Refused before anything is queued: the function never runs (asyncio's
            # rule for a nested run_until_complete; Tornado runs it later and its
            # end then stops the outer loop).
            raise RuntimeError("This event loop is already running")
        result_future: list[asyncio.Future[Any]] = []

        def run() -> None:
            try:
                result = func()
                if result is not None and not _is_future(result) and inspect.isawaitable(result):
                    result = asyncio.ensure_future(result, loop=self)
                elif isinstance(result, concurrent.futures.Future):
                    result = asyncio.wrap_future(result, loop=self)
            except Exception as exc:
                fut = self.create_future()
                fut.set_exception(exc)
            else:
                if asyncio.isfuture(result):
                    fut = result
                elif result is None:
                    fut = self.create_future()
                    fut.set_result(None)
                else:
                    fut = self.create_future()
                    fut.set_exception(
                        TypeError(
                            f"run_sync() expects a function returning an awaitable or None, got {type(result).__name__}"
                        )
                    )
            result_future.append(fut)
            fut.add_done_callback(lambda _: self.stop())

        timed_out = []

        def on_timeout() -> None:
            timed_out.append(True)
            # Cancel the work and let its cancellation finish (its done callback
            # stops the loop); if it cannot be cancelled, stop now and leave it.
            if not result_future or not result_future[0].cancel():
                self.stop()

        self.add_callback(run)
        handle = self.add_timeout(self.time() + timeout, on_timeout) if timeout is not None else None
        try:
            self.start()
        finally:
            if handle is not None:
                self.remove_timeout(handle)
        if not result_future or not result_future[0].done() or (timed_out and result_future[0].cancelled()):
            if timed_out:
                # asyncio's, as Tornado raises (the builtin TimeoutError from 3.11 on).
                raise asyncio.TimeoutError(f"Operation timed out after {timeout} seconds")
            raise RuntimeError("Event loop stopped before Future completed.")
        return result_future[0].result()

    def _tornado_callback_failed(self, description: str, callback: object, exception: BaseException) -> None:
        # Every error of this face goes to its exception handler (by default
        # ``handle_callback_exception``'s log), callbacks' included.
        self.call_exception_handler(
            {"message": f"Exception in callback {description}", "exception": exception, "callback": callback}
        )

    # File descriptors

    @staticmethod
    def split_fd(fd: Any) -> tuple[int, Any]:
        """Returns ``(fd, obj)`` for an int or an object with ``fileno()``."""
        try:
            return fd.fileno(), fd
        except AttributeError:
            return fd, fd

    @staticmethod
    def close_fd(fd: Any) -> None:
        """Closes an int fd or an object with ``close()``, ignoring ``OSError``."""
        try:
            if isinstance(fd, int):
                os.close(fd)
            else:
                fd.close()
        except OSError:
            pass


class PeriodicCallback:
    """Schedules ``callback`` to be called every ``callback_time`` milliseconds.

    ``callback_time`` may be a ``datetime.timedelta``. With ``jitter`` (e.g. 0.1 for
    10%) each interval is varied at random by that fraction. If the callback takes
    longer than ``callback_time``, invocations are skipped to get back on schedule;
    if it returns an awaitable, the next call waits for it. ``start`` must be called
    after the ``PeriodicCallback`` is created, on the loop's thread.
    """

    def __init__(
        self,
        callback: Callable[[], Awaitable[None] | None],
        callback_time: datetime.timedelta | float,
        jitter: float = 0,
    ) -> None:
        if not callable(callback):
            raise TypeError("PeriodicCallback expects a callable")
        if isinstance(callback_time, datetime.timedelta):
            callback_time = callback_time / datetime.timedelta(milliseconds=1)
        if not callback_time > 0:  # also refuses NaN
            raise ValueError("Periodic callback must have a positive callback_time")
        if not 0 <= jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        self.callback = callback
        self.callback_time = float(callback_time)
        self.jitter = jitter
        self._running = False
        self._timeout: TimerHandle | None = None
        self._next_timeout = 0.0
        self.io_loop: IOLoop | None = None

    def start(self) -> None:
        """Starts the timer on the current IOLoop."""
        io_loop = IOLoop.current()
        assert io_loop is not None
        self.io_loop = io_loop
        self._running = True
        self._next_timeout = io_loop.time()
        self._schedule_next()

    def stop(self) -> None:
        """Stops the timer."""
        self._running = False
        if self._timeout is not None and self.io_loop is not None:
            self.io_loop.remove_timeout(self._timeout)
            self._timeout = None

    def is_running(self) -> bool:
        """Whether this ``PeriodicCallback`` has been started and not stopped."""
        return self._running

    def _run(self) -> None:
        if not self._running:
            return
        awaiting = False
        try:
            result = self.callback()
            if result is not None and inspect.isawaitable(result):
                assert self.io_loop is not None
                future = asyncio.ensure_future(result, loop=self.io_loop)
                future.add_done_callback(self._awaited)
                awaiting = True
        except Exception:
            _app_log.error("Exception in callback %r", self.callback, exc_info=True)
        finally:
            # Even a KeyboardInterrupt leaving start() keeps the schedule, as Tornado's.
            if not awaiting:
                self._schedule_next()

    def _awaited(self, future: asyncio.Future[Any]) -> None:
        exc = None if future.cancelled() else future.exception()
        if exc is not None:
            _app_log.error("Exception in callback %r", self.callback, exc_info=exc)
        self._schedule_next()

    def _schedule_next(self) -> None:
        if not self._running:
            return
        assert self.io_loop is not None
        self._update_next(self.io_loop.time())
        self._timeout = self.io_loop.add_timeout(self._next_timeout, self._run)

    def _update_next(self, now: float) -> None:
        interval = self.callback_time / 1000.0
        if self.jitter:
            interval *= 1 + self.jitter * (random.random() - 0.5)
        if self._next_timeout <= now:
            # Skip the calls we are too late for, to stay on the original schedule.
            self._next_timeout += (math.floor((now - self._next_timeout) / interval) + 1) * interval
        else:
            self._next_timeout += interval
