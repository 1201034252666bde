"""asyncio's Unix signal handlers (``add_signal_handler``) on the engine's signal
wake-up socket, which tells the loop which signals arrived."""

from __future__ import annotations

import asyncio
import contextvars
import errno
import inspect
import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SignalMethods"]


def _noop(signum: int, frame: object) -> None:
    """The Python-level handler of a signal the loop handles: Python's C handler
    has already written the signal number to the loop's wake-up socket."""


def _check_signal(sig: int) -> None:
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")


class SignalMethods:
    """The signal methods of :class:`~mioloop.EventLoop`."""

    call_soon: Callable[..., Any]
    is_closed: Callable[[], bool]
    _wakeup_acquire: Callable[[], bool]
    _wakeup_release: Callable[[], None]
    #: Handlers by signal number: (callback, args, context).
    _signal_handlers: dict[int, tuple[Callable[..., object], tuple[Any, ...], contextvars.Context]]

    def add_signal_handler(self, sig: int, callback: Callable[..., object], *args: Any) -> None:
        """Calls ``callback(*args)`` on the loop each time signal ``sig`` arrives
        (replacing a previous handler of ``sig``). Main thread only; ``SIGKILL``
        and ``SIGSTOP`` cannot be caught (``RuntimeError``)."""
        if asyncio.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        if not callable(callback):
            raise TypeError(f"a callable object was expected by add_signal_handler(), got {callback!r}")
        _check_signal(sig)
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("set_wakeup_fd only works in main thread of the main interpreter")
        first = not self._signal_handlers
        if first and not self._wakeup_acquire():
            raise RuntimeError("set_wakeup_fd only works in main thread of the main interpreter")
        self._signal_handlers[sig] = (callback, args, contextvars.copy_context())
        try:
            signal.signal(sig, _noop)
            # Restart interrupted system calls: the loop hears of the signal anyway.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                self._wakeup_release()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise

    def remove_signal_handler(self, sig: int) -> bool:
        """Removes the handler of ``sig`` and restores the signal's default
        disposition; returns whether there was one."""
        _check_signal(sig)
        if self._signal_handlers.pop(sig, None) is None:
            return False
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, default)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise
        finally:
            if not self._signal_handlers:
                self._wakeup_release()
        return True

    def _dispatch_signals(self, signums: bytes) -> None:
        """Schedules the handler of each signal that arrived (called by the engine)."""
        for sig in signums:
            handler = self._signal_handlers.get(sig)
            if handler is not None:
                callback, args, context = handler
                self.call_soon(callback, *args, context=context)

    def _remove_signal_handlers(self) -> None:
        """Removes every handler (on close), restoring the signals' dispositions."""
        for sig in list(self._signal_handlers):
            self.remove_signal_handler(sig)
