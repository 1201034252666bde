"""TLS on the asyncio face: asyncio's own TLS state machine
(``asyncio.sslproto.SSLProtocol``: an ``ssl.SSLObject`` over memory BIOs) driven
over the Rust stream transport.

The stream transport reads ciphertext straight into the TLS protocol's buffer (it
is an ``asyncio.BufferedProtocol`` on 3.11+), so the only copies are the ones the
TLS library makes to encrypt and decrypt. The application's protocol sees the
TLS transport (``get_extra_info("ssl_object")``, ``"peercert"``, ``"cipher"``...).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from asyncio import sslproto
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - CPython built without OpenSSL
    _ssl = None  # type: ignore[assignment]

__all__ = ["Tls", "TlsMethods", "check_no_tls", "check_plain_socket", "client_tls", "server_tls"]


@dataclass(frozen=True)
class Tls:
    """How to wrap one connection in TLS. The timeouts are checked here, before
    anything connects or listens."""

    context: Any
    server_side: bool
    server_hostname: str | None
    handshake_timeout: float | None
    shutdown_timeout: float | None

    def __post_init__(self) -> None:
        for name, value in (
            ("ssl_handshake_timeout", self.handshake_timeout),
            ("ssl_shutdown_timeout", self.shutdown_timeout),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{name} should be a positive number, got {value}")

    def protocol(
        self,
        loop: asyncio.AbstractEventLoop,
        app_protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[Any],
        *,
        call_connection_made: bool = True,
    ) -> sslproto.SSLProtocol:
        """The TLS protocol to put on the wire transport: it completes the
        handshake, resolves ``waiter`` and then calls the application's
        ``connection_made`` with the TLS transport."""
        timeouts: dict[str, float | None] = {"ssl_handshake_timeout": self.handshake_timeout}
        if sys.version_info >= (3, 11):
            # 3.10's TLS protocol has no shutdown timeout (nor does asyncio's API there).
            timeouts["ssl_shutdown_timeout"] = self.shutdown_timeout
        return sslproto.SSLProtocol(
            loop,
            app_protocol,
            self.context,
            waiter,
            self.server_side,
            self.server_hostname,
            call_connection_made=call_connection_made,
            **timeouts,  # type: ignore[arg-type]
        )


def _hand_over_buffered(protocol: asyncio.BaseProtocol, tls_protocol: Any) -> None:
    """A server's stream reader may hold the client's first TLS bytes (its hello,
    read before ``start_tls``): they go to the TLS protocol, as asyncio does from
    3.14 (CPython gh-142352), instead of waiting for bytes that already came. (3.10's
    TLS protocol has no buffer before its handshake starts: nothing to do there.)"""
    reader = getattr(protocol, "_stream_reader", None) if isinstance(protocol, asyncio.StreamReaderProtocol) else None
    incoming = getattr(tls_protocol, "_incoming", None)
    buffered = getattr(reader, "_buffer", None)
    if buffered and incoming is not None:
        incoming.write(buffered)
        buffered.clear()


def _need_ssl_module() -> None:
    if _ssl is None:  # pragma: no cover
        raise RuntimeError("Python ssl module is not available")


def check_no_tls(handshake_timeout: float | None, shutdown_timeout: float | None) -> None:
    """The TLS timeouts were given without ``ssl``: refused, as asyncio does."""
    if handshake_timeout is not None:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if shutdown_timeout is not None:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


def check_plain_socket(sock: socket.socket | None) -> None:
    """A socket already wrapped by ``ssl.wrap_socket`` cannot be used."""
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def client_tls(
    ssl: Any,
    server_hostname: str | None,
    handshake_timeout: float | None,
    shutdown_timeout: float | None,
    *,
    host: str | None,
    need_hostname_message: str = "You must set server_hostname when using ssl without a host",
) -> Tls | None:
    """The TLS options of a client connection (``ssl=True`` or a context), or
    ``None`` without ``ssl``; the host name to verify defaults to ``host``."""
    if not ssl:
        if server_hostname is not None:
            raise ValueError("server_hostname is only meaningful with ssl")
        check_no_tls(handshake_timeout, shutdown_timeout)
        return None
    _need_ssl_module()
    if server_hostname is None:
        if not host:
            raise ValueError(need_hostname_message)
        server_hostname = host
    context = None if isinstance(ssl, bool) else ssl
    if context is not None and not isinstance(context, _ssl.SSLContext):
        raise TypeError(f"ssl argument must be an SSLContext, a bool or None, got {ssl!r}")
    return Tls(context, False, server_hostname, handshake_timeout, shutdown_timeout)


def server_tls(ssl: Any, handshake_timeout: float | None, shutdown_timeout: float | None) -> Tls | None:
    """The TLS options of the server side (``ssl`` must be a context), or
    ``None`` without ``ssl``."""
    if isinstance(ssl, bool):
        raise TypeError("ssl argument must be an SSLContext or None")
    if ssl is None:
        check_no_tls(handshake_timeout, shutdown_timeout)
        return None
    _need_ssl_module()
    if not isinstance(ssl, _ssl.SSLContext):
        raise TypeError(f"ssl argument must be an SSLContext or None, got {ssl!r}")
    return Tls(ssl, True, None, handshake_timeout, shutdown_timeout)


def start_tls_options(
    transport: asyncio.BaseTransport,
    sslcontext: Any,
    server_side: bool,
    server_hostname: str | None,
    handshake_timeout: float | None,
    shutdown_timeout: float | None,
) -> Tls:
    """The TLS options of ``loop.start_tls``: refuses what it cannot upgrade."""
    _need_ssl_module()
    if not isinstance(sslcontext, _ssl.SSLContext):
        raise TypeError(f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}")
    if not getattr(transport, "_start_tls_compatible", False):
        raise TypeError(f"transport {transport!r} is not supported by start_tls()")
    return Tls(sslcontext, server_side, server_hostname, handshake_timeout, shutdown_timeout)


class TlsMethods:
    """``start_tls`` of :class:`~mioloop.EventLoop`."""

    create_future: Callable[[], asyncio.Future[Any]]
    call_soon: Callable[..., Any]

    async def start_tls(
        self,
        transport: asyncio.BaseTransport,
        protocol: asyncio.BaseProtocol,
        sslcontext: Any,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> asyncio.Transport:
        """Upgrades an open connection to TLS: returns the TLS transport, which
        ``protocol`` is now attached to, once the handshake is done."""
        tls = start_tls_options(
            transport, sslcontext, server_side, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout
        )
        waiter = self.create_future()
        tls_protocol = tls.protocol(self, protocol, waiter, call_connection_made=False)  # type: ignore[arg-type]
        # Nothing is read until the TLS protocol is in place.
        transport.pause_reading()  # type: ignore[attr-defined]
        if server_side:
            _hand_over_buffered(protocol, tls_protocol)
        transport.set_protocol(tls_protocol)
        made = self.call_soon(tls_protocol.connection_made, transport)
        resumed = self.call_soon(transport.resume_reading)  # type: ignore[attr-defined]
        try:
            await waiter
        except BaseException:
            transport.close()
            made.cancel()
            resumed.cancel()
            # The waiter holds the error, whose traceback holds this frame: a cycle
            # that would keep the transport and protocols alive (CPython gh-159049).
            waiter = None  # type: ignore[assignment]
            raise
        return tls_protocol._app_transport  # type: ignore[return-value]
