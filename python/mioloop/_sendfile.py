"""``loop.sendfile(transport, file)``: a file sent over a stream transport with
``sendfile(2)`` (the bytes never enter Python), or read and written through the
transport when that is not possible."""

from __future__ import annotations

import asyncio
import errno
import io
import os
from asyncio.constants import _SendfileMode
from collections.abc import Awaitable, Callable
from typing import Any

from ._mioloop import StreamTransport

__all__ = ["SendfileMethods", "check_sendfile_args", "copy_file_range", "regular_file_range", "send_file_range"]

#: The most one sendfile(2) call is asked to send.
_NATIVE_BLOCK = 1 << 30
#: The size of each read when copying through the transport.
_FALLBACK_BLOCK = 256 * 1024

_NOT_SUPPORTED = {errno.ENOTSOCK, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}


def check_sendfile_args(file: Any, offset: int, count: int | None) -> None:
    """``sendfile``'s checks: a binary file, a positive ``count``, a non-negative
    ``offset``."""
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


def regular_file_range(file: Any, offset: int, count: int | None) -> tuple[int, int]:
    """The fd of ``file`` and where the range ends; ``SendfileNotAvailableError`` if
    it has no fd ``sendfile(2)`` can read."""
    try:
        fileno = file.fileno()
        size = os.fstat(fileno).st_size
    except (AttributeError, io.UnsupportedOperation, OSError):
        raise asyncio.SendfileNotAvailableError("not a regular file") from None
    return fileno, offset + count if count is not None else size


async def send_file_range(
    send: Callable[[int, int], int],
    wait_writable: Callable[[], Awaitable[object]],
    file: Any,
    offset: int,
    end: int,
) -> int:
    """Sends the file from ``offset`` to ``end`` with ``send(position, size)`` (a
    ``sendfile(2)`` call), waiting with ``wait_writable()`` when the socket is full;
    returns the bytes sent, and leaves the file position after them (at ``offset``
    if none were). A first call that ``sendfile(2)`` refuses raises
    ``SendfileNotAvailableError``."""
    position, total = offset, 0
    try:
        while position < end:
            try:
                sent = send(position, min(end - position, _NATIVE_BLOCK))
            except (BlockingIOError, InterruptedError):
                await wait_writable()
                continue
            except OSError as exc:
                if total == 0 and exc.errno in _NOT_SUPPORTED:
                    raise asyncio.SendfileNotAvailableError("sendfile(2) is not available here") from exc
                raise
            if sent == 0:
                break  # the file ended early
            position += sent
            total += sent
    finally:
        if hasattr(file, "seek"):
            file.seek(position)
    return total


class SendfileMethods:
    """``sendfile`` of :class:`~mioloop.EventLoop`."""

    run_in_executor: Callable[..., asyncio.Future[Any]]

    async def sendfile(
        self,
        transport: asyncio.BaseTransport,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        """Sends ``count`` bytes of ``file`` from ``offset`` (all of it by default) over
        ``transport`` after the data already buffered, and returns how many were
        sent; the file position ends after them. ``write()`` raises meanwhile."""
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        mode = getattr(transport, "_sendfile_compatible", _SendfileMode.UNSUPPORTED)
        if mode is _SendfileMode.UNSUPPORTED:
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        if mode is _SendfileMode.TRY_NATIVE:
            try:
                return await self._sendfile_native(transport, file, offset, count)
            except asyncio.SendfileNotAvailableError:
                if not fallback:
                    raise
        if not fallback:
            raise RuntimeError(f"fallback is disabled and native sendfile is not supported for transport {transport!r}")
        return await self._sendfile_fallback(transport, file, offset, count)

    async def _sendfile_native(self, transport: Any, file: Any, offset: int, count: int | None) -> int:
        check_sendfile_args(file, offset, count)
        if not isinstance(transport, StreamTransport):
            raise asyncio.SendfileNotAvailableError("sendfile syscall is not supported")
        fileno, end = regular_file_range(file, offset, count)
        resume_reading = transport.is_reading()
        transport.pause_reading()
        sock_fd = transport._sendfile_begin()
        try:
            await transport._wait_writable()
            return await send_file_range(
                lambda position, size: os.sendfile(sock_fd, fileno, position, size),
                transport._wait_writable,
                file,
                offset,
                end,
            )
        except OSError as exc:  # the peer is gone (SendfileNotAvailableError is not one)
            transport._force_close(exc)
            raise ConnectionError("sendfile: the connection was lost") from exc
        finally:
            transport._sendfile_end()
            if resume_reading:
                transport.resume_reading()

    async def _sendfile_fallback(self, transport: Any, file: Any, offset: int, count: int | None) -> int:
        check_sendfile_args(file, offset, count)
        flow = _FlowControl(transport)
        try:

            async def write(chunk: memoryview) -> None:
                await flow.writable()
                transport.write(bytes(chunk))

            return await copy_file_range(self.run_in_executor, file, offset, count, write)
        finally:
            flow.restore()


async def copy_file_range(
    run_in_executor: Callable[..., Awaitable[Any]],
    file: Any,
    offset: int,
    count: int | None,
    write: Callable[[memoryview], Awaitable[None]],
) -> int:
    """Reads the file from ``offset`` (``count`` bytes, or to its end) in a thread,
    a block at a time, and hands each block to ``write``; returns the bytes copied
    and leaves the file position after them (at ``offset`` if none were)."""
    if hasattr(file, "seek"):
        file.seek(offset)
    view = memoryview(bytearray(min(count, _FALLBACK_BLOCK) if count else _FALLBACK_BLOCK))
    total = 0
    try:
        while count is None or total < count:
            want = len(view) if count is None else min(len(view), count - total)
            got = await run_in_executor(None, file.readinto, view[:want])
            if not got:
                break
            await write(view[:got])
            total += got
    finally:
        if total > 0:
            file.seek(offset + total)
    return total


class _FlowControl(asyncio.Protocol):
    """Stands in for a transport's protocol while a file is copied through it:
    reading is paused, and ``writable()`` waits while the transport's buffer is
    over its high-water mark. ``restore()`` gives the protocol back, telling it of
    a pause or resume it missed meanwhile."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._protocol = transport.get_protocol()
        try:
            self._was_reading = transport.is_reading()
        except NotImplementedError:  # a write pipe: nothing to pause
            self._was_reading = False
        self._paused: asyncio.Future[None] | None = None
        #: A resume_writing came for a pause the protocol itself saw.
        self._owed_resume = False
        self._lost = False
        if self._was_reading:
            transport.pause_reading()
        transport.set_protocol(self)

    async def writable(self) -> None:
        if self._lost or self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        if self._paused is not None:
            await asyncio.shield(self._paused)

    def pause_writing(self) -> None:
        if self._paused is None:
            self._paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        paused, self._paused = self._paused, None
        if paused is None:
            self._owed_resume = True
        elif not paused.done():
            paused.set_result(None)

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self) -> bool:
        raise RuntimeError("Invalid state: reading should be paused")

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        paused, self._paused = self._paused, None
        if paused is not None and not paused.done():
            paused.set_exception(ConnectionError("Connection closed by peer"))
            paused.exception()  # retrieved: writable() may not be waiting on it
        self._protocol.connection_lost(exc)

    def restore(self) -> None:
        if self._lost:
            return
        self._transport.set_protocol(self._protocol)
        if self._was_reading:
            self._transport.resume_reading()
        if self._owed_resume:
            self._protocol.resume_writing()
        if self._paused is not None:
            self._protocol.pause_writing()
            self._paused.cancel()
