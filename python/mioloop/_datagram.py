"""UDP and Unix datagram endpoints on the engine: ``create_datagram_endpoint``.

Making the socket (resolving, binding, connecting) is here; the endpoint itself
is a Rust ``DatagramTransport`` that reads and sends datagrams without Python.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import warnings
from collections.abc import Callable
from typing import Any

from ._mioloop import DatagramTransport
from ._network import remove_stale_socket, socket_extra, until_made

__all__ = ["DatagramMethods"]

_logger = logging.getLogger("asyncio")

#: ``reuse_address`` was not passed (as asyncio: gone from the signature in 3.11;
#: before, ``False`` is deprecated and ``True`` refused).
_UNSET: Any = object()

#: A pair of a (family, proto) and the (local, remote) addresses to use with it.
_AddressPair = tuple[tuple[int, int], tuple[Any, Any]]


def _check_modifiers_unused(**modifiers: Any) -> None:
    given = ", ".join(f"{name}={value}" for name, value in modifiers.items() if value)
    if given:
        raise ValueError(f"socket modifier keyword arguments can not be used when sock is specified. ({given})")


def _check_reuse_address(reuse_address: Any) -> None:
    if reuse_address is _UNSET:
        return
    if sys.version_info >= (3, 11):
        # Removed from asyncio's signature in 3.11.
        raise TypeError("create_datagram_endpoint() got an unexpected keyword argument 'reuse_address'")
    if reuse_address:
        raise ValueError(
            "Passing `reuse_address=True` is no longer supported, as the usage of "
            "SO_REUSEPORT in UDP poses a significant security concern."
        )
    warnings.warn(
        "The *reuse_address* parameter has been deprecated as of 3.5.10 and is scheduled for removal in 3.11.",
        DeprecationWarning,
        stacklevel=3,
    )


class DatagramMethods:
    """``create_datagram_endpoint`` of :class:`~mioloop.EventLoop`."""

    sock_connect: Callable[..., Any]
    _ensure_resolved: Callable[..., Any]
    _make_datagram_transport: Callable[..., DatagramTransport]

    async def create_datagram_endpoint(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        local_addr: Any = None,
        remote_addr: Any = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_address: Any = _UNSET,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
    ) -> tuple[DatagramTransport, asyncio.BaseProtocol]:
        """Opens a datagram endpoint: bound to ``local_addr``, connected to
        ``remote_addr`` (with ``allow_broadcast``, not connected but sending there
        by default), for ``family`` (``AF_UNIX`` takes paths), or over ``sock``;
        returns ``(transport, protocol)``."""
        _check_reuse_address(reuse_address)
        if sock is not None:
            if sock.type != socket.SOCK_DGRAM:
                kind = "datagram socket" if sys.version_info >= (3, 13) else "UDP Socket"  # asyncio's wording
                raise ValueError(f"A {kind} was expected, got {sock!r}")
            _check_modifiers_unused(
                local_addr=local_addr,
                remote_addr=remote_addr,
                family=family,
                proto=proto,
                flags=flags,
                reuse_port=reuse_port,
                allow_broadcast=allow_broadcast,
            )
            sock.setblocking(False)
            remote = None
        else:
            pairs = await self._address_pairs(local_addr, remote_addr, family, proto, flags)
            sock, remote = await self._open_datagram_socket(pairs, local_addr, remote_addr, reuse_port, allow_broadcast)
        protocol = protocol_factory()
        transport = self._make_datagram_transport(sock, protocol, remote, socket_extra(sock))
        await until_made(self, transport)
        return transport, protocol

    async def _address_pairs(
        self, local_addr: Any, remote_addr: Any, family: int, proto: int, flags: int
    ) -> list[_AddressPair]:
        """The (family, proto) and (local, remote) address combinations to try."""
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError("unexpected address family")
            return [((family, proto), (None, None))]
        if family == socket.AF_UNIX:
            for addr in (local_addr, remote_addr):
                if addr is not None and not isinstance(addr, (str, bytes)):
                    raise TypeError("string is expected")
            if local_addr:
                remove_stale_socket(local_addr)
            return [((family, proto), (local_addr, remote_addr))]
        by_family: dict[tuple[int, int], list[Any]] = {}
        for index, addr in enumerate((local_addr, remote_addr)):
            if addr is None:
                continue
            if not (isinstance(addr, tuple) and len(addr) == 2):
                raise TypeError("2-tuple is expected")
            infos = await self._ensure_resolved(addr, family=family, type=socket.SOCK_DGRAM, proto=proto, flags=flags)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            for fam, _, pro, _, address in infos:
                by_family.setdefault((fam, pro), [None, None])
                if by_family[(fam, pro)][index] is None:
                    by_family[(fam, pro)][index] = address
        pairs = [
            (key, (local, remote))
            for key, (local, remote) in by_family.items()
            if not (local_addr and local is None) and not (remote_addr and remote is None)
        ]
        if not pairs:
            raise ValueError("can not get address information")
        return pairs

    async def _open_datagram_socket(
        self,
        pairs: list[_AddressPair],
        local_addr: Any,
        remote_addr: Any,
        reuse_port: bool | None,
        allow_broadcast: bool | None,
    ) -> tuple[socket.socket, Any]:
        """The first socket that binds and connects as asked, with the address
        ``sendto`` defaults to (or ``None``)."""
        errors: list[OSError] = []
        for (family, proto), (local, remote) in pairs:
            sock = None
            try:
                sock = socket.socket(family=family, type=socket.SOCK_DGRAM, proto=proto)
                if reuse_port:
                    if not hasattr(socket, "SO_REUSEPORT"):
                        raise ValueError("reuse_port not supported by socket module")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if allow_broadcast:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.setblocking(False)
                if local_addr:
                    sock.bind(local)
                if remote_addr and not allow_broadcast:
                    await self.sock_connect(sock, remote)
                return sock, remote if remote_addr else None
            except OSError as exc:
                if sock is not None:
                    sock.close()
                errors.append(exc)
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
        try:
            raise errors[0]
        finally:
            errors = []  # no cycle through the traceback
