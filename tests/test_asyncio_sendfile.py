"""``loop.sendfile`` over a stream transport, each scenario on mioloop and on
asyncio's own loop with the same expectations."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sys
import tempfile
from asyncio.constants import _SendfileMode
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import pytest

_T = TypeVar("_T")
DATA = os.urandom(3 << 20)


def run(loop: asyncio.AbstractEventLoop, coro: Awaitable[_T], timeout: float = 20) -> _T:
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


@pytest.fixture
def data_file() -> Iterator[io.BufferedRandom]:
    with tempfile.TemporaryFile() as f:
        f.write(DATA)
        f.seek(0)
        yield f  # type: ignore[misc]


async def receive_all(loop: asyncio.AbstractEventLoop, sock: socket.socket, limit: int | None = None) -> bytes:
    got = bytearray()
    while limit is None or len(got) < limit:
        data = await loop.sock_recv(sock, 1 << 16)
        if not data:
            break
        got += data
    return bytes(got)


async def connected(loop: asyncio.AbstractEventLoop) -> tuple[asyncio.Transport, socket.socket]:
    a, b = socket.socketpair()
    b.setblocking(False)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
    return transport, b  # type: ignore[return-value]


def test_sendfile_goes_between_the_writes_around_it(loop: asyncio.AbstractEventLoop, data_file: Any) -> None:
    async def main() -> tuple[int, bytes, int]:
        transport, peer = await connected(loop)
        receiving = loop.create_task(receive_all(loop, peer))
        transport.write(b"before")
        sent = await loop.sendfile(transport, data_file)
        transport.write(b"after")
        transport.close()
        got = await receiving
        peer.close()
        return sent, got, data_file.tell()

    sent, got, position = run(loop, main())
    assert sent == len(DATA)
    assert got == b"before" + DATA + b"after"
    assert position == len(DATA)


def test_sendfile_of_a_range(loop: asyncio.AbstractEventLoop, data_file: Any) -> None:
    async def main() -> tuple[int, bytes, int]:
        transport, peer = await connected(loop)
        sent = await loop.sendfile(transport, data_file, 1000, 100)
        transport.close()
        got = await receive_all(loop, peer)
        peer.close()
        return sent, got, data_file.tell()

    assert run(loop, main()) == (100, DATA[1000:1100], 1100)


def test_write_during_sendfile_is_refused(loop: asyncio.AbstractEventLoop, data_file: Any) -> None:
    async def main() -> int:
        transport, peer = await connected(loop)
        sending = loop.create_task(loop.sendfile(transport, data_file))
        await asyncio.sleep(0.01)  # the peer reads nothing yet: the file is not all sent
        with pytest.raises(RuntimeError, match="sendfile is in progress"):
            transport.write(b"interleaved")
        got = await receive_all(loop, peer, len(DATA))
        assert got == DATA
        sent = await sending
        transport.close()
        peer.close()
        return sent

    assert run(loop, main()) == len(DATA)


def test_a_closing_transport_refuses_sendfile(loop: asyncio.AbstractEventLoop, data_file: Any) -> None:
    async def main() -> None:
        transport, peer = await connected(loop)
        transport.close()
        with pytest.raises(RuntimeError, match="is closing"):
            await loop.sendfile(transport, data_file)
        peer.close()

    run(loop, main())
    assert data_file.tell() == 0


def test_a_file_without_fd_is_copied_or_refused(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        transport, peer = await connected(loop)
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sendfile(transport, io.BytesIO(b"x"), fallback=False)
        sent = await loop.sendfile(transport, io.BytesIO(b"copied through the transport"))
        assert sent == 28
        transport.close()
        got = await receive_all(loop, peer)
        peer.close()
        return got

    assert run(loop, main()) == b"copied through the transport"


def test_a_peer_gone_mid_file_raises_connection_error(loop: asyncio.AbstractEventLoop, data_file: Any) -> None:
    async def main() -> tuple[bool, int]:
        transport, peer = await connected(loop)
        sending = loop.create_task(loop.sendfile(transport, data_file))
        await receive_all(loop, peer, 1024)
        peer.close()
        with pytest.raises(ConnectionError):
            await sending
        await asyncio.sleep(0.01)
        return transport.is_closing(), data_file.tell()

    closing, position = run(loop, main())
    assert closing
    assert position < len(DATA)


#: asyncio leaves a file's position at the offset when nothing was sent from 3.14
#: on (before, it left it where it was); mioloop does so on every version.
POSITION_FIXED = ["mioloop", "asyncio"] if sys.version_info >= (3, 14) else ["mioloop"]


@pytest.mark.parametrize("loop", POSITION_FIXED, indirect=True)
@pytest.mark.parametrize("fallback", [False, True])
def test_sendfile_from_the_end_sends_nothing_and_leaves_the_position_there(
    loop: asyncio.AbstractEventLoop, data_file: Any, fallback: bool
) -> None:
    async def main() -> tuple[int, bytes, int]:
        transport, peer = await connected(loop)
        data_file.seek(123)
        if fallback:
            transport._sendfile_compatible = _SendfileMode.FALLBACK  # type: ignore[attr-defined]
        sent = await loop.sendfile(transport, data_file, len(DATA))
        transport.close()
        got = await receive_all(loop, peer)
        peer.close()
        return sent, got, data_file.tell()

    assert run(loop, main()) == (0, b"", len(DATA))


@pytest.mark.parametrize("loop", POSITION_FIXED, indirect=True)
def test_sock_sendfile_sends_from_the_offset_whatever_the_position(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[int, bytes, int]:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        with tempfile.TemporaryFile() as f, a, b:
            f.write(b"abcdef")  # the positions are at the end now
            f.flush()
            unbacked = io.BytesIO(b"abcdef")
            unbacked.seek(6)
            copied = await loop.sock_sendfile(a, unbacked, 0)  # no fd: copied
            sent = await loop.sock_sendfile(a, f, 0)
            a.shutdown(socket.SHUT_WR)
            return copied + sent, await receive_all(loop, b), f.tell() + unbacked.tell()

    assert run(loop, main()) == (12, b"abcdefabcdef", 12)
