"""Micro workloads (BENCHMARKS.md 1-4), runnable on every loop.

Run one measurement in this process and print it as JSON::

    python benches/workloads.py callbacks_chain mioloop --n 1000000

The runner (``run.py``) calls this in a fresh process per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

#: Loops with the Tornado-style API (add_callback / add_timeout / add_handler).
#: ``tornado-X``: Tornado's own IOLoop over loop X (``tornado-mioloop``: on a mioloop
#: loop, so it is ``mioloop.TornadoIOLoop``).
TORNADO_STYLE = {"mioloop", "tornado-mioloop", "tornado-asyncio", "tornado-uvloop"}
LOOPS = [
    "mioloop",
    "mioloop-asyncio",
    "asyncio",
    "uvloop",
    "rloop",
    "tornado-mioloop",
    "tornado-asyncio",
    "tornado-uvloop",
]


class Unavailable(Exception):
    """The loop's package is not installed."""


def make_loop(name: str) -> Any:
    """A fresh loop of the named kind."""
    try:
        if name == "mioloop":
            import mioloop

            return mioloop.IOLoop(make_current=True)
        if name == "mioloop-asyncio":
            import mioloop

            return mioloop.new_event_loop()
        if name == "asyncio":
            return asyncio.SelectorEventLoop()
        if name == "uvloop":
            import uvloop

            return uvloop.new_event_loop()
        if name == "rloop":
            import rloop

            return rloop.new_event_loop()
        if name.startswith("tornado-"):
            import tornado.ioloop

            if name == "tornado-mioloop":
                import mioloop

                asyncio.set_event_loop(mioloop.new_event_loop())
            elif name == "tornado-uvloop":
                import uvloop

                asyncio.set_event_loop(uvloop.new_event_loop())
            else:
                asyncio.set_event_loop(asyncio.SelectorEventLoop())
            return tornado.ioloop.IOLoop.current()
    except ImportError as e:
        raise Unavailable(str(e)) from e
    raise ValueError(f"unknown loop {name!r}")


class Face:
    """The few operations the workloads need, on either API."""

    def __init__(self, name: str) -> None:
        self.loop = make_loop(name)
        if name in TORNADO_STYLE:
            self.soon = self.loop.add_callback
            self.threadsafe = self.loop.add_callback
            self.later = self.loop.call_later
            self.cancel = self.loop.remove_timeout
            self.run = self.loop.start
            self.reader = lambda sock, cb: self.loop.add_handler(sock, cb, 1)
            self.close = self.loop.close
        else:
            self.soon = self.loop.call_soon
            self.threadsafe = self.loop.call_soon_threadsafe
            self.later = self.loop.call_later
            self.cancel = lambda h: h.cancel()
            self.run = self.loop.run_forever
            self.reader = lambda sock, cb: self.loop.add_reader(sock.fileno(), cb)
            self.close = self.loop.close
        self.stop = self.loop.stop


def _seconds_to_run(face: Face) -> float:
    """Runs the loop until a workload stops it; the seconds it took."""
    start = time.perf_counter()
    face.run()
    return time.perf_counter() - start


def callbacks_chain(face: Face, n: int) -> float:
    """Each callback schedules the next; returns callbacks/s."""
    left = [n]
    soon, stop = face.soon, face.stop

    def link() -> None:
        left[0] -= 1
        if left[0]:
            soon(link)
        else:
            stop()

    soon(link)
    return n / _seconds_to_run(face)


def callbacks_burst(face: Face, n: int) -> float:
    """``n`` callbacks scheduled at once, from a callback; returns callbacks/s."""
    return _burst(face, n, before_start=False)


def burst_before_start(face: Face, n: int) -> float:
    """``n`` callbacks scheduled before the loop starts (a script's or a test's
    way), then run; returns callbacks/s, scheduling included. Beside
    ``callbacks_burst``: what scheduling costs while no loop runs."""
    return _burst(face, n, before_start=True)


def _burst(face: Face, n: int, before_start: bool) -> float:
    left = [n]
    soon, stop = face.soon, face.stop

    def tick() -> None:
        left[0] -= 1
        if not left[0]:
            stop()

    def burst() -> None:
        for _ in range(n):
            soon(tick)

    if not before_start:
        soon(burst)
        return n / _seconds_to_run(face)
    start = time.perf_counter()
    burst()
    face.run()
    return n / (time.perf_counter() - start)


def _timers(face: Face, n: int, cancel_half: bool) -> float:
    rng = random.Random(42)
    delays = [rng.uniform(0, 0.05) for _ in range(n)]
    fired = [0]
    expected = n // 2 if cancel_half else n
    later, cancel, stop = face.later, face.cancel, face.stop

    def fire() -> None:
        fired[0] += 1
        if fired[0] == expected:
            stop()

    def schedule() -> None:
        handles = [later(d, fire) for d in delays]
        if cancel_half:
            for h in handles[1::2]:
                cancel(h)

    face.soon(schedule)
    return n / _seconds_to_run(face)


def timers(face: Face, n: int) -> float:
    """``n`` timers with random delays in [0, 50 ms]; returns timers/s."""
    return _timers(face, n, cancel_half=False)


def timers_cancelled(face: Face, n: int) -> float:
    """The same, with half of them cancelled before they fire; returns timers/s."""
    return _timers(face, n, cancel_half=True)


def wakeups(face: Face, n: int) -> float:
    """Another thread schedules ``n`` callbacks thread-safely; returns callbacks/s."""
    done = [0]
    stop = face.stop

    def arrived() -> None:
        done[0] += 1
        if done[0] == n:
            stop()

    def producer() -> None:
        threadsafe = face.threadsafe
        for _ in range(n):
            threadsafe(arrived)

    thread = threading.Thread(target=producer)
    face.soon(thread.start)
    elapsed = _seconds_to_run(face)
    thread.join()
    return n / elapsed


def fd_pingpong(face: Face, n: int) -> float:
    """1-byte messages across a socketpair, both ends on the loop; returns round trips/s."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    trips = [0]

    # Handlers take (fd, events) on Tornado-style loops and nothing on asyncio's.
    def on_a(*_: object) -> None:
        a.recv(1)
        trips[0] += 1
        if trips[0] == n:
            face.stop()
        else:
            a.send(b"p")

    def on_b(*_: object) -> None:
        b.recv(1)
        b.send(b"q")

    face.reader(a, on_a)
    face.reader(b, on_b)
    face.soon(a.send, b"p")
    elapsed = _seconds_to_run(face)
    a.close()
    b.close()
    return n / elapsed


def _asyncio_loop(face: Face) -> Any:
    """The asyncio loop tasks run on (Tornado's IOLoop wraps one)."""
    return getattr(face.loop, "asyncio_loop", face.loop)


def _rate_of_task(face: Face, main: Any, n: int) -> float:
    """Runs the coroutine ``main`` as a task until it stops the loop; returns ``n``
    per second of it."""
    task = _asyncio_loop(face).create_task(main)
    elapsed = _seconds_to_run(face)
    task.result()
    return n / elapsed


def task_steps(face: Face, n: int) -> float:
    """A task awaiting ``asyncio.sleep(0)`` ``n`` times (a Task step each); returns
    steps/s."""

    async def main() -> None:
        for _ in range(n):
            await asyncio.sleep(0)
        face.stop()

    return _rate_of_task(face, main(), n)


def future_wakeups(face: Face, n: int) -> float:
    """A task awaiting ``n`` futures, each resolved by a callback (``call_soon``
    of ``set_result``, then the Task's wake-up); returns wake-ups/s."""
    loop = _asyncio_loop(face)

    async def main() -> None:
        for _ in range(n):
            future = loop.create_future()
            loop.call_soon(future.set_result, None)
            await future
        face.stop()

    return _rate_of_task(face, main(), n)


def protocol_pingpong(face: Face, n: int) -> float:
    """Two ``asyncio.Protocol`` transports on a socket pair, one echoing what the
    other sends, 64 bytes ``n`` times: each round trip is two reads and two
    writes through the loop's transports. Returns round trips/s."""
    loop = _asyncio_loop(face)
    message = b"x" * 64

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    class Pinger(asyncio.Protocol):
        left = n

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            transport.write(message)

        def data_received(self, data: bytes) -> None:
            self.left -= 1
            if self.left:
                self.transport.write(message)
            else:
                face.stop()

    async def main() -> None:
        a, b = socket.socketpair()
        try:
            await loop.connect_accepted_socket(Echo, a)
            await loop.connect_accepted_socket(Pinger, b)
        except BaseException:
            face.stop()  # a loop without these methods: the error is the result
            raise

    return _rate_of_task(face, main(), n)


WORKLOADS: dict[str, tuple[Callable[[Face, int], float], int, str]] = {
    "callbacks_chain": (callbacks_chain, 1_000_000, "callbacks/s"),
    "callbacks_burst": (callbacks_burst, 1_000_000, "callbacks/s"),
    "burst_before_start": (burst_before_start, 1_000_000, "callbacks/s"),
    "timers": (timers, 200_000, "timers/s"),
    "timers_cancelled": (timers_cancelled, 200_000, "timers/s"),
    "wakeups": (wakeups, 200_000, "callbacks/s"),
    "fd_pingpong": (fd_pingpong, 200_000, "round trips/s"),
    "task_steps": (task_steps, 200_000, "steps/s"),
    "future_wakeups": (future_wakeups, 200_000, "wake-ups/s"),
    "protocol_pingpong": (protocol_pingpong, 100_000, "round trips/s"),
}


def measure(workload: str, loop: str, n: int | None = None) -> dict[str, Any]:
    func, default_n, unit = WORKLOADS[workload]
    face = Face(loop)
    try:
        rate = func(face, n or default_n)
    finally:
        face.close()
    return {
        "workload": workload,
        "loop": loop,
        "n": n or default_n,
        "rate": rate,
        "unit": unit,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("loop", choices=LOOPS)
    parser.add_argument("--n", type=int, default=None)
    args = parser.parse_args()
    try:
        result = measure(args.workload, args.loop, args.n)
    except Unavailable as e:
        print(json.dumps({"skipped": str(e)}))
        return 0
    except NotImplementedError:
        print(json.dumps({"skipped": f"{args.loop} does not implement this API yet"}))
        return 0
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
