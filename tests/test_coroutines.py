"""run_sync, add_future, run_in_executor and PeriodicCallback: asyncio futures and
tasks running on the engine."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime
import itertools
import threading
import time

import pytest

from mioloop import EventLoop, IOLoop, PeriodicCallback

from .conftest import LogCapture, run_for


def test_run_sync_accepts_none_and_refuses_other_plain_values(io_loop: IOLoop) -> None:
    assert io_loop.run_sync(lambda: None) is None
    with pytest.raises(TypeError, match="awaitable or None"):
        io_loop.run_sync(lambda: 42)


def test_run_sync_runs_an_async_def_function(io_loop: IOLoop) -> None:
    async def main() -> str:
        assert asyncio.get_running_loop() is io_loop
        await asyncio.sleep(0.01)
        return "done"

    assert io_loop.run_sync(main) == "done"


def test_run_sync_raises_the_exception_of_the_function(io_loop: IOLoop) -> None:
    async def main() -> None:
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        io_loop.run_sync(main)
    with pytest.raises(ZeroDivisionError):
        io_loop.run_sync(lambda: 1 / 0)


def test_run_sync_timeout_raises_timeout_error(io_loop: IOLoop) -> None:
    async def slow() -> None:
        await asyncio.sleep(10)

    start = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        io_loop.run_sync(slow, timeout=0.05)
    assert time.monotonic() - start < 1
    assert io_loop.run_sync(lambda: asyncio.sleep(0, "usable")) == "usable"


def test_run_in_executor_awaited_inside_run_sync(io_loop: IOLoop) -> None:
    async def main() -> tuple[int, str]:
        loop = asyncio.get_running_loop()
        value = await loop.run_in_executor(None, sum, [1, 2, 3])
        name = await io_loop.run_in_executor(None, lambda: threading.current_thread().name)
        return value, name

    value, name = io_loop.run_sync(main)
    assert value == 6
    assert name != threading.current_thread().name


def test_run_sync_accepts_a_concurrent_future(io_loop: IOLoop) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert io_loop.run_sync(lambda: pool.submit(pow, 2, 10)) == 1024


def test_set_default_executor(io_loop: IOLoop) -> None:
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="custom")
    io_loop.set_default_executor(pool)

    async def main() -> str:
        return await io_loop.run_in_executor(None, lambda: threading.current_thread().name)

    assert io_loop.run_sync(main).startswith("custom")
    with pytest.raises(TypeError):
        io_loop.set_default_executor(object())  # type: ignore[arg-type]


def test_add_future_with_asyncio_and_concurrent_futures(io_loop: IOLoop) -> None:
    seen = []
    fut = io_loop.create_future()
    io_loop.add_future(fut, lambda f: seen.append(("asyncio", f.result())))
    io_loop.add_callback(fut.set_result, 1)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        io_loop.add_future(pool.submit(lambda: 2), lambda f: seen.append(("thread", f.result())))
        run_for(io_loop, 0.1)
    assert sorted(seen) == [("asyncio", 1), ("thread", 2)]
    with pytest.raises(TypeError):
        io_loop.add_future(42, print)  # type: ignore[arg-type]


def test_tasks_gather_and_wait_for(io_loop: IOLoop) -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0.001 * x)
        return 2 * x

    async def main() -> list[int]:
        results = await asyncio.gather(*(double(i) for i in range(10)))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10), 0.01)
        return results

    assert io_loop.run_sync(main) == [2 * i for i in range(10)]


def test_context_variables_follow_tasks(io_loop: IOLoop) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def child() -> str:
        await asyncio.sleep(0)
        return var.get()

    async def main() -> tuple[str, str]:
        var.set("parent")
        task = asyncio.ensure_future(child())
        return await task, var.get()

    assert io_loop.run_sync(main) == ("parent", "parent")


def test_spawn_callback_runs_a_coroutine_function(io_loop: IOLoop) -> None:
    seen = []

    async def work(x: int) -> None:
        await asyncio.sleep(0)
        seen.append(x)

    io_loop.spawn_callback(work, 5)
    run_for(io_loop, 0.02)
    assert seen == [5]


def test_periodic_callback_runs_repeatedly_and_stops(io_loop: IOLoop) -> None:
    calls = []
    pc = PeriodicCallback(lambda: calls.append(io_loop.time()), 10)
    assert not pc.is_running()
    started = io_loop.time()
    pc.start()
    assert pc.is_running()
    run_for(io_loop, 0.105)
    pc.stop()
    assert not pc.is_running()
    count = len(calls)
    # Never early: the n-th call comes n periods after the start at the soonest (a
    # late one is not made up for: Tornado skips the periods it missed).
    assert 2 <= count <= 11
    assert all(at >= started + 0.010 * n - 0.001 for n, at in enumerate(calls, 1))
    run_for(io_loop, 0.05)
    assert len(calls) == count


def test_periodic_callback_with_timedelta_jitter_and_coroutine(io_loop: IOLoop) -> None:
    calls = []

    async def tick() -> None:
        await asyncio.sleep(0)
        calls.append(1)

    pc = PeriodicCallback(tick, datetime.timedelta(milliseconds=10), jitter=0.5)
    pc.start()
    run_for(io_loop, 0.1)
    pc.stop()
    run_for(io_loop, 0.01)  # let a tick that was under way finish
    assert 3 <= len(calls) <= 15


def test_periodic_callback_error_is_logged_and_it_keeps_running(io_loop: IOLoop, app_log: LogCapture) -> None:
    calls = []

    def tick() -> None:
        calls.append(1)
        raise RuntimeError("tick")

    pc = PeriodicCallback(tick, 10)
    pc.start()
    run_for(io_loop, 0.055)
    pc.stop()
    assert len(calls) >= 3
    # One error logged per call, each with the callback's own exception.
    assert len(app_log.records) == len(calls)
    assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in app_log.records)


@pytest.mark.parametrize("bad", [0, -5, float("nan")])
def test_periodic_callback_refuses_a_non_positive_interval(bad: float) -> None:
    with pytest.raises(ValueError):
        PeriodicCallback(lambda: None, bad)


def test_event_loop_runs_plain_asyncio_code() -> None:
    loop = EventLoop()
    try:

        async def main() -> int:
            assert asyncio.get_running_loop() is loop
            fut = loop.create_future()
            loop.call_later(0.01, fut.set_result, 7)
            return await fut

        assert loop.run_until_complete(main()) == 7
    finally:
        loop.close()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_until_complete(coro)
    coro.close()


def test_event_loop_call_soon_handle_cancel() -> None:
    loop = EventLoop()
    seen = []
    handle = loop.call_soon(seen.append, 1)
    loop.call_soon(seen.append, 2)
    handle.cancel()
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.close()
    assert seen == [2]
    assert handle.cancelled()


def test_a_threadsafe_handle_cancelled_from_another_thread_does_not_run() -> None:
    loop = EventLoop()
    seen: list[int] = []
    handle = loop.call_soon_threadsafe(seen.append, 1)
    loop.call_soon_threadsafe(seen.append, 2)
    canceller = threading.Thread(target=handle.cancel)
    canceller.start()
    canceller.join()
    assert repr(handle).startswith("<Handle cancelled")
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.close()
    assert seen == [2]


def test_current_and_instance(io_loop: IOLoop) -> None:
    assert IOLoop.current() is io_loop
    assert IOLoop.instance() is io_loop
    other = IOLoop(make_current=False)
    assert IOLoop.current() is io_loop
    inside = []
    other.add_callback(lambda: inside.append(IOLoop.current()))
    other.add_callback(other.stop)
    other.start()
    assert inside == [other]
    assert IOLoop.current() is io_loop
    other.close()
    IOLoop.clear_current()
    assert IOLoop.current(instance=False) is None


def test_loop_refuses_to_start_inside_another_running_loop(io_loop: IOLoop) -> None:
    other = IOLoop(make_current=False)
    errors = []

    def nested() -> None:
        try:
            other.start()
        except RuntimeError as e:
            errors.append(str(e))
        io_loop.stop()

    io_loop.add_callback(nested)
    io_loop.start()
    other.close()
    assert errors == ["Cannot run the event loop while another loop is running"]


def test_asyncio_run_style_shutdown_of_the_default_executor() -> None:
    loop = EventLoop()
    try:

        async def main() -> str:
            name = await loop.run_in_executor(None, lambda: threading.current_thread().name)
            await loop.shutdown_default_executor()
            return name

        assert loop.run_until_complete(main()).startswith("mioloop")
        assert loop._default_executor is None  # shut down, and no new pool made for it
    finally:
        loop.close()


def test_periodic_callback_keeps_its_schedule_after_keyboard_interrupt(io_loop: IOLoop) -> None:
    """Tornado reschedules in a ``finally``: a KeyboardInterrupt leaves start() but
    the callback keeps running on the next start()."""
    calls: list[int] = []

    def tick() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt

    pc = PeriodicCallback(tick, 5)
    pc.start()
    with pytest.raises(KeyboardInterrupt):
        io_loop.start()
    assert pc.is_running()
    io_loop.call_later(0.1, io_loop.stop)
    io_loop.start()
    pc.stop()
    assert len(calls) >= 3


def test_periodic_callback_jitter_varies_each_interval(io_loop: IOLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    """With jitter=0.5 each interval is callback_time * (1 + 0.5 * (random() - 0.5))."""
    from mioloop import ioloop as ioloop_module

    draws = iter([0.0, 1.0, 0.5, 0.25])
    monkeypatch.setattr(ioloop_module.random, "random", lambda: next(draws))
    pc = PeriodicCallback(lambda: None, 100, jitter=0.5)
    pc.start()
    whens = [pc._timeout.when()]  # type: ignore[union-attr]
    for _ in range(3):
        pc._run()  # as the loop runs it at its deadline
        whens.append(pc._timeout.when())  # type: ignore[union-attr]
    pc.stop()
    gaps = [b - a for a, b in itertools.pairwise(whens)]
    assert gaps == pytest.approx([0.125, 0.100, 0.0875], abs=1e-6)
