"""The ``sock_*`` methods of the asyncio face, each scenario on mioloop and on
asyncio's own loop with the same expectations (RELIABILITY.md 36)."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sys
import tempfile

import pytest

import mioloop

from .conftest import run


def watchers(loop: asyncio.AbstractEventLoop) -> int | None:
    """How many fds the loop watches (mioloop only)."""
    return loop._stats()["handlers"] if isinstance(loop, mioloop.EventLoop) else None


def test_accept_connect_sendall_recv(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        accepting = loop.create_task(loop.sock_accept(listener))
        await loop.sock_connect(client, ("localhost", listener.getsockname()[1]))
        conn, address = await accepting
        assert conn.gettimeout() == 0
        assert address == client.getsockname()
        payload = os.urandom(2 << 20)
        sending = loop.create_task(loop.sock_sendall(client, payload))
        got = bytearray()
        while len(got) < len(payload):
            got += await loop.sock_recv(conn, 1 << 16)
        await sending
        buf = bytearray(10)
        await loop.sock_sendall(conn, b"into")
        n = await loop.sock_recv_into(client, buf)
        for s in (listener, client, conn):
            s.close()
        return bytes(got) == payload and bytes(buf[:n]) == b"into"

    assert run(loop, main())


def test_a_cancelled_recv_loses_no_data_and_leaves_no_watcher(loop: asyncio.AbstractEventLoop, pair) -> None:
    a, b = pair

    async def main() -> bytes:
        before = watchers(loop)
        pending = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0.01)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        assert watchers(loop) == before
        b.send(b"kept")
        return await loop.sock_recv(a, 100)

    assert run(loop, main()) == b"kept"


def test_a_cancelled_accept_and_connect_leave_no_watcher(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        before = watchers(loop)
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        accepting = loop.create_task(loop.sock_accept(listener))
        await asyncio.sleep(0.01)
        accepting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await accepting
        assert watchers(loop) == before
        # A connection made afterwards is still there to accept.
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, listener.getsockname())
        conn, _ = await loop.sock_accept(listener)
        for s in (conn, client, listener):
            s.close()

    run(loop, main())


def test_connect_refused_raises(loop: asyncio.AbstractEventLoop) -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    address = free.getsockname()
    free.close()

    async def main() -> None:
        with socket.socket() as client:
            client.setblocking(False)
            await loop.sock_connect(client, address)

    with pytest.raises(ConnectionRefusedError):
        run(loop, main())


@pytest.mark.skipif(sys.version_info < (3, 11), reason="sock_recvfrom/sock_sendto are new in 3.11")
def test_datagrams_with_recvfrom_and_sendto(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[bytes, int]:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
        ):
            a.bind(("127.0.0.1", 0))
            b.bind(("127.0.0.1", 0))
            a.setblocking(False)
            b.setblocking(False)
            receiving = loop.create_task(loop.sock_recvfrom(a, 100))
            await asyncio.sleep(0.01)
            await loop.sock_sendto(b, b"datagram", a.getsockname())
            data, sender = await receiving
            assert sender == b.getsockname()
            buf = bytearray(100)
            await loop.sock_sendto(a, b"back", b.getsockname())
            n, _ = await loop.sock_recvfrom_into(b, buf)
            return data, n

    assert run(loop, main()) == (b"datagram", 4)


def test_sendfile_sends_the_range_and_moves_the_file_position(loop: asyncio.AbstractEventLoop, pair) -> None:
    a, b = pair
    content = os.urandom(300_000)

    async def main(file: io.BufferedReader) -> tuple[int, bytes, int]:
        receiving = bytearray()

        async def drain() -> None:
            while len(receiving) < 200_000:
                receiving.extend(await loop.sock_recv(b, 1 << 16))

        reader = loop.create_task(drain())
        sent = await loop.sock_sendfile(a, file, offset=50_000, count=200_000)
        await reader
        return sent, bytes(receiving), file.tell()

    with tempfile.TemporaryFile() as f:
        f.write(content)
        f.seek(0)
        sent, received, position = run(loop, main(f))  # type: ignore[arg-type]
    assert sent == 200_000
    assert received == content[50_000:250_000]
    assert position == 250_000


def test_sendfile_falls_back_to_copying_or_refuses(loop: asyncio.AbstractEventLoop, pair) -> None:
    a, b = pair

    async def main() -> bytes:
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sock_sendfile(a, io.BytesIO(b"x"), fallback=False)
        sent = await loop.sock_sendfile(a, io.BytesIO(b"copied bytes"))
        assert sent == 12
        return await loop.sock_recv(b, 100)

    assert run(loop, main()) == b"copied bytes"


def test_sendfile_checks_its_arguments(loop: asyncio.AbstractEventLoop, pair) -> None:
    a, _ = pair
    with tempfile.TemporaryFile() as f:
        for kwargs, error in (({"count": 0}, ValueError), ({"offset": -1}, ValueError), ({"count": "1"}, TypeError)):
            coro = loop.sock_sendfile(a, f, **kwargs)  # type: ignore[arg-type]
            with pytest.raises(error):
                run(loop, coro)
    with tempfile.TemporaryFile(mode="w") as text:
        with pytest.raises(ValueError):
            run(loop, loop.sock_sendfile(a, text))


def test_a_blocking_socket_is_refused(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(True)  # asyncio checks in debug mode; mioloop always does
    with socket.socket() as blocking:
        with pytest.raises(ValueError):
            run(loop, loop.sock_recv(blocking, 1))
        with pytest.raises(ValueError):
            run(loop, loop.sock_sendall(blocking, b"x"))
