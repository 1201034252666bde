"""Where a transport's errors go: a protocol callback that raises during I/O is
reported to the loop's exception handler and the loop goes on, on mioloop as on
asyncio's own loop; ``KeyboardInterrupt`` leaves ``run_forever()``."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from typing import Any

import pytest

from .conftest import run


class LostRaises(asyncio.Protocol):
    """Its ``connection_lost`` raises, once it recorded the call."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error or ZeroDivisionError("connection_lost failed")
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_event_loop().create_future()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)
        raise self.error


class DatagramLostRaises(LostRaises, asyncio.DatagramProtocol):
    pass


@pytest.fixture
def errors(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    asyncio.set_event_loop(loop)  # the protocols make their futures on it
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    yield reported  # type: ignore[misc]
    asyncio.set_event_loop(None)


async def drain(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> int:
    """Reads until EOF; the bytes read."""
    sock.setblocking(False)
    total = 0
    while data := await loop.sock_recv(sock, 1 << 16):
        total += len(data)
    return total


def assert_reported_and_alive(loop: asyncio.AbstractEventLoop, errors: list[dict[str, Any]]) -> None:
    assert [type(e.get("exception")) for e in errors] == [ZeroDivisionError]
    assert str(errors[0]["exception"]) == "connection_lost failed"
    assert errors[0]["message"].startswith("Exception in callback")
    assert run(loop, asyncio.sleep(0, "alive")) == "alive"


def test_a_raising_connection_lost_after_a_flushing_close_is_reported(
    loop: asyncio.AbstractEventLoop, errors: list[dict[str, Any]]
) -> None:
    async def main() -> int:
        a, b = socket.socketpair()
        transport, protocol = await loop.connect_accepted_socket(LostRaises, a)
        transport.write(b"x" * (4 << 20))  # more than the socket takes: queued
        assert transport.get_write_buffer_size() > 0
        transport.close()  # sends the queue, then connection_lost: during I/O
        got = await drain(loop, b)
        b.close()
        await protocol.lost
        return got

    assert run(loop, main()) == 4 << 20
    assert_reported_and_alive(loop, errors)


def test_a_raising_connection_lost_of_a_write_pipe_after_a_flushing_close_is_reported(
    loop: asyncio.AbstractEventLoop, errors: list[dict[str, Any]]
) -> None:
    async def main() -> int:
        rfd, wfd = os.pipe()
        transport, protocol = await loop.connect_write_pipe(LostRaises, os.fdopen(wfd, "wb"))
        transport.write(b"x" * (1 << 20))  # more than a pipe holds
        transport.close()
        total = 0
        os.set_blocking(rfd, False)
        while True:
            try:
                data = os.read(rfd, 1 << 16)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            if not data:
                break
            total += len(data)
        os.close(rfd)
        await protocol.lost
        return total

    assert run(loop, main()) == 1 << 20
    assert_reported_and_alive(loop, errors)


def test_a_raising_connection_lost_of_a_datagram_endpoint_after_a_flushing_close_is_reported(
    loop: asyncio.AbstractEventLoop, errors: list[dict[str, Any]]
) -> None:
    async def main() -> int:
        with tempfile.TemporaryDirectory() as tmp:
            a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            a.bind(os.path.join(tmp, "a"))
            b.bind(os.path.join(tmp, "b"))
            a.setblocking(False)
            b.setblocking(False)
            transport, protocol = await loop.create_datagram_endpoint(DatagramLostRaises, sock=a)
            sent = 0
            while transport.get_write_buffer_size() == 0:  # until b's queue is full
                transport.sendto(b"d" * 1024, os.path.join(tmp, "b"))
                sent += 1
            transport.close()
            received = 0
            while not protocol.lost.done():
                try:
                    b.recv(2048)
                    received += 1
                except BlockingIOError:
                    await asyncio.sleep(0.001)
            while True:  # what is left in the socket
                try:
                    b.recv(2048)
                    received += 1
                except BlockingIOError:
                    break
            b.close()
            return received - sent

    assert run(loop, main()) == 0  # every datagram queued before close was sent
    assert_reported_and_alive(loop, errors)


def test_a_raising_eof_received_is_a_fatal_error_of_the_connection(
    loop: asyncio.AbstractEventLoop, errors: list[dict[str, Any]]
) -> None:
    class EofRaises(asyncio.Protocol):
        def __init__(self) -> None:
            self.lost: asyncio.Future[BaseException | None] = loop.create_future()

        def eof_received(self) -> bool:
            raise ZeroDivisionError("eof_received failed")

        def connection_lost(self, exc: BaseException | None) -> None:
            self.lost.set_result(exc)

    async def main() -> BaseException | None:
        a, b = socket.socketpair()
        _, protocol = await loop.connect_accepted_socket(EofRaises, a)
        b.shutdown(socket.SHUT_WR)
        exc = await protocol.lost
        b.close()
        return exc

    exc = run(loop, main())
    assert isinstance(exc, ZeroDivisionError)
    assert [e["message"] for e in errors] == ["Fatal error: protocol.eof_received() call failed."]
    assert errors[0]["exception"] is exc
    assert errors[0]["protocol"] is not None
    assert run(loop, asyncio.sleep(0, "alive")) == "alive"


def test_a_keyboard_interrupt_from_connection_lost_during_io_leaves_run_forever(
    loop: asyncio.AbstractEventLoop, errors: list[dict[str, Any]]
) -> None:
    a, b = socket.socketpair()

    async def start() -> asyncio.Transport:
        transport, _ = await loop.connect_accepted_socket(lambda: LostRaises(KeyboardInterrupt()), a)
        transport.write(b"x" * (4 << 20))
        transport.close()
        return transport  # type: ignore[return-value]

    run(loop, start())

    async def reader() -> None:
        await drain(loop, b)

    loop.create_task(reader())
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    b.close()
    assert errors == []
    assert run(loop, asyncio.sleep(0, "alive")) == "alive"
