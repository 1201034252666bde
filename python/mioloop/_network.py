"""asyncio's stream networking on the engine: ``create_connection``,
``create_server``, their Unix forms and ``connect_accepted_socket``.

Connecting, resolving and binding are here; the connection itself is a Rust
``StreamTransport`` whose reads and writes never pass through Python.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import itertools
import logging
import os
import socket
import stat
import sys
from asyncio import staggered, trsock
from collections.abc import Callable, Iterable
from typing import Any

from ._mioloop import StreamTransport
from ._tls import Tls, check_no_tls, check_plain_socket, client_tls, server_tls
from .server import Server

__all__ = ["NetworkMethods"]

_logger = logging.getLogger("asyncio")

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


def _interleave(infos: list[Any], first_family_count: int) -> list[Any]:
    """Orders addresses alternating between families (RFC 8305): the first
    ``first_family_count`` of the first family, then one of each in turn."""
    by_family: dict[int, list[Any]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    groups = list(by_family.values())
    ordered = groups[0][: first_family_count - 1]
    groups[0] = groups[0][first_family_count - 1 :]
    for row in itertools.zip_longest(*groups):
        ordered.extend(info for info in row if info is not None)
    return ordered


def _connect_error(errors: list[OSError], all_errors: bool) -> BaseException:
    if all_errors and sys.version_info >= (3, 11):
        return ExceptionGroup("create_connection failed", errors)  # noqa: F821 (3.11+)
    if len(errors) == 1 or all(str(e) == str(errors[0]) for e in errors):
        return errors[0]
    return OSError(f"Multiple exceptions: {', '.join(str(e) for e in errors)}")


def _set_nodelay(sock: socket.socket) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _resolve_waiter(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def socket_extra(sock: socket.socket) -> dict[str, Any]:
    """A socket transport's ``get_extra_info``: ``socket``, ``sockname``,
    ``peername`` (``None`` where the socket has none)."""
    extra: dict[str, Any] = {"socket": trsock.TransportSocket(sock)}
    for key, query in (("sockname", sock.getsockname), ("peername", sock.getpeername)):
        try:
            extra[key] = query()
        except OSError:
            extra[key] = None
    return extra


async def until_made(loop: Any, transport: Any) -> None:
    """Waits until a new transport's ``connection_made`` (and the start of its
    reading, queued with it) ran; closes the transport if the wait is cut short."""
    waiter = loop.create_future()
    loop.call_soon(_resolve_waiter, waiter)
    try:
        await waiter
    except BaseException:
        transport.close()
        waiter = None  # type: ignore[assignment]  # no cycle through the error (see below)
        raise


class NetworkMethods:
    """The stream networking methods of :class:`~mioloop.EventLoop`."""

    create_future: Callable[[], asyncio.Future[Any]]
    call_soon: Callable[..., Any]
    sock_connect: Callable[..., Any]
    _ensure_resolved: Callable[..., Any]
    _make_stream_transport: Callable[..., StreamTransport]

    def _make_stream(
        self,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        on_lost: Callable[[asyncio.Transport], None] | None = None,
    ) -> StreamTransport:
        """The transport of a connected socket (made non-blocking here);
        ``on_lost(transport)`` is called once its ``connection_lost`` ran."""
        sock.setblocking(False)
        _set_nodelay(sock)
        return self._make_stream_transport(sock, protocol, socket_extra(sock), on_lost)

    async def _connected_transport(
        self, sock: socket.socket, protocol_factory: ProtocolFactory, tls: Tls | None = None
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """The transport and protocol of a connected socket, once
        ``connection_made`` ran (after the TLS handshake with ``tls``)."""
        protocol = protocol_factory()
        if tls is None:
            plain = self._make_stream(sock, protocol)
            await until_made(self, plain)
            return plain, protocol  # type: ignore[return-value]
        # The TLS protocol resolves the waiter once the handshake is done.
        waiter = self.create_future()
        tls_protocol = tls.protocol(self, protocol, waiter)  # type: ignore[arg-type]
        wire = self._make_stream(sock, tls_protocol)
        try:
            await waiter
        except BaseException:
            wire.close()
            # The error's traceback holds this frame, and the error may sit in a
            # cycle (the waiter holds it; before 3.14 asyncio's TLS protocol's own
            # frames do): the frame lets go of the transport and the waiter, so
            # they are not kept alive with it (CPython gh-109534, gh-159049).
            waiter = wire = None  # type: ignore[assignment]
            raise
        return tls_protocol._app_transport, protocol

    async def create_connection(
        self,
        protocol_factory: ProtocolFactory,
        host: str | None = None,
        port: int | None = None,
        *,
        ssl: Any = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: socket.socket | None = None,
        local_addr: tuple[str, int] | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        happy_eyeballs_delay: float | None = None,
        interleave: int | None = None,
        all_errors: bool = False,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """Opens a TCP connection to ``host``:``port`` (each address ``getaddrinfo``
        gives, in turn, or raced ``happy_eyeballs_delay`` seconds apart) or over the
        connected ``sock``, and returns ``(transport, protocol)``."""
        tls = client_tls(ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout, host=host)
        check_plain_socket(sock)
        if host is None and port is None:
            if sock is None:
                raise ValueError("host and port was not specified and no sock specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            return await self._connected_transport(sock, protocol_factory, tls)
        if sock is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1
        infos = await self._ensure_resolved(
            (host, port), family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
        )
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        local_infos = None
        if local_addr is not None:
            local_infos = await self._ensure_resolved(
                local_addr, family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
            )
            if not local_infos:
                raise OSError("getaddrinfo() returned empty list")
        if interleave:
            infos = _interleave(infos, interleave)
        errors: list[OSError] = []
        attempts = None
        try:
            if happy_eyeballs_delay is None:
                connected = None
                for info in infos:
                    try:
                        connected = await self._connect_one(errors, info, local_infos)
                        break
                    except OSError:
                        continue
            else:
                attempts = (functools.partial(self._connect_one, errors, info, local_infos) for info in infos)
                connected, _, _ = await staggered.staggered_race(attempts, happy_eyeballs_delay, loop=self)  # type: ignore[arg-type]
            if connected is None:
                raise _connect_error(errors, all_errors)
        finally:
            # No cycle through the traceback, which holds this frame.
            errors = attempts = None  # type: ignore[assignment]
        return await self._connected_transport(connected, protocol_factory, tls)

    async def _connect_one(self, errors: list[OSError], info: Any, local_infos: list[Any] | None) -> socket.socket:
        family, type_, proto, _, address = info
        sock = None
        try:
            sock = socket.socket(family=family, type=type_, proto=proto)
            sock.setblocking(False)
            if local_infos is not None:
                self._bind_local(sock, family, local_infos)
            await self.sock_connect(sock, address)
            return sock
        except OSError as exc:
            errors.append(exc)
            if sock is not None:
                sock.close()
            raise
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        finally:
            # The error's traceback holds this frame: it must not hold the list
            # that holds the error.
            errors = None  # type: ignore[assignment]

    @staticmethod
    def _bind_local(sock: socket.socket, family: int, local_infos: list[Any]) -> None:
        last: OSError | None = None
        for local_family, _, _, _, local_address in local_infos:
            if local_family != family:
                continue
            try:
                sock.bind(local_address)
                return
            except OSError as exc:
                last = OSError(
                    exc.errno,
                    f"error while attempting to bind on address {local_address!r}: {(exc.strerror or '').lower()}",
                )
        raise last or OSError(f"no matching local address with family={family!r} found")

    async def create_server(
        self,
        protocol_factory: ProtocolFactory,
        host: str | Iterable[str] | None = None,
        port: int | None = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        keep_alive: bool | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
    ) -> Server:
        """Listens on ``host``:``port`` (every address of every host given; all
        interfaces for ``None`` or ``""``) or on ``sock``, and returns the
        :class:`Server`."""
        tls = server_tls(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        check_plain_socket(sock)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            sockets = await self._bind_all(host, port, family, flags, reuse_address, reuse_port, keep_alive)
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            sockets = [sock]
        for s in sockets:
            s.setblocking(False)
        server = Server(self, sockets, protocol_factory, backlog, self._make_stream, tls)  # type: ignore[arg-type]
        if start_serving:
            await server.start_serving()
        return server

    async def _bind_all(
        self,
        host: str | Iterable[str] | None,
        port: int | None,
        family: int,
        flags: int,
        reuse_address: bool | None,
        reuse_port: bool | None,
        keep_alive: bool | None,
    ) -> list[socket.socket]:
        if host == "" or host is None:
            hosts: list[str | None] = [None]
        elif isinstance(host, str) or not isinstance(host, Iterable):
            hosts = [host]
        else:
            hosts = list(host)
        resolved = await asyncio.gather(
            *(
                self._ensure_resolved((h, port), family=family, type=socket.SOCK_STREAM, flags=flags)
                if h is not None
                else self.getaddrinfo(None, port, family=family, type=socket.SOCK_STREAM, flags=flags)  # type: ignore[attr-defined]
                for h in hosts
            )
        )
        infos = list(dict.fromkeys(itertools.chain.from_iterable(resolved)))
        if reuse_address is None:
            reuse_address = True
        sockets: list[socket.socket] = []
        try:
            for af, socktype, proto, _, address in infos:
                sock = socket.socket(af, socktype, proto)
                sockets.append(sock)
                if reuse_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                if reuse_port:
                    if not hasattr(socket, "SO_REUSEPORT"):
                        raise ValueError("reuse_port not supported by socket module")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if keep_alive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                if af == socket.AF_INET6:
                    # One socket per family: an IPv6 socket must not also take IPv4.
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                try:
                    sock.bind(address)
                except OSError as err:
                    raise OSError(
                        err.errno,
                        f"error while attempting to bind on address {address!r}: {(err.strerror or '').lower()}",
                    ) from None
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        if not sockets:
            raise OSError("getaddrinfo() returned empty list")
        return sockets

    async def create_unix_connection(
        self,
        protocol_factory: ProtocolFactory,
        path: str | bytes | os.PathLike[str] | None = None,
        *,
        ssl: Any = None,
        sock: socket.socket | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """Connects to the Unix socket at ``path`` (or over ``sock``) and returns
        ``(transport, protocol)``."""
        tls = client_tls(
            ssl,
            server_hostname,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
            host=None,
            need_hostname_message="you have to pass server_hostname when using ssl",
        )
        check_plain_socket(sock)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            _check_unix_stream(sock)
        return await self._connected_transport(sock, protocol_factory, tls)

    async def create_unix_server(
        self,
        protocol_factory: ProtocolFactory,
        path: str | bytes | os.PathLike[str] | None = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        cleanup_socket: bool = True,
    ) -> Server:
        """Listens on the Unix socket ``path`` (a stale socket file there is
        replaced; a path starting with a NUL byte is in the abstract namespace) or
        on ``sock``, and returns the :class:`Server`. With ``cleanup_socket``, the
        socket's file is removed when the server closes, if it is still the
        socket's (asyncio does so from 3.13; mioloop on every version)."""
        tls = server_tls(ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        check_plain_socket(sock)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            remove_stale_socket(path)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            _check_unix_stream(sock)
        sock.setblocking(False)
        server = Server(self, [sock], protocol_factory, backlog, self._make_stream, tls)  # type: ignore[arg-type]
        if cleanup_socket:
            server._remove_file_on_close(sock)
        if start_serving:
            await server.start_serving()
        return server

    async def connect_accepted_socket(
        self,
        protocol_factory: ProtocolFactory,
        sock: socket.socket,
        *,
        ssl: Any = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """Wraps a connection accepted elsewhere in a transport and a protocol."""
        tls = server_tls(ssl, ssl_handshake_timeout, ssl_shutdown_timeout) if ssl else None
        if tls is None:
            check_no_tls(ssl_handshake_timeout, ssl_shutdown_timeout)
        check_plain_socket(sock)
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        return await self._connected_transport(sock, protocol_factory, tls)


def _check_unix_stream(sock: socket.socket) -> None:
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")


def remove_stale_socket(path: str | bytes) -> None:
    """Removes a socket file left at ``path`` (not an abstract name, which has no
    file), so that a new socket can bind there."""
    if path[0] in (0, "\x00"):
        return
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        _logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)
