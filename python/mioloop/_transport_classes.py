"""What ``isinstance`` sees of mioloop's transports.

The transports are Rust classes, which cannot subclass asyncio's transport
classes (those carry a ``__slots__`` layout of their own). Each transport's
``__class__`` is one of these instead, so ``isinstance(transport,
asyncio.Transport)`` (or ``ReadTransport``, ``WriteTransport``,
``DatagramTransport``) holds as it does on asyncio's loop; ``type(transport)``
is still the Rust class. Nothing is ever made of these classes.
"""

from __future__ import annotations

import asyncio

__all__ = ["DatagramTransport", "ReadPipeTransport", "StreamTransport", "WritePipeTransport"]


class StreamTransport(asyncio.Transport):
    """A connection's transport (TCP, Unix stream socket)."""


class ReadPipeTransport(asyncio.ReadTransport):
    """The transport of ``connect_read_pipe``."""


class WritePipeTransport(asyncio.WriteTransport):
    """The transport of ``connect_write_pipe``."""


class DatagramTransport(asyncio.DatagramTransport, asyncio.Transport):
    """A datagram endpoint's transport (also a ``Transport``, as asyncio's own
    datagram transports are)."""
