"""Tornado's own ``IOLoop`` on mioloop's engine: :class:`TornadoIOLoop`.

Every mioloop loop gets one when Tornado asks for its ``IOLoop``
(``mioloop._tornado_attach``); :func:`install`, for the legacy ``mioloop.install()``,
also makes it the class ``IOLoop()`` creates.

Imported only when Tornado is used: ``import mioloop`` does not import Tornado.
"""

from __future__ import annotations

import asyncio
import datetime
import numbers
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from tornado.ioloop import IOLoop
from tornado.platform.asyncio import BaseAsyncIOLoop

from ._tornado_attach import attach
from .eventloop import EventLoop

__all__ = ["TornadoIOLoop", "install"]


class TornadoIOLoop(BaseAsyncIOLoop):
    """A ``tornado.ioloop.IOLoop`` whose asyncio loop is a :class:`mioloop.EventLoop`.

    Tornado's classes (``IOStream``, ``TCPServer``, ``HTTPServer``,
    ``AsyncHTTPClient``, ``tornado.testing``) run on it unchanged, and its hot
    methods are the engine's own: ``add_handler``, ``update_handler``,
    ``remove_handler``, ``add_callback``, ``spawn_callback``, ``call_later`` and
    ``remove_timeout`` are the native methods of the asyncio loop, with no Tornado
    glue in between (no ``add_reader`` per handler, no ``functools.partial`` per
    callback, no asyncio ``TimerHandle`` per timeout).

    Every mioloop loop has one: ``IOLoop.current()`` on a running
    :class:`mioloop.EventLoop` is a ``TornadoIOLoop``, however the loop was made, so
    both styles of Tornado application run on the engine with no asyncio policy::

        mioloop.run(main())              # IOLoop.current() is a TornadoIOLoop

        io_loop = mioloop.TornadoIOLoop()  # the classic style: current from now on
        app.listen(8888)
        io_loop.start()

    ``IOLoop.configure("mioloop.TornadoIOLoop")`` makes ``IOLoop()`` create one
    (with a new :class:`mioloop.EventLoop`), as ``tornado.testing`` does.

    As in Tornado, ``time()`` is ``time.time()`` and ``add_timeout``/``call_at``
    take deadlines on that clock; callbacks' errors are logged on
    ``tornado.application``, fd handlers' errors go to the asyncio loop's exception
    handler.
    """

    asyncio_loop: EventLoop

    def initialize(self, asyncio_loop: EventLoop | None = None, **kwargs: Any) -> None:  # type: ignore[override]
        """Wraps ``asyncio_loop`` (which it then closes with itself), or a new
        :class:`mioloop.EventLoop` if none is given."""
        self.is_current = False
        self._previous_asyncio: Any = None
        self._owns_loop = asyncio_loop is None
        if asyncio_loop is None:
            asyncio_loop = EventLoop()
        elif not isinstance(asyncio_loop, EventLoop):
            raise TypeError(f"TornadoIOLoop runs on a mioloop.EventLoop, got {type(asyncio_loop).__name__}")
        try:
            super().initialize(asyncio_loop, **kwargs)
        except Exception:
            if self._owns_loop:
                asyncio_loop.close()
            raise
        # The engine's methods, bound once: a call from Tornado runs no Python of ours.
        self.add_handler = asyncio_loop.add_handler  # type: ignore[method-assign]
        self.update_handler = asyncio_loop.update_handler  # type: ignore[method-assign]
        self.remove_handler = asyncio_loop.remove_handler  # type: ignore[method-assign]
        self.add_callback = asyncio_loop.add_callback  # type: ignore[method-assign]
        self.spawn_callback = asyncio_loop.add_callback  # type: ignore[method-assign]
        self.call_later = asyncio_loop._tornado_call_later  # type: ignore[method-assign]
        self.remove_timeout = asyncio_loop.remove_timeout  # type: ignore[method-assign,assignment]
        self.time = time.time  # type: ignore[method-assign]

    def close(self, all_fds: bool = False) -> None:
        """Closes the IOLoop and its asyncio loop; with ``all_fds=True`` also every
        fd (or object) still registered with ``add_handler``."""
        self.closing = True
        if self.is_current:
            self._clear_current()
        # Unmapped first, as Tornado does: a new IOLoop for the same asyncio loop
        # must not find this one half closed.
        IOLoop._ioloop_for_asyncio.pop(self.asyncio_loop, None)
        fileobjs = self.asyncio_loop._release()
        if all_fds:
            for fileobj in fileobjs:
                self.close_fd(fileobj)

    def call_at(self, when: float, callback: Callable[..., object], *args: Any, **kwargs: Any) -> object:
        """Runs ``callback(*args, **kwargs)`` at ``when`` (on ``time.time()``'s clock);
        returns a handle for ``remove_timeout``."""
        return self.call_later(when - time.time(), callback, *args, **kwargs)

    def add_timeout(
        self, deadline: float | datetime.timedelta, callback: Callable[..., object], *args: Any, **kwargs: Any
    ) -> object:
        """Runs ``callback(*args, **kwargs)`` at ``deadline``: a number on
        ``time.time()``'s clock, or a ``datetime.timedelta`` from now."""
        if isinstance(deadline, numbers.Real):
            return self.call_later(float(deadline) - time.time(), callback, *args, **kwargs)
        if isinstance(deadline, datetime.timedelta):
            return self.call_later(deadline.total_seconds(), callback, *args, **kwargs)
        raise TypeError(f"Unsupported deadline {deadline!r}")

    def add_callback_from_signal(self, callback: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Deprecated in Tornado (``add_callback`` is safe from a signal handler)."""
        warnings.warn("add_callback_from_signal is deprecated", DeprecationWarning, stacklevel=2)
        self.add_callback(callback, *args, **kwargs)

    def _make_current(self) -> None:
        # A loop of its own becomes asyncio's current loop too; a wrapped one
        # already is (or belongs to whoever made it).
        if not self._owns_loop or self.is_current:
            return
        self._previous_asyncio = _loop_set_for_this_thread()
        self.is_current = True
        asyncio.set_event_loop(self.asyncio_loop)

    def _clear_current_hook(self) -> None:
        if self.is_current:
            asyncio.set_event_loop(self._previous_asyncio)
            self.is_current = False


def _loop_set_for_this_thread() -> asyncio.AbstractEventLoop | None:
    """The loop ``asyncio.set_event_loop`` set in this thread, if any, without
    making one, and without touching asyncio's policies where they are deprecated."""
    if sys.version_info >= (3, 14):
        # get_event_loop() no longer makes a loop: it returns the running loop, else
        # the one set, else raises.
        try:
            return asyncio.get_event_loop()
        except RuntimeError:
            return None
    # Before 3.14 get_event_loop() may make a loop (and warn): read the policy's.
    local = getattr(asyncio.get_event_loop_policy(), "_local", None)
    return getattr(local, "_loop", None)


def install() -> None:
    """Makes :class:`TornadoIOLoop` Tornado's ``IOLoop``: the one ``IOLoop()`` creates
    and the one ``IOLoop.current()`` finds on a mioloop loop."""
    attach()
    IOLoop.configure(TornadoIOLoop)
