"""The native core of mioloop: the engine as a Python class, and its handles."""

import asyncio
import contextvars
import datetime
from collections.abc import Callable, Coroutine, Generator, Iterable
from typing import Any, ClassVar, Protocol, SupportsFloat, TypeAlias, TypeVar, final

from typing_extensions import Self, TypeVarTuple, Unpack, disjoint_base

__all__ = [
    "ERROR",
    "READ",
    "WRITE",
    "DatagramTransport",
    "Handle",
    "LoopCore",
    "StreamTransport",
    "TimerHandle",
    "_bench_calls",
]

def _bench_calls(func: Callable[[], object], n: int) -> float:
    """Calls ``func()`` ``n`` times from native code and returns the seconds it took."""

_Ts = TypeVarTuple("_Ts")
_T = TypeVar("_T")

READ: int
WRITE: int
ERROR: int

class _HasFileno(Protocol):
    def fileno(self) -> int: ...

_Fd: TypeAlias = int | _HasFileno

@final
class Handle:
    """A callback scheduled with ``call_soon``; ``cancel()`` stops it from running."""

    def cancel(self) -> None:
        """Cancels the callback; does nothing if it already ran."""
    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
    def get_context(self) -> contextvars.Context | None:
        """The ``contextvars.Context`` the callback runs in (None once it ran)."""
    @property
    def _source_traceback(self) -> Any:
        """Debug mode: where the handle was made (asyncio's extract_stack()); else None."""

@final
class TimerHandle:
    """A timer (``add_timeout``, ``call_later``, ``call_at``). Cancelling it releases
    its callback and arguments at once."""

    def cancel(self) -> None:
        """Cancels the timer; does nothing if it already ran or was cancelled."""
    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
    def get_context(self) -> contextvars.Context | None:
        """The ``contextvars.Context`` the callback runs in (None once it ran)."""
    def when(self) -> float:
        """The timer's deadline, in the loop's time."""
    @property
    def _when(self) -> float:
        """The timer's deadline, as asyncio's TimerHandle keeps it (``when()``)."""
    @property
    def _source_traceback(self) -> Any:
        """Debug mode: where the handle was made (asyncio's extract_stack()); else None."""

@final
class StreamTransport:
    """asyncio's transport for a connected TCP or Unix stream socket; the reads and
    the write buffer are in Rust. Made by the loop's networking methods."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Writes ``data`` without blocking: what the socket does not take at once is
        buffered and sent when it is writable."""
    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        """Writes every bytes-like object of ``list_of_data``, in order."""
    def write_eof(self) -> None:
        """Closes the write end after the buffered data is sent; the peer sees EOF."""
    def can_write_eof(self) -> bool:
        """Whether ``write_eof()`` is supported: always, for a stream socket."""
    def close(self) -> None:
        """Closes the transport: buffered data is still sent, then the protocol's
        ``connection_lost(None)`` is called and the socket closed."""
    def abort(self) -> None:
        """Closes the transport at once, dropping buffered data."""
    def is_closing(self) -> bool:
        """Whether the transport is closing or closed."""
    def pause_reading(self) -> None:
        """Stops calling the protocol's ``data_received`` until ``resume_reading()``."""
    def resume_reading(self) -> None:
        """Resumes receiving after ``pause_reading()``."""
    def is_reading(self) -> bool:
        """Whether the transport is receiving."""
    def get_write_buffer_size(self) -> int:
        """How many bytes are buffered, waiting for the socket."""
    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The ``(low, high)`` water marks of the write buffer."""
    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Sets the water marks that pause and resume the protocol's writing."""
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Information about the connection: ``socket``, ``sockname``, ``peername``."""
    def get_protocol(self) -> Any:
        """The protocol."""
    def set_protocol(self, protocol: Any) -> None:
        """Replaces the protocol."""
    def _start_reading(self) -> None: ...
    def _call_connection_lost(self, exc: BaseException | None) -> None: ...
    _sendfile_compatible: ClassVar[Any]
    def _sendfile_begin(self) -> int:
        """Starts a native sendfile: ``write()`` raises until ``_sendfile_end()``.
        Returns the fd to send on."""
    def _sendfile_end(self) -> None:
        """Ends a native sendfile."""
    def _wait_writable(self) -> Any:
        """A future resolved once the buffered data is sent and the socket writable."""
    def _force_close(self, exc: BaseException) -> None:
        """Ends the connection after a failed sendfile."""
    _start_tls_compatible: ClassVar[bool]

@final
class DatagramTransport:
    """asyncio's transport for a UDP or Unix datagram socket; the reads, the sends
    and the queue of datagrams are in Rust. Made by ``create_datagram_endpoint``."""

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        """Sends ``data`` to ``addr``, or to the connected peer or ``remote_addr``;
        what the socket cannot take at once is queued."""
    def close(self) -> None:
        """Closes the transport once the queued datagrams are sent."""
    def abort(self) -> None:
        """Closes the transport at once, dropping queued datagrams."""
    def is_closing(self) -> bool:
        """Whether the transport is closing or closed."""
    def get_write_buffer_size(self) -> int:
        """How many bytes are queued (with a few bytes of header each)."""
    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The ``(low, high)`` water marks of the queue."""
    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Sets the water marks that pause and resume the protocol's writing."""
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Information about the endpoint: ``socket``, ``sockname``, ``peername``."""
    def get_protocol(self) -> Any:
        """The protocol."""
    def set_protocol(self, protocol: Any) -> None:
        """Replaces the protocol."""
    def _start_reading(self) -> None: ...
    def _call_connection_lost(self, exc: BaseException | None) -> None: ...

@disjoint_base
class LoopCore:
    """The engine behind mioloop's event loops: poll, timers, fds and the iteration."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self: ...
    def time(self) -> float:
        """Returns the current time on the loop's clock (``time.monotonic()``)."""
    def call_soon(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: contextvars.Context | None = None,
    ) -> Handle:
        """asyncio: arranges for ``callback(*args)`` to be called on the next iteration."""
    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: contextvars.Context | None = None,
    ) -> Handle:
        """asyncio: like ``call_soon``, from any thread; wakes the loop."""
    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: contextvars.Context | None = None,
    ) -> TimerHandle:
        """asyncio: arranges for ``callback(*args)`` to be called after ``delay`` seconds."""
    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: contextvars.Context | None = None,
    ) -> TimerHandle:
        """asyncio: arranges for ``callback(*args)`` to be called at loop time ``when``."""
    def create_future(self) -> asyncio.Future[Any]:
        """Creates an asyncio ``Future`` attached to this loop."""
    def create_task(
        self,
        coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
        **kwargs: Any,
    ) -> asyncio.Task[_T]:
        """Schedules a coroutine as an asyncio ``Task`` on this loop (made by the
        task factory, if one is set)."""
    def add_callback(self, callback: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Calls the given callback on the next I/O loop iteration, in the context
        current now.

        It is safe to call this method from any thread at any time, including a
        signal handler. A callback added after ``close()`` is dropped silently.
        """
    def add_timeout(
        self,
        deadline: SupportsFloat | datetime.timedelta,
        callback: Callable[..., object],
        *args: Any,
        **kwargs: Any,
    ) -> TimerHandle:
        """Runs ``callback`` at the time ``deadline`` from the I/O loop.

        ``deadline`` is a real number on the loop's clock (``time()``) or a
        ``datetime.timedelta`` relative to now. Returns a handle for ``remove_timeout``.
        """
    def _tornado_call_later(
        self, delay: float, callback: Callable[..., object], *args: Any, **kwargs: Any
    ) -> TimerHandle:
        """Runs ``callback(*args, **kwargs)`` after ``delay`` seconds (Tornado's
        ``IOLoop.call_later``); returns a handle for ``remove_timeout``."""
    def _tornado_call_at(self, when: float, callback: Callable[..., object], *args: Any, **kwargs: Any) -> TimerHandle:
        """Runs ``callback(*args, **kwargs)`` at the loop time ``when`` (Tornado's
        ``IOLoop.call_at``); returns a handle for ``remove_timeout``."""
    def remove_timeout(self, timeout: TimerHandle) -> None:
        """Cancels a pending timeout. Removing one that already ran does nothing."""
    def add_handler(self, fd: _Fd, handler: Callable[[Any, int], object], events: int) -> None:
        """Registers ``handler`` to receive events for ``fd``.

        ``fd`` is an int or an object with a ``fileno()`` method; the handler is called
        as ``handler(fd, events)`` with the same object.
        """
    def add_reader(self, fd: _Fd, callback: Callable[[Unpack[_Ts]], object], *args: Unpack[_Ts]) -> None:
        """asyncio: calls ``callback(*args)`` whenever ``fd`` is readable (replacing any
        previous reader of ``fd``), in the context current now."""
    def add_writer(self, fd: _Fd, callback: Callable[[Unpack[_Ts]], object], *args: Unpack[_Ts]) -> None:
        """asyncio: calls ``callback(*args)`` whenever ``fd`` is writable (replacing any
        previous writer of ``fd``), in the context current now."""
    def remove_reader(self, fd: _Fd) -> bool:
        """asyncio: stops watching ``fd`` for reading; returns whether it was watched."""
    def remove_writer(self, fd: _Fd) -> bool:
        """asyncio: stops watching ``fd`` for writing; returns whether it was watched."""
    def update_handler(self, fd: _Fd, events: int) -> None:
        """Changes the events we listen for on ``fd``."""
    def remove_handler(self, fd: _Fd) -> None:
        """Stops listening for events on ``fd``. Unknown fds are ignored."""
    def _run(self, iterate_first: bool = False) -> None:
        """Runs iterations until ``stop()``; with ``iterate_first``, at least one."""
    def stop(self) -> None:
        """Stops the loop after the current iteration."""
    def is_running(self) -> bool:
        """Whether the loop is running."""
    def is_closed(self) -> bool:
        """Whether the loop was closed."""
    def _close(self) -> list[Any]:
        """Releases everything and returns the objects registered with ``add_handler``."""
    def get_debug(self) -> bool: ...
    def set_debug(self, enabled: object) -> None:
        """Turns debug mode on or off (any truthy value turns it on)."""
    def _make_stream_transport(
        self, sock: Any, protocol: Any, extra: dict[str, Any], on_lost: Callable[[Any], object] | None = None
    ) -> StreamTransport:
        """Makes the stream transport of a connected, non-blocking socket;
        ``on_lost(transport)`` is called once its ``connection_lost`` ran."""
    def _make_pipe_transport(
        self, pipe: Any, protocol: Any, extra: dict[str, Any], readable: bool, watch_close: bool
    ) -> StreamTransport:
        """Makes the transport of one end of a pipe, FIFO, pty or socket."""
    def _make_datagram_transport(
        self, sock: Any, protocol: Any, address: Any, extra: dict[str, Any]
    ) -> DatagramTransport:
        """Makes the datagram transport of a non-blocking datagram socket."""
    def _stats(self) -> dict[str, int]:
        """Sizes of the engine's queues: ``ready``, ``timers``, ``timer_heap``, ``handlers``."""
