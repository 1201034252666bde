"""The asyncio face of the engine: enough of ``asyncio.AbstractEventLoop`` for
asyncio's own ``Future`` and ``Task`` to run on it.

The iteration, the ready queue, timers and fd dispatch are the Rust ``Loop``;
this class adds what asyncio needs around them: futures, tasks, the running-loop
marker, exception handling and executors.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import inspect
import logging
import os
import socket
import sys
import threading
import warnings
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

from . import _handles
from ._datagram import DatagramMethods
from ._mioloop import LoopCore
from ._network import NetworkMethods
from ._pipes import PipeMethods
from ._sendfile import SendfileMethods
from ._signals import SignalMethods
from ._sockets import SocketMethods
from ._subprocess import SubprocessMethods, warn_running_children
from ._tls import TlsMethods
from ._tornado_attach import attach as _attach_tornado

_T = TypeVar("_T")

__all__ = ["EventLoop", "new_event_loop"]

_app_log = logging.getLogger("tornado.application")


# LoopCore comes first: every native method checks that it was called on a
# LoopCore, and that check walks the class's bases in order.
class EventLoop(  # type: ignore[misc]
    LoopCore,
    SocketMethods,
    NetworkMethods,
    TlsMethods,
    DatagramMethods,
    PipeMethods,
    SubprocessMethods,
    SendfileMethods,
    SignalMethods,
    asyncio.AbstractEventLoop,
):
    """An asyncio event loop on mioloop's engine.

    ::

        loop = mioloop.new_event_loop()
        try:
            print(loop.run_until_complete(asyncio.sleep(0.1, "done")))
        finally:
            loop.close()

    The scheduling methods (``call_soon``, ``call_soon_threadsafe``, ``call_later``,
    ``call_at``, ``time``) and the fd watchers (``add_reader``, ``add_writer``,
    ``remove_reader``, ``remove_writer``) are native. Callbacks run in the
    ``contextvars`` context current when they were scheduled, or in ``context=``.
    Only ``call_soon_threadsafe`` is safe to call from another thread.
    """

    #: Where ``default_exception_handler`` logs.
    _logger = logging.getLogger("asyncio")

    #: In debug mode, a callback that runs this many seconds or more is logged.
    slow_callback_duration = 0.1

    def __init__(self) -> None:
        self._exception_handler: Callable[..., object] | None = None
        self._default_executor: concurrent.futures.Executor | None = None
        self._sock_waiting = {}
        self._signal_handlers = {}
        self._children = {}
        self._task_factory: Callable[..., Any] | None = None
        #: Asynchronous generators first iterated on this loop and not finished.
        self._asyncgens: weakref.WeakSet[AsyncGenerator[Any, Any]] = weakref.WeakSet()
        self._asyncgens_shut_down = False
        # As asyncio's loops: in debug mode from the start under -X dev or with
        # PYTHONASYNCIODEBUG set.
        self.set_debug(_debug_by_default())
        # Tornado code on this loop gets mioloop.TornadoIOLoop, whenever it imports Tornado.
        _attach_tornado()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} running={self.is_running()} closed={self.is_closed()} debug={self.get_debug()}>"

    # Running and stopping

    def run_forever(self) -> None:
        """Runs the loop until ``stop()`` is called."""
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        self._check_not_running()
        hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter, finalizer=self._asyncgen_finalizer)
        origin_depth = sys.get_coroutine_origin_tracking_depth()
        if self.get_debug():
            # Where each coroutine was created, for "never awaited" warnings.
            sys.set_coroutine_origin_tracking_depth(asyncio.constants.DEBUG_STACK_DEPTH)
        asyncio.events._set_running_loop(self)
        try:
            # A stop() made before runs one iteration first, as in asyncio.
            self._run(iterate_first=True)
        finally:
            asyncio.events._set_running_loop(None)
            sys.set_coroutine_origin_tracking_depth(origin_depth)
            sys.set_asyncgen_hooks(*hooks)

    def run_until_complete(self, future: Generator[Any, None, _T] | Awaitable[_T]) -> _T:
        """Runs until ``future`` (a future, task or coroutine) is done; returns its
        result or raises its exception."""
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        # Refuse before wrapping a coroutine in a task: a refused call runs nothing.
        self._check_not_running()
        new_task = not asyncio.isfuture(future)
        fut = asyncio.ensure_future(future, loop=self)  # type: ignore[arg-type]
        fut.add_done_callback(self._stop_on_done)
        try:
            self.run_forever()
        except BaseException:
            if new_task and fut.done() and not fut.cancelled():
                # The exception is raised instead; do not log it as never retrieved.
                fut.exception()
            raise
        finally:
            fut.remove_done_callback(self._stop_on_done)
        if not fut.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return fut.result()

    def _slow_callback(self, func: Any, args: tuple[Any, ...] | None, handle: Any, seconds: float) -> None:
        """Called by the engine in debug mode for a callback (with its arguments
        and handle), handler or transport that ran ``slow_callback_duration``
        seconds or more; names it as asyncio does (a Task step by its Task)."""
        if callable(func):
            culprit = _handles.culprit(func, args, handle, self.get_debug())
        else:  # a transport
            culprit = repr(func)
        self._logger.warning("Executing %s took %.3f seconds", culprit, seconds)

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        # As asyncio's: a loop dropped open warns, and is closed unless running.
        if not self.is_closed():
            message = f"unclosed event loop {self!r}"
            # Closed first: with warnings as errors the warning raises.
            if not self.is_running():
                self.close()
            _warn(message, ResourceWarning, source=self)

    def _check_not_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if asyncio.events._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def _stop_on_done(self, fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and isinstance(fut.exception(), (SystemExit, KeyboardInterrupt)):
            # It left run_forever() already; a stop now would end the next run.
            return
        self.stop()

    def close(self) -> None:
        """Closes the loop: drops every pending callback, timer and handler, and
        shuts the default executor down without waiting. Refused while running."""
        self._release()

    def _release(self) -> list[Any]:
        """Closes the engine and the executor; returns the objects that had fd
        handlers."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        running: list[int] = []
        if not self.is_closed():
            self._remove_signal_handlers()
            running = self._forget_children()
        fileobjs = self._close()
        executor, self._default_executor = self._default_executor, None
        if executor is not None:
            executor.shutdown(wait=False)
        # Last: with warnings turned into errors, this raises from a closed loop.
        warn_running_children(running)
        return fileobjs

    # Asynchronous generators

    def _asyncgen_firstiter(self, agen: AsyncGenerator[Any, Any]) -> None:
        if self._asyncgens_shut_down:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after loop.shutdown_asyncgens() call",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
        self._asyncgens.add(agen)

    def _asyncgen_finalizer(self, agen: AsyncGenerator[Any, Any]) -> None:
        # Called by the garbage collector, maybe from another thread.
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    async def shutdown_asyncgens(self) -> None:
        """Closes every asynchronous generator this loop iterated that has not
        finished (their ``finally`` blocks run); later ones are warned about."""
        self._asyncgens_shut_down = True
        agens = list(self._asyncgens)
        self._asyncgens.clear()
        if not agens:
            return
        results = await asyncio.gather(*(agen.aclose() for agen in agens), return_exceptions=True)
        for agen, result in zip(agens, results, strict=True):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": f"an error occurred during closing of asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Shuts the default executor down, waiting up to ``timeout`` seconds for its
        threads (from a thread of its own, not from the pool being shut down)."""
        executor, self._default_executor = self._default_executor, None
        if executor is None:
            return
        done = self.create_future()

        def finish() -> None:
            if not done.done():
                done.set_result(None)

        def shutdown() -> None:
            executor.shutdown(wait=True)
            with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
                self.call_soon_threadsafe(finish)

        thread = threading.Thread(target=shutdown, name="mioloop-executor-shutdown", daemon=True)
        thread.start()
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except asyncio.TimeoutError:
            pass

    # Futures and tasks

    # create_future and create_task are LoopCore's (native); what is not the plain
    # case comes here.

    def _create_task_slow(
        self,
        coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
        **kwargs: Any,
    ) -> asyncio.Task[_T]:
        """``create_task`` with a task factory, other keywords, or ``context=``
        before 3.11 (the native part checked that the loop is open)."""
        if kwargs and sys.version_info < (3, 13):
            raise TypeError(f"create_task() got an unexpected keyword argument {next(iter(kwargs))!r}")
        factory = self._task_factory
        if factory is not None and sys.version_info >= (3, 14):
            if name is not None:
                kwargs["name"] = name
            if context is not None:
                kwargs["context"] = context
            return factory(self, coro, **kwargs)  # type: ignore[no-any-return]
        if factory is not None:
            if context is not None:
                kwargs["context"] = context
            task = factory(self, coro, **kwargs)
            if name is not None:
                task.set_name(name)
            return task  # type: ignore[no-any-return]
        if context is None:
            return asyncio.tasks.Task(coro, loop=self, name=name, **kwargs)
        if sys.version_info < (3, 11):
            return context.run(asyncio.tasks.Task, coro, loop=self, name=name)
        return asyncio.tasks.Task(coro, loop=self, name=name, context=context, **kwargs)

    def set_task_factory(self, factory: Callable[..., Any] | None) -> None:
        """Makes ``create_task`` call ``factory(loop, coro)`` (``context=`` too when
        given); ``None`` restores the default."""
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Callable[..., Any] | None:
        """The task factory, or ``None``."""
        return self._task_factory

    # Name resolution, in the default executor as asyncio does

    async def getaddrinfo(
        self, host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        """Resolves ``host`` and ``port`` with ``socket.getaddrinfo`` in a thread."""
        return await self.run_in_executor(None, socket.getaddrinfo, host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        """Looks ``sockaddr`` up with ``socket.getnameinfo`` in a thread."""
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    # Executors

    def run_in_executor(  # type: ignore[override]
        self, executor: concurrent.futures.Executor | None, func: Callable[..., _T], *args: Any
    ) -> asyncio.Future[_T]:
        """Runs ``func(*args)`` in ``executor`` (default: a thread pool) and returns an
        asyncio future for its result."""
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        if executor is None:
            executor = self._default_executor
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="mioloop")
                self._default_executor = executor
        return asyncio.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor: concurrent.futures.Executor) -> None:
        """Sets the executor ``run_in_executor(None, ...)`` uses."""
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be a concurrent.futures.ThreadPoolExecutor")
        self._default_executor = executor

    # Errors

    def get_exception_handler(self) -> Callable[..., object] | None:
        return self._exception_handler

    def set_exception_handler(self, handler: Callable[..., object] | None) -> None:
        """Sets ``handler(loop, context)`` to be called for errors the loop catches."""
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Logs ``context["message"]`` with the exception's traceback."""
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info = (type(exception), exception, exception.__traceback__) if exception else None
        details = [
            f"{key}: {value!r}"
            for key, value in sorted(context.items())
            if key not in {"message", "exception", "callback"}
        ]
        if details:
            message = "\n".join([message, *details])
        self._logger.error(message, exc_info=exc_info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Reports an error the loop caught, to the handler set with
        ``set_exception_handler`` or else to ``default_exception_handler``."""
        handler = self._exception_handler
        if handler is None:
            self.default_exception_handler(context)
            return
        # The handler runs in the context of what failed (a task, a future, a
        # handle), as asyncio's does (CPython gh-96704).
        thing = context.get("task") or context.get("future") or context.get("handle")
        get_context = getattr(thing, "get_context", None)
        failed_in = get_context() if get_context is not None else None
        try:
            if failed_in is not None:
                failed_in.run(handler, self, context)
            else:
                handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.default_exception_handler(
                {"message": "Unhandled error in exception handler", "exception": exc, "context": context}
            )

    # Callbacks with Tornado's semantics (``add_callback``, ``add_timeout``...), as
    # Tornado's IOLoop schedules them on this loop

    def _callback_returned(self, result: object) -> None:
        """Awaits a future or awaitable a Tornado callback returned, so that its
        error is logged (asyncio callbacks' results are ignored: the engine does not
        call this for them)."""
        if _is_future(result) or inspect.isawaitable(result):
            future = (
                asyncio.wrap_future(result, loop=self)
                if isinstance(result, concurrent.futures.Future)
                else asyncio.ensure_future(result, loop=self)  # type: ignore[call-overload]
            )
            future.add_done_callback(self._tornado_result_done)

    def _tornado_result_done(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and (exception := future.exception()) is not None:
            self._tornado_callback_failed(repr(future), future, exception)

    def _tornado_callback_failed(self, description: str, callback: object, exception: BaseException) -> None:
        """Logs the error of a Tornado callback as Tornado does."""
        _app_log.error(
            "Exception in callback %s", description, exc_info=(type(exception), exception, exception.__traceback__)
        )


def _debug_by_default() -> bool:
    """asyncio's rule for a new loop's debug mode: Python's development mode, or the
    PYTHONASYNCIODEBUG environment variable (unless -E ignores the environment)."""
    return sys.flags.dev_mode or (not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG")))


def _is_future(obj: object) -> bool:
    return asyncio.isfuture(obj) or isinstance(obj, concurrent.futures.Future)


def new_event_loop() -> EventLoop:
    """Creates a new :class:`EventLoop`."""
    return EventLoop()
