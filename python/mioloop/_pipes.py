"""Pipes on the asyncio face: ``connect_read_pipe`` and ``connect_write_pipe``.

The transport is the Rust stream transport on one end of the pipe (reading with
``read``, writing with ``write``): the same read loop and write queue as a
socket connection.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from typing import Any

from ._mioloop import StreamTransport
from ._network import until_made

__all__ = ["PipeMethods"]


def _pipe_mode(pipe: Any) -> int:
    return os.fstat(pipe.fileno()).st_mode


class PipeMethods:
    """The pipe methods of :class:`~mioloop.EventLoop`."""

    _make_pipe_transport: Callable[..., StreamTransport]

    async def connect_read_pipe(
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], pipe: Any
    ) -> tuple[StreamTransport, asyncio.BaseProtocol]:
        """Reads the pipe ``pipe`` (a file object: a pipe, FIFO, socket or
        character device such as a pty) into a protocol: ``data_received`` for each
        read, ``eof_received`` then ``connection_lost(None)`` at its end. The
        transport closes ``pipe``."""
        mode = _pipe_mode(pipe)
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            raise ValueError("Pipe transport is for pipes/sockets only.")
        return await self._connect_pipe(protocol_factory, pipe, readable=True, watch_close=False)

    async def connect_write_pipe(
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], pipe: Any
    ) -> tuple[StreamTransport, asyncio.BaseProtocol]:
        """Writes to the pipe ``pipe`` through a transport (``write``,
        ``writelines``, ``write_eof`` closes it, flow control as a socket's). When
        its reader goes away the transport closes: ``connection_lost(None)``, or
        ``BrokenPipeError`` if data was still waiting. The transport closes ``pipe``."""
        mode = _pipe_mode(pipe)
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            raise ValueError("Pipe transport is only for pipes, sockets and character devices")
        # A pty's write end reports the other side's output as readable: only a pipe
        # or a socket is watched for its reader going away.
        watch_close = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        return await self._connect_pipe(protocol_factory, pipe, readable=False, watch_close=watch_close)

    async def _connect_pipe(
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], pipe: Any, *, readable: bool, watch_close: bool
    ) -> tuple[StreamTransport, asyncio.BaseProtocol]:
        os.set_blocking(pipe.fileno(), False)
        protocol = protocol_factory()
        transport = self._make_pipe_transport(pipe, protocol, {"pipe": pipe}, readable, watch_close)
        await until_made(self, transport)
        return transport, protocol
