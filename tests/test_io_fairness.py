"""I/O keeps up with busy tasks (RELIABILITY.md 44): a socket that became ready is
served on the next iteration, as asyncio serves it, however long or short the
iterations are. Each scenario runs on mioloop and on asyncio's own loop."""

from __future__ import annotations

import asyncio
import socket
import time

from .conftest import run


class Collect(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()

    def data_received(self, data: bytes) -> None:
        self.data += data


async def connected_pair(
    loop: asyncio.AbstractEventLoop,
) -> tuple[asyncio.Transport, asyncio.Transport, Collect, socket.socket]:
    """Two transports on a socket pair: the writer's, and the reader's with its
    protocol; and the writer's socket."""
    a, b = socket.socketpair()
    writer, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
    reading, reader = await loop.connect_accepted_socket(Collect, b)
    return writer, reading, reader, a


def test_a_peer_has_the_data_after_two_sleep_zero(loop: asyncio.AbstractEventLoop) -> None:
    # What websockets' own tests expect of any loop: write, yield twice, read.
    async def main() -> list[bytes]:
        writer, reading, reader, _ = await connected_pair(loop)
        got = []
        for message in (b"one", b"two", b"three"):
            writer.write(message)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            got.append(bytes(reader.data))
            reader.data.clear()
        writer.close()
        reading.close()
        return got

    assert run(loop, main()) == [b"one", b"two", b"three"]


def test_a_reader_is_called_after_two_sleep_zero_while_callbacks_keep_the_loop_busy(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def main() -> int:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        got: list[bytes] = []
        loop.add_reader(a.fileno(), lambda: got.append(a.recv(100)))
        busy = True

        def spin() -> None:  # a callback always queued: no poll may block
            if busy:
                loop.call_soon(spin)

        spin()
        try:
            await asyncio.sleep(0.01)
            for message in (b"x", b"yz"):
                b.send(message)
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                assert got == [message]
                got.clear()
            return len(got)
        finally:
            busy = False
            loop.remove_reader(a.fileno())
            a.close()
            b.close()

    assert run(loop, main()) == 0


def test_data_from_outside_waits_for_one_step_of_a_busy_task_not_many(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # A task that runs 1 ms between yields, and no timer pending (a timer makes
    # every iteration read the clock): the data an outside peer sends is delivered
    # within a step or two of the task (asyncio: the next one), not after a fixed
    # count of iterations.
    async def main() -> int:
        writer, reading, reader, sock = await connected_pair(loop)
        steps = 0
        while not reader.data and steps < 200:
            deadline = time.perf_counter() + 0.001
            while time.perf_counter() < deadline:
                pass
            steps += 1
            if steps == 5:
                sock.send(b"!")  # as if from outside: not through the transport
            await asyncio.sleep(0)
        writer.close()
        reading.close()
        return steps - 5

    # No asyncio.wait_for around it: its timer would hide the pacing.
    assert loop.run_until_complete(main()) <= 2
