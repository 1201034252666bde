"""add_timeout, call_later, call_at, remove_timeout (RELIABILITY 22-27)."""

from __future__ import annotations

import datetime
import gc
import math
import resource
import time
import weakref

import pytest

from mioloop import IOLoop

from .conftest import run_for


def test_nan_deadline_raises_value_error(io_loop: IOLoop) -> None:
    for schedule in (
        lambda: io_loop.add_timeout(math.nan, lambda: None),
        lambda: io_loop.call_later(math.nan, lambda: None),
        lambda: io_loop.call_at(math.nan, lambda: None),
    ):
        with pytest.raises(ValueError, match="NaN"):
            schedule()
    assert io_loop._stats()["timers"] == 0


@pytest.mark.parametrize("delay", [math.inf, 2.0**55, 1e300, 10**30])
def test_infinite_and_huge_delays_never_fire_and_can_be_removed(io_loop: IOLoop, delay: float) -> None:
    fired = []
    handles = [
        io_loop.call_later(delay, fired.append, "later"),
        io_loop.add_timeout(delay, fired.append, "timeout"),
        io_loop.call_at(delay, fired.append, "at"),
    ]
    run_for(io_loop, 0.05)
    assert fired == []
    for handle in handles:
        io_loop.remove_timeout(handle)
    assert io_loop._stats()["timers"] == 0


@pytest.mark.parametrize("delay", [-1.0, -math.inf, -1e300, 0])
def test_negative_delays_run_on_the_next_iteration(io_loop: IOLoop, delay: float) -> None:
    fired = []
    io_loop.call_later(delay, fired.append, 1)
    io_loop.add_timeout(delay, fired.append, 2)
    io_loop.add_callback(io_loop.stop)
    io_loop.start()  # a single iteration
    # Both are due at once; add_timeout's absolute deadline (at or before the clock's
    # zero) is earlier than call_later's (now), so it runs first.
    assert fired == [2, 1]


def test_wrong_deadline_type_raises_type_error(io_loop: IOLoop) -> None:
    with pytest.raises(TypeError, match="deadline"):
        io_loop.add_timeout("soon", lambda: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        io_loop.call_later("soon", lambda: None)  # type: ignore[arg-type]


def test_timedelta_deadline_is_relative(io_loop: IOLoop) -> None:
    start = time.monotonic()
    fired = []
    io_loop.add_timeout(datetime.timedelta(milliseconds=30), lambda: (fired.append(time.monotonic()), io_loop.stop()))
    io_loop.start()
    assert fired[0] - start >= 0.03


def test_overdue_timer_with_no_io_fires_promptly(io_loop: IOLoop) -> None:
    fired = []
    start = time.monotonic()
    io_loop.add_timeout(io_loop.time() - 10, lambda: (fired.append(time.monotonic()), io_loop.stop()))
    io_loop.start()
    assert fired[0] - start < 0.1


@pytest.mark.parametrize("schedule", ["add_timeout", "call_later", "call_at"])
def test_timer_never_fires_early(io_loop: IOLoop, schedule: str) -> None:
    fired = []
    start = time.monotonic()
    if schedule == "add_timeout":
        io_loop.add_timeout(io_loop.time() + 0.07, lambda: fired.append(time.monotonic()))
    elif schedule == "call_later":
        io_loop.call_later(0.07, lambda: fired.append(time.monotonic()))
    else:
        io_loop.call_at(io_loop.time() + 0.07, lambda: fired.append(time.monotonic()))
    run_for(io_loop, 0.1)
    assert len(fired) == 1
    assert fired[0] - start >= 0.07


def test_loop_time_is_the_monotonic_clock(io_loop: IOLoop) -> None:
    before = time.monotonic()
    now = io_loop.time()
    after = time.monotonic()
    assert before <= now <= after


def test_timer_removed_by_a_timer_of_the_same_batch_does_not_run(io_loop: IOLoop) -> None:
    fired = []
    when = io_loop.time() + 0.01
    handles = {}
    io_loop.add_timeout(when, lambda: (fired.append("first"), io_loop.remove_timeout(handles["victim"])))
    handles["victim"] = io_loop.add_timeout(when, fired.append, "victim")
    run_for(io_loop, 0.05)
    assert fired == ["first"]


def test_equal_deadlines_fire_in_the_order_they_were_added(io_loop: IOLoop) -> None:
    fired = []
    when = io_loop.time() + 0.01
    for i in range(200):
        io_loop.add_timeout(when, fired.append, i)
    run_for(io_loop, 0.05)
    assert fired == list(range(200))


def test_timers_fire_by_deadline(io_loop: IOLoop) -> None:
    fired = []
    now = io_loop.time()
    for delay in (0.03, 0.01, 0.02):
        io_loop.add_timeout(now + delay, fired.append, delay)
    run_for(io_loop, 0.06)
    assert fired == [0.01, 0.02, 0.03]


def test_remove_timeout_after_fire_is_silent(io_loop: IOLoop) -> None:
    handle = io_loop.add_timeout(io_loop.time(), lambda: None)
    run_for(io_loop, 0.01)
    io_loop.remove_timeout(handle)
    io_loop.remove_timeout(handle)


def test_remove_timeout_of_something_else_raises_type_error(io_loop: IOLoop) -> None:
    with pytest.raises(TypeError, match="remove_timeout"):
        io_loop.remove_timeout(object())


def test_remove_timeout_releases_callback_and_arguments_at_once(io_loop: IOLoop) -> None:
    class Payload:
        pass

    payload = Payload()

    def callback(p: Payload) -> None:
        pass

    refs = [weakref.ref(payload), weakref.ref(callback)]
    handle = io_loop.add_timeout(io_loop.time() + 3600, callback, payload)
    del payload, callback
    io_loop.remove_timeout(handle)
    assert [r() for r in refs] == [None, None]  # no gc.collect() needed


def test_a_million_add_remove_pairs_keep_the_heap_and_memory_bounded(io_loop: IOLoop) -> None:
    io_loop.set_debug(False)  # -X dev turns it on: each timer would record its stack
    keep = io_loop.add_timeout(io_loop.time() + 3600, lambda: None)

    def churn(n: int) -> None:
        t = io_loop.time() + 3600
        add, remove = io_loop.add_timeout, io_loop.remove_timeout
        for _ in range(n):
            remove(add(t, int))

    churn(100_000)
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    churn(1_000_000)
    stats = io_loop._stats()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert stats["timers"] == 1
    assert stats["timer_heap"] < 1000
    assert rss_after - rss_before < 20_000  # KiB
    io_loop.remove_timeout(keep)


def test_asyncio_timer_handle_cancel(io_loop: IOLoop) -> None:
    fired = []
    handle = io_loop.call_later(0.01, fired.append, 1)
    assert not handle.cancelled()
    handle.cancel()
    assert handle.cancelled()
    assert handle.when() > 0
    run_for(io_loop, 0.03)
    assert fired == []


def test_a_timer_that_never_fires_reports_an_infinite_deadline(io_loop: IOLoop) -> None:
    for handle in (io_loop.call_later(math.inf, print), io_loop.add_timeout(2.0**70, print)):
        assert handle.when() == math.inf
        io_loop.remove_timeout(handle)
