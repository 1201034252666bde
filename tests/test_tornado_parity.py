"""The same scenarios on Tornado's IOLoop and on mioloop's: same observable results."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest
import tornado.ioloop as tornado_ioloop

import mioloop


def scenario_order(loop: Any) -> list[Any]:
    seen: list[Any] = []
    now = loop.time()
    loop.add_timeout(now + 0.02, seen.append, "t2")
    loop.add_timeout(now + 0.01, seen.append, "t1")
    loop.add_timeout(now + 0.012, seen.append, "t1b")
    loop.call_later(0.015, seen.append, "later")
    loop.add_callback(seen.append, "cb")
    loop.add_callback(lambda: loop.add_callback(seen.append, "nested"))
    removed = loop.add_timeout(now + 0.005, seen.append, "removed")
    loop.remove_timeout(removed)
    loop.add_timeout(now + 0.03, loop.stop)
    loop.start()
    return seen


def scenario_level_triggered(loop: Any) -> list[Any]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.send(b"abcde")
    got: list[Any] = []

    def on_read(fd: Any, events: int) -> None:
        got.append((fd is a, events, a.recv(1)))

    loop.add_handler(a, on_read, loop.READ)
    loop.add_timeout(loop.time() + 0.05, loop.stop)
    loop.start()
    loop.remove_handler(a)
    a.close()
    b.close()
    return got


def scenario_run_sync(loop: Any) -> list[Any]:
    async def main() -> str:
        await asyncio.sleep(0.001)
        value = await loop.run_in_executor(None, lambda: "from thread")
        return value

    results = [loop.run_sync(main), loop.run_sync(lambda: None)]
    try:
        loop.run_sync(lambda: 3)
    except Exception as e:
        # The one documented difference (README): Tornado raises its own
        # BadYieldError, mioloop (which does not need Tornado) a TypeError.
        expected = "TypeError" if isinstance(loop, mioloop.IOLoop) else "BadYieldError"
        results.append("plain value refused" if type(e).__name__ == expected else repr(e))
    try:
        loop.run_sync(lambda: asyncio.sleep(5), timeout=0.02)
    except asyncio.TimeoutError as e:
        results.append(type(e).__name__)
    try:
        loop.add_handler(-1, lambda fd, ev: None, loop.READ)
    except (ValueError, OSError):
        results.append("refused")
    return results


def scenario_exception_in_callback(loop: Any) -> list[Any]:
    seen: list[Any] = []
    loop.add_callback(lambda: 1 / 0)
    loop.add_callback(seen.append, "next")
    loop.add_timeout(loop.time() + 0.01, loop.stop)
    loop.start()
    return seen


def scenario_scheduling_arguments(loop: Any) -> list[Any]:
    """The scheduling methods take ``(fixed..., *args, **kwargs)`` as Python does:
    a fixed parameter by keyword too, and the same errors."""
    seen: list[Any] = []

    def record(*args: Any, **kwargs: Any) -> None:
        seen.append((args, kwargs))

    loop.add_callback(callback=record)
    loop.add_callback(record, 1, 2, key="k")
    loop.add_timeout(loop.time(), record, 3, key="t")
    loop.call_later(0, record, 4)
    loop.call_at(loop.time(), callback=record)
    for call in (
        lambda: loop.add_callback(record, callback=record),
        loop.add_callback,
        lambda: loop.call_later(0),
        lambda: loop.add_timeout(deadline=loop.time()),
    ):
        try:
            call()
        except TypeError:
            seen.append("TypeError")
    loop.add_timeout(loop.time() + 0.01, loop.stop)
    loop.start()
    return seen


def scenario_constants(loop: Any) -> list[Any]:
    return [loop.NONE, loop.READ, loop.WRITE, loop.ERROR]


@pytest.mark.parametrize(
    "scenario",
    [
        scenario_order,
        scenario_level_triggered,
        scenario_run_sync,
        scenario_exception_in_callback,
        scenario_scheduling_arguments,
        scenario_constants,
    ],
)
def test_same_results_as_tornado(scenario: Callable[[Any], list[Any]], make_loop: Callable[[], Any]) -> None:
    result = scenario(make_loop())
    expected = {
        "scenario_order": ["cb", "nested", "t1", "t1b", "later", "t2"],
        "scenario_level_triggered": [
            (True, 1, b"a"),
            (True, 1, b"b"),
            (True, 1, b"c"),
            (True, 1, b"d"),
            (True, 1, b"e"),
        ],
        "scenario_run_sync": ["from thread", None, "plain value refused", "TimeoutError", "refused"],
        "scenario_exception_in_callback": ["next"],
        "scenario_scheduling_arguments": ["TypeError"] * 4
        + [((), {}), ((1, 2), {"key": "k"}), ((3,), {"key": "t"}), ((4,), {}), ((), {})],
        "scenario_constants": [0, 0x001, 0x004, 0x018],
    }[scenario.__name__]
    assert result == expected


@pytest.mark.parametrize("kind", ["tornado", "mioloop"])
def test_close_all_fds_closes_objects_that_remove_their_own_handler(kind: str) -> None:
    """IOStream-style objects call remove_handler from their close()."""
    if kind == "tornado":
        asyncio.set_event_loop(None)
        loop: Any = tornado_ioloop.IOLoop(make_current=False)
    else:
        loop = mioloop.IOLoop(make_current=False)
    a, b = socket.socketpair()

    class Stream:
        def fileno(self) -> int:
            return a.fileno()

        def close(self) -> None:
            loop.remove_handler(self)
            a.close()

    loop.add_handler(Stream(), lambda fd, events: None, loop.READ)
    loop.close(all_fds=True)
    assert a.fileno() == -1  # closed
    b.close()


def test_a_fractional_deadline_is_a_deadline(make_loop: Callable[[], Any]) -> None:
    import fractions

    loop = make_loop()
    fired: list[bool] = []
    loop.add_timeout(fractions.Fraction(loop.time()) + fractions.Fraction(1, 100), fired.append, True)
    loop.add_timeout(loop.time() + 0.5, loop.stop)
    loop.call_later(0.05, loop.stop)
    loop.start()
    assert fired == [True]
