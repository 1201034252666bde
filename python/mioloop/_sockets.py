"""asyncio's low-level socket methods (``sock_recv``, ``sock_sendall``,
``sock_connect``, ``sock_accept``, ``sock_sendfile`` ...) on the engine's native fd
watchers.

Each method tries the socket at once; if it would block, it waits for readiness
with ``add_reader``/``add_writer`` and tries again. A cancelled call removes its
watcher and has consumed nothing: data is only read when the future can take it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from ._sendfile import check_sendfile_args, copy_file_range, regular_file_range, send_file_range

_T = TypeVar("_T")

__all__ = ["SocketMethods"]


def _check_socket(sock: socket.socket) -> None:
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")
    if sock.gettimeout() != 0:
        # asyncio checks this in debug mode only; a blocking socket would block the loop.
        raise ValueError("the socket must be non-blocking")


class SocketMethods:
    """The ``sock_*`` methods of :class:`~mioloop.EventLoop`."""

    create_future: Callable[[], asyncio.Future[Any]]
    add_reader: Callable[..., None]
    add_writer: Callable[..., None]
    remove_reader: Callable[[Any], bool]
    remove_writer: Callable[[Any], bool]
    run_in_executor: Callable[..., asyncio.Future[Any]]
    getaddrinfo: Callable[..., Any]
    #: The watcher each waiting call installed, by (fd, writable): a call that ends
    #: removes its watcher only if a later call has not replaced it.
    _sock_waiting: dict[tuple[int, bool], Callable[..., None]]

    def _when_ready(self, sock: socket.socket, writable: bool, attempt: Callable[[], _T]) -> asyncio.Future[_T]:
        """A future for ``attempt()``, retried each time ``sock`` is ready until it
        stops raising ``BlockingIOError``."""
        fut: asyncio.Future[_T] = self.create_future()
        fd = sock.fileno()

        # The future comes as an argument, dropped before returning: an error's
        # traceback holds this frame, and through it the future would hold the
        # error in a cycle (CPython gh-124859).
        def on_ready(fut: asyncio.Future[_T] | None) -> None:
            try:
                if fut is None or fut.done():
                    return
                try:
                    result = attempt()
                except (BlockingIOError, InterruptedError):
                    return
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)
            finally:
                fut = None

        watch, unwatch = (self.add_writer, self.remove_writer) if writable else (self.add_reader, self.remove_reader)
        key = (fd, writable)
        watch(fd, on_ready, fut)
        self._sock_waiting[key] = on_ready

        def done(_: object) -> None:
            if self._sock_waiting.get(key) is on_ready:
                del self._sock_waiting[key]
                unwatch(fd)

        fut.add_done_callback(done)
        return fut

    async def _try_or_wait(self, sock: socket.socket, writable: bool, attempt: Callable[[], _T]) -> _T:
        _check_socket(sock)
        try:
            return attempt()
        except (BlockingIOError, InterruptedError):
            pass
        return await self._when_ready(sock, writable, attempt)

    async def sock_recv(self, sock: socket.socket, nbytes: int) -> bytes:
        """Receives up to ``nbytes`` from ``sock``; ``b""`` at end of stream."""
        return await self._try_or_wait(sock, False, lambda: sock.recv(nbytes))

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        """Receives into ``buf``; returns how many bytes were written to it."""
        return await self._try_or_wait(sock, False, lambda: sock.recv_into(buf))

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        """Receives a datagram of up to ``bufsize`` bytes; returns ``(data, address)``."""
        return await self._try_or_wait(sock, False, lambda: sock.recvfrom(bufsize))

    async def sock_recvfrom_into(self, sock: socket.socket, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
        """Receives a datagram into ``buf``; returns ``(nbytes, address)``."""
        return await self._try_or_wait(sock, False, lambda: sock.recvfrom_into(buf, nbytes))

    async def sock_sendto(self, sock: socket.socket, data: Any, address: Any) -> int:
        """Sends a datagram to ``address``; returns the number of bytes sent."""
        return await self._try_or_wait(sock, True, lambda: sock.sendto(data, address))

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        """Sends all of ``data``, waiting for the socket to take it."""
        _check_socket(sock)
        view = memoryview(data).cast("B")
        sent = 0
        try:
            sent = sock.send(view)
        except (BlockingIOError, InterruptedError):
            pass
        if sent == len(view):
            return

        def attempt() -> None:
            nonlocal sent
            while sent < len(view):
                sent += sock.send(view[sent:])  # raises BlockingIOError when full

        await self._when_ready(sock, True, attempt)

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connects ``sock`` to ``address`` (a host name is resolved first)."""
        _check_socket(sock)
        if sock.family != socket.AF_UNIX:
            resolved = await self._ensure_resolved(address, family=sock.family, type=sock.type, proto=sock.proto)
            address = resolved[0][4]
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass

        def connected() -> None:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                raise OSError(err, f"Connect call failed {address}")

        await self._when_ready(sock, True, connected)

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        """Accepts a connection; returns ``(conn, address)`` with ``conn`` non-blocking."""

        def attempt() -> tuple[socket.socket, Any]:
            conn, address = sock.accept()
            conn.setblocking(False)
            return conn, address

        return await self._try_or_wait(sock, False, attempt)

    async def sock_sendfile(
        self, sock: socket.socket, file: Any, offset: int = 0, count: int | None = None, *, fallback: bool = True
    ) -> int:
        """Sends ``count`` bytes of ``file`` from ``offset`` (all of it by default)
        with ``os.sendfile``, or by reading and sending when that is not available
        and ``fallback`` is true. Returns the bytes sent; the file position ends
        after them."""
        _check_socket(sock)
        if sock.type != socket.SOCK_STREAM:
            raise ValueError("only SOCK_STREAM type sockets are supported")
        check_sendfile_args(file, offset, count)
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except asyncio.SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_copying(sock, file, offset, count)

    async def _sock_sendfile_native(self, sock: socket.socket, file: Any, offset: int, count: int | None) -> int:
        fileno, end = regular_file_range(file, offset, count)
        sock_fd = sock.fileno()
        return await send_file_range(
            lambda position, size: os.sendfile(sock_fd, fileno, position, size),
            lambda: self._when_ready(sock, True, lambda: None),
            file,
            offset,
            end,
        )

    async def _sock_sendfile_copying(self, sock: socket.socket, file: Any, offset: int, count: int | None) -> int:
        async def write(chunk: memoryview) -> None:
            await self.sock_sendall(sock, chunk)

        return await copy_file_range(self.run_in_executor, file, offset, count, write)

    # Name resolution

    async def _ensure_resolved(
        self, address: Any, *, family: int = 0, type: int = socket.SOCK_STREAM, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        """``getaddrinfo`` for ``address``, skipped when the host is already an IP
        address."""
        host, port = address[:2]
        info = _numeric_addrinfo(host, port, family, type, proto, address[2:])
        if info is not None:
            return [info]
        return await self.getaddrinfo(host, port, family=family, type=type, proto=proto, flags=flags)


def _numeric_addrinfo(host: Any, port: Any, family: int, type: int, proto: int, rest: tuple[Any, ...]) -> Any:
    """The addrinfo of a numeric IPv4/IPv6 host and port, or ``None`` if resolving
    needs ``getaddrinfo`` (a name, a service name, an unusual protocol)."""
    if host is None or not hasattr(socket, "inet_pton"):
        return None
    if type not in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        return None
    if proto == 0:
        proto = socket.IPPROTO_TCP if type == socket.SOCK_STREAM else socket.IPPROTO_UDP
    elif proto not in (socket.IPPROTO_TCP, socket.IPPROTO_UDP):
        return None
    if port is None:
        port = 0
    elif isinstance(port, (bytes, str)):
        if isinstance(port, bytes):
            port = port.decode("ascii", "replace")
        if not port.isdigit():
            return None
        port = int(port)
    elif not isinstance(port, int):
        return None
    if isinstance(host, bytes):
        host = host.decode("idna")
    if not isinstance(host, str):
        return None
    families = [family] if family else [socket.AF_INET, socket.AF_INET6]
    if "%" in host:
        return None  # a scoped IPv6 address: getaddrinfo knows the scope id
    for af in families:
        try:
            socket.inet_pton(af, host)
        except (OSError, ValueError):
            continue
        if af == socket.AF_INET6:
            flowinfo, scope_id = (*rest, 0, 0)[:2]
            return af, type, proto, "", (host, port, flowinfo, scope_id)
        return af, type, proto, "", (host, port)
    return None
