"""``Server``: what ``create_server`` and ``create_unix_server`` return."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from asyncio import trsock
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._tls import Tls

#: How a server makes the transport of an accepted connection: ``connect(sock,
#: protocol, on_lost)``, where ``on_lost(transport)`` is called once the
#: transport's ``connection_lost`` ran.
Connect = Callable[[socket.socket, asyncio.BaseProtocol, Callable[[asyncio.Transport], None]], asyncio.Transport]

__all__ = ["Server"]

#: After accept() fails for lack of fds or memory, listening pauses this long.
_ACCEPT_RETRY_DELAY = 1.0

_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

_logger = logging.getLogger("asyncio")


class Server(asyncio.AbstractServer):
    """Listening sockets and the connections accepted on them.

    ``close()`` stops listening at once; connections already accepted keep working
    until they close, and ``wait_closed()`` returns when the server is closed and
    they all have. ``async with server:`` closes and waits on exit.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        backlog: int,
        connect: Connect,
        tls: Tls | None = None,
    ) -> None:
        self._loop = loop
        self._connect = connect
        self._tls = tls
        self._sockets: list[socket.socket] | None = sockets
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._clients: set[asyncio.Transport] = set()
        #: One bound method for every connection to hold (a new one each would cost
        #: every idle connection 64 bytes); a cycle, collected with the server.
        self._on_lost = self._detach
        self._waiters: list[asyncio.Future[None]] | None = []
        self._serving = False
        self._serving_forever_fut: asyncio.Future[None] | None = None
        #: Unix socket files to remove on close, by path, with the inode each had.
        self._socket_files: dict[str | bytes, int] = {}

    def _remove_file_on_close(self, sock: socket.socket) -> None:
        """Removes the file of the Unix socket ``sock`` when the server closes, if
        it is still that socket's (``cleanup_socket``, as asyncio 3.13 does)."""
        path = sock.getsockname()
        if path and path[0] not in (0, "\x00"):  # an abstract name has no file
            try:
                self._socket_files[path] = os.stat(path).st_ino
            except FileNotFoundError:
                pass

    def _remove_socket_files(self) -> None:
        files, self._socket_files = self._socket_files, {}
        for path, inode in files.items():
            try:
                if os.stat(path).st_ino == inode:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                _logger.error("Unable to clean up listening UNIX socket %r: %r", path, exc)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sockets={self.sockets!r}>"

    # Connections

    def _attach(self, transport: asyncio.Transport) -> None:
        self._clients.add(transport)

    def _detach(self, transport: asyncio.Transport) -> None:
        self._clients.discard(transport)
        if not self._clients and self._sockets is None:
            self._wakeup()

    def _wakeup(self) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _start_serving(self) -> None:
        if self._serving or self._sockets is None:
            return
        self._serving = True
        for sock in self._sockets:
            sock.listen(self._backlog)
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, sock: socket.socket) -> None:
        # Up to a backlog's worth per readiness, so one burst of clients is taken in
        # one go without starving the rest of the loop.
        for _ in range(self._backlog):
            try:
                conn, _address = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                self._loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": exc,
                        "socket": trsock.TransportSocket(sock),
                    }
                )
                self._loop.remove_reader(sock.fileno())
                self._loop.call_later(_ACCEPT_RETRY_DELAY, self._resume_accepting, sock)
                return
            conn.setblocking(False)
            try:
                protocol = self._protocol_factory()
                if self._tls is not None:
                    waiter = self._loop.create_future()
                    waiter.add_done_callback(self._handshake_done)
                    protocol = self._tls.protocol(self._loop, protocol, waiter)
                self._attach(self._connect(conn, protocol, self._on_lost))
            except (SystemExit, KeyboardInterrupt):
                conn.close()
                raise
            except BaseException as exc:
                conn.close()
                self._loop.call_exception_handler(
                    {
                        "message": "Error on transport creation for incoming connection",
                        "exception": exc,
                        "socket": trsock.TransportSocket(sock),
                    }
                )

    def _handshake_done(self, waiter: asyncio.Future[None]) -> None:
        # A failed handshake has closed its connection; as asyncio, it is reported
        # only in debug mode.
        if waiter.cancelled():
            return
        exc = waiter.exception()
        if exc is not None and self._loop.get_debug():
            self._loop.call_exception_handler(
                {"message": "Error on transport creation for incoming connection", "exception": exc}
            )

    def _resume_accepting(self, sock: socket.socket) -> None:
        if self._serving and self._sockets is not None and sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    # asyncio.AbstractServer

    def close(self) -> None:
        """Stops listening and closes the listening sockets; accepted connections
        are left open."""
        sockets, self._sockets = self._sockets, None
        if sockets is None:
            return
        if self._serving:
            for sock in sockets:
                self._loop.remove_reader(sock.fileno())
        self._serving = False
        for sock in sockets:
            sock.close()
        self._remove_socket_files()
        if self._serving_forever_fut is not None and not self._serving_forever_fut.done():
            self._serving_forever_fut.cancel()
            self._serving_forever_fut = None
        if not self._clients:
            self._wakeup()

    def close_clients(self) -> None:
        """Closes every accepted connection (their buffered data is still sent)."""
        for transport in list(self._clients):
            transport.close()

    def abort_clients(self) -> None:
        """Aborts every accepted connection at once."""
        for transport in list(self._clients):
            transport.abort()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the server runs on."""
        return self._loop

    def is_serving(self) -> bool:
        """Whether the server accepts connections."""
        return self._serving

    @property
    def sockets(self) -> tuple[trsock.TransportSocket, ...]:
        """The listening sockets (empty once closed)."""
        if self._sockets is None:
            return ()
        return tuple(trsock.TransportSocket(s) for s in self._sockets)

    async def start_serving(self) -> None:
        """Starts accepting connections (for a server made with ``start_serving=False``)."""
        self._start_serving()
        await asyncio.sleep(0)

    async def serve_forever(self) -> None:
        """Accepts connections until the task is cancelled; then closes the server
        and waits for it."""
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        """Waits until the server is closed and every accepted connection is gone."""
        if self._waiters is None:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter
