"""Edge cases of the classic face, each run on Tornado's IOLoop (on asyncio) and on
mioloop's with the same expectations: errors inside a batch, handlers changing other
handlers, closing at the wrong time, threads, fds registered for nothing, and
PeriodicCallback's schedule."""

from __future__ import annotations

import asyncio
import datetime
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tornado.ioloop as tornado_ioloop

import mioloop

from .conftest import LogCapture


@pytest.fixture
def socketpairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    pairs = [socket.socketpair() for _ in range(3)]
    for a, b in pairs:
        a.setblocking(False)
        b.setblocking(False)
    yield pairs
    for a, b in pairs:
        a.close()
        b.close()


@pytest.fixture
def app_log() -> Iterator[LogCapture]:
    capture = LogCapture()
    loggers = [logging.getLogger(name) for name in ("tornado.application", "asyncio")]
    for logger in loggers:
        logger.addHandler(capture)
    yield capture
    for logger in loggers:
        logger.removeHandler(capture)


def periodic_class(kind: str) -> Any:
    return tornado_ioloop.PeriodicCallback if kind == "tornado" else mioloop.PeriodicCallback


# Errors inside a batch


def start_through_interrupt(loop: Any, calls: list[str]) -> None:
    """Runs the loop for 50 ms; if start() is left by KeyboardInterrupt, notes it and
    runs it 50 ms more (what was queued must then run, once)."""
    loop.call_later(0.05, loop.stop)
    try:
        loop.start()
    except KeyboardInterrupt:
        calls.append("interrupted")
        loop.call_later(0.05, loop.stop)
        loop.start()


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_an_error_from_a_handler_leaves_the_rest_of_the_batch_to_run_once(
    make_loop: Callable[[], Any], socketpairs: list[tuple[socket.socket, socket.socket]], error: type, app_log: Any
) -> None:
    loop = make_loop()
    (a, a_peer), (b, b_peer), (c, c_peer) = socketpairs
    calls: list[str] = []

    def handler(name: str, sock: socket.socket, raises: bool) -> Callable[[Any, int], None]:
        def on_read(fd: Any, events: int) -> None:
            sock.recv(10)
            calls.append(name)
            if raises:
                raise error("from " + name)

        return on_read

    loop.add_handler(a, handler("a", a, True), loop.READ)
    loop.add_handler(b, handler("b", b, False), loop.READ)
    loop.add_handler(c, handler("c", c, False), loop.READ)
    for peer in (a_peer, b_peer, c_peer):
        peer.send(b"x")
    time.sleep(0.01)  # all three are ready for the same poll
    start_through_interrupt(loop, calls)
    assert sorted(calls) == sorted(["a", "b", "c"] + (["interrupted"] if error is KeyboardInterrupt else []))


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_an_error_from_a_timer_leaves_the_other_due_timers_to_run_once(
    make_loop: Callable[[], Any], error: type, app_log: Any
) -> None:
    loop = make_loop()
    calls: list[str] = []

    def fail() -> None:
        calls.append("fail")
        raise error("from a timer")

    now = loop.time()
    loop.add_timeout(now, calls.append, "before")
    loop.add_timeout(now, fail)
    loop.add_timeout(now, calls.append, "after")
    time.sleep(0.01)
    start_through_interrupt(loop, calls)
    expected = ["before", "fail"] + (["interrupted"] if error is KeyboardInterrupt else []) + ["after"]
    assert calls == expected


# Handlers changing handlers


def test_a_handler_switching_another_ready_fd_to_write_and_re_adding_itself(
    make_loop: Callable[[], Any], socketpairs: list[tuple[socket.socket, socket.socket]]
) -> None:
    loop = make_loop()
    (a, a_peer), (b, b_peer), _ = socketpairs
    seen: list[tuple[str, int]] = []

    def on_b(fd: Any, events: int) -> None:
        seen.append(("b", events))
        loop.remove_handler(b)

    def on_a(fd: Any, events: int) -> None:
        a.recv(10)
        seen.append(("a", events))
        if len([s for s in seen if s[0] == "a"]) == 1:
            # b is ready to read in this same batch: it must now only hear of WRITE.
            loop.update_handler(b, loop.WRITE)
            loop.remove_handler(a)
            loop.add_handler(a, on_a, loop.READ)
            a_peer.send(b"again")

    loop.add_handler(b, on_b, loop.READ)
    loop.add_handler(a, on_a, loop.READ)
    a_peer.send(b"x")
    b_peer.send(b"x")
    time.sleep(0.01)
    loop.call_later(0.05, loop.stop)
    loop.start()
    # b may run first (its READ is then legitimate) or after a's switch (WRITE only).
    assert seen in (
        [("a", loop.READ), ("b", loop.WRITE), ("a", loop.READ)],
        [("a", loop.READ), ("a", loop.READ), ("b", loop.WRITE)],
        [("b", loop.READ), ("a", loop.READ), ("a", loop.READ)],
    ), seen


# Closing at the wrong time


def test_close_from_a_callback_of_the_running_loop_is_refused(make_loop: Callable[[], Any]) -> None:
    loop = make_loop()
    outcome: list[str] = []

    def close_now() -> None:
        try:
            loop.close()
        except RuntimeError as e:
            outcome.append("refused: " + str(e))
        loop.stop()

    loop.add_callback(close_now)
    loop.start()
    assert outcome == ["refused: Cannot close a running event loop"]


def test_close_from_another_thread_during_start_is_refused_and_the_loop_runs_on(
    make_loop: Callable[[], Any],
) -> None:
    loop = make_loop()
    outcome: list[str] = []
    ticks: list[int] = []

    def closer() -> None:
        try:
            loop.close()
        except RuntimeError:
            outcome.append("refused")
        loop.add_callback(loop.stop)

    def tick() -> None:
        ticks.append(1)
        loop.call_later(0.005, tick)

    loop.add_callback(tick)
    thread = threading.Timer(0.05, closer)
    thread.start()
    loop.start()
    thread.join()
    assert outcome == ["refused"]
    assert len(ticks) > 3


def test_a_nested_run_sync_is_refused_and_its_function_never_runs() -> None:
    # asyncio's rule for a nested run_until_complete. (Tornado queues the function
    # before it finds the loop running: it runs later, and its end stops the outer
    # loop.)
    loop = mioloop.IOLoop(make_current=False)
    outcome: list[str] = []

    def inner() -> None:
        outcome.append("inner ran")

    async def outer() -> str:
        try:
            loop.run_sync(inner)
        except RuntimeError as e:
            outcome.append(str(e))
        await asyncio.sleep(0.02)
        return "outer done"

    assert loop.run_sync(outer) == "outer done"
    loop.close()
    assert outcome == ["This event loop is already running"]


# Threads


def test_a_loop_runs_in_a_thread_that_is_not_the_main_one_and_is_current_there(ioloop_kind: str) -> None:
    seen: dict[str, Any] = {}

    def worker() -> None:
        if ioloop_kind == "tornado":
            asyncio.set_event_loop(asyncio.new_event_loop())
            loop: Any = tornado_ioloop.IOLoop.current()
            current = tornado_ioloop.IOLoop.current
        else:
            loop = mioloop.IOLoop()
            current = mioloop.IOLoop.current
        seen["before_start"] = current() is loop

        def inside() -> None:
            seen["inside"] = current() is loop
            loop.call_later(0.005, loop.stop)

        loop.add_callback(inside)
        loop.start()
        loop.close()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)
    assert seen == {"before_start": True, "inside": True}


# fds registered for nothing


@pytest.mark.parametrize("events", ["NONE", "ERROR"])
def test_an_fd_registered_for_nothing_closed_then_reused(
    make_loop: Callable[[], Any], ioloop_kind: str, events: str
) -> None:
    loop = make_loop()
    a, b = socket.socketpair()
    number = a.fileno()
    old_calls: list[int] = []
    loop.add_handler(number, lambda fd, ev: old_calls.append(ev), getattr(loop, events))
    a.close()
    c, d = socket.socketpair()
    try:
        assert c.fileno() == number  # the lowest free number is taken again at once
        if ioloop_kind == "tornado":
            # Tornado's table still holds the number: refused until it is removed.
            with pytest.raises(ValueError):
                loop.add_handler(c, lambda fd, ev: None, loop.READ)
            loop.remove_handler(number)
        else:
            # mioloop sees the old registration's file is gone: updating it is
            # refused as for any unregistered fd, and the number is free to add.
            with pytest.raises(ValueError, match="not registered"):
                loop.update_handler(number, loop.READ)
        got: list[bytes] = []
        c.setblocking(False)
        loop.add_handler(c, lambda fd, ev: got.append(c.recv(10)), loop.READ)
        d.send(b"new")
        loop.call_later(0.05, loop.stop)
        loop.start()
        assert got == [b"new"]
        assert old_calls == []
    finally:
        b.close()
        c.close()
        d.close()


# Deadlines


def test_zero_and_negative_timedeltas_fire_on_the_next_iteration(make_loop: Callable[[], Any]) -> None:
    loop = make_loop()
    fired: list[str] = []
    loop.add_timeout(datetime.timedelta(seconds=-1), fired.append, "negative")
    loop.add_timeout(datetime.timedelta(0), fired.append, "zero")
    loop.call_later(0.001, fired.append, "1 ms")
    loop.call_later(0.02, loop.stop)
    loop.start()
    assert fired == ["negative", "zero", "1 ms"]


# PeriodicCallback


def run_periodic(
    make_loop: Callable[[], Any], kind: str, callback: Callable[[Any, list[float]], Any], period: float, run_for: float
) -> tuple[list[float], Any]:
    loop = make_loop()
    starts: list[float] = []
    pc = periodic_class(kind)(lambda: callback(pc, starts), period * 1000)
    loop.add_callback(pc.start)
    loop.call_later(run_for, loop.stop)
    loop.start()
    pc.stop()
    # Whatever the last run left pending (a coroutine's task) finishes.
    loop.call_later(0.03, loop.stop)
    loop.start()
    return starts, loop


def test_periodic_callback_skips_missed_ticks_and_stays_anchored(
    make_loop: Callable[[], Any], ioloop_kind: str
) -> None:
    period = 0.05

    def callback(pc: Any, starts: list[float]) -> None:
        starts.append(time.monotonic())
        if len(starts) == 2:
            time.sleep(2.2 * period)  # overruns two ticks

    starts, _ = run_periodic(make_loop, ioloop_kind, callback, period, run_for=0.5)
    first = starts[0]
    ticks = [(t - first) / period for t in starts]
    # Every run starts on the grid of the first one (within 30% of a period) ...
    assert all(abs(k - round(k)) < 0.3 for k in ticks), ticks
    # ... and the two ticks the slow call overran are skipped, not run late.
    numbers = [round(k) for k in ticks]
    assert numbers[:3] == [0, 1, 4], numbers


def test_periodic_callback_stopped_from_inside_runs_no_more(make_loop: Callable[[], Any], ioloop_kind: str) -> None:
    def callback(pc: Any, starts: list[float]) -> None:
        starts.append(time.monotonic())
        if len(starts) == 2:
            pc.stop()

    starts, _ = run_periodic(make_loop, ioloop_kind, callback, 0.01, run_for=0.1)
    assert len(starts) == 2


def test_periodic_callback_started_twice_keeps_one_schedule(make_loop: Callable[[], Any], ioloop_kind: str) -> None:
    def callback(pc: Any, starts: list[float]) -> None:
        starts.append(time.monotonic())
        if len(starts) == 1:
            pc.start()

    starts, _ = run_periodic(make_loop, ioloop_kind, callback, 0.02, run_for=0.21)
    # One schedule: about ten runs in 210 ms, not twenty.
    assert 7 <= len(starts) <= 11, len(starts)


def test_periodic_callback_whose_coroutine_raises_is_logged_and_keeps_running(
    make_loop: Callable[[], Any], ioloop_kind: str, app_log: Any
) -> None:
    async def fails() -> None:
        raise ZeroDivisionError("periodic")

    def callback(pc: Any, starts: list[float]) -> Any:
        starts.append(time.monotonic())
        return fails()

    starts, _ = run_periodic(make_loop, ioloop_kind, callback, 0.01, run_for=0.1)
    errors = [r for r in app_log.records if r.exc_info and isinstance(r.exc_info[1], ZeroDivisionError)]
    assert len(starts) >= 5
    assert len(errors) == len(starts)


# Python's signal wake-up fd


def test_the_wakeup_fd_is_restored_after_start_is_left_by_keyboard_interrupt() -> None:
    r, w = socket.socketpair()
    w.setblocking(False)
    previous = signal.set_wakeup_fd(w.fileno())
    try:
        loop = mioloop.IOLoop(make_current=False)

        def interrupt() -> None:
            raise KeyboardInterrupt

        loop.add_callback(interrupt)
        with pytest.raises(KeyboardInterrupt):
            loop.start()
        assert signal.set_wakeup_fd(w.fileno()) == w.fileno()
        loop.close()
    finally:
        signal.set_wakeup_fd(previous)
        r.close()
        w.close()
