"""add_callback, ordering, errors in callbacks and re-entrancy (RELIABILITY 1-5)."""

from __future__ import annotations

import functools

import pytest

from mioloop import IOLoop

from .conftest import LogCapture, run_for


def test_callbacks_run_in_order_with_args_and_kwargs(io_loop: IOLoop) -> None:
    seen = []
    io_loop.add_callback(seen.append, 1)
    io_loop.add_callback(lambda *a, **k: seen.append((a, k)), 2, 3, x=4)
    io_loop.spawn_callback(seen.append, 5)
    io_loop.add_callback(io_loop.stop)
    io_loop.start()
    assert seen == [1, ((2, 3), {"x": 4}), 5]


def test_callback_added_by_a_callback_runs_on_the_next_iteration(io_loop: IOLoop) -> None:
    seen = []

    def first() -> None:
        seen.append("first")
        io_loop.add_callback(lambda: seen.append("third"))

    io_loop.add_callback(first)
    io_loop.add_callback(lambda: seen.append("second"))
    run_for(io_loop, 0.02)
    assert seen == ["first", "second", "third"]


def test_exception_in_callback_is_logged_and_the_next_callback_runs(io_loop: IOLoop, app_log: LogCapture) -> None:
    seen = []

    def boom() -> None:
        raise ZeroDivisionError("boom")

    io_loop.add_callback(boom)
    io_loop.add_callback(seen.append, "after")
    run_for(io_loop, 0.02)
    assert seen == ["after"]
    assert len(app_log.records) == 1
    record = app_log.records[0]
    assert record.getMessage().startswith("Exception in callback")
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


def test_exception_handler_receives_the_exception(io_loop: IOLoop) -> None:
    contexts = []
    io_loop.set_exception_handler(lambda loop, ctx: contexts.append(ctx))
    io_loop.add_callback(lambda: 1 / 0)
    run_for(io_loop, 0.02)
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_exit_exception_leaves_start_and_queued_callbacks_run_once(
    io_loop: IOLoop, exc_type: type[BaseException]
) -> None:
    seen: list[int] = []

    def interrupt() -> None:
        raise exc_type()

    io_loop.add_callback(seen.append, 1)
    io_loop.add_callback(interrupt)
    io_loop.add_callback(seen.append, 2)
    io_loop.add_callback(seen.append, 3)
    with pytest.raises(exc_type):
        io_loop.start()
    assert seen == [1]
    assert not io_loop.is_running()
    io_loop.add_callback(seen.append, 4)  # after the ones left over
    run_for(io_loop, 0.02)
    assert seen == [1, 2, 3, 4]


def test_keyboard_interrupt_in_a_timer_keeps_the_other_timers(io_loop: IOLoop) -> None:
    seen = []
    when = io_loop.time()

    def interrupt() -> None:
        raise KeyboardInterrupt

    io_loop.add_timeout(when, interrupt)
    io_loop.add_timeout(when, seen.append, "timer")
    with pytest.raises(KeyboardInterrupt):
        io_loop.start()
    run_for(io_loop, 0.02)
    assert seen == ["timer"]


def test_start_inside_a_callback_raises_runtime_error(io_loop: IOLoop) -> None:
    errors = []

    def nested() -> None:
        try:
            io_loop.start()
        except RuntimeError as e:
            errors.append(str(e))
        io_loop.stop()

    io_loop.add_callback(nested)
    io_loop.start()
    assert errors == ["This event loop is already running"]


def test_every_public_method_can_be_called_from_a_callback(io_loop: IOLoop) -> None:
    import socket

    a, b = socket.socketpair()
    results = []

    def callback() -> None:
        io_loop.add_callback(lambda: None)
        io_loop.spawn_callback(lambda: None)
        io_loop.add_callback_from_signal(lambda: None)
        handle = io_loop.add_timeout(io_loop.time() + 10, lambda: None)
        io_loop.remove_timeout(handle)
        io_loop.remove_timeout(io_loop.call_later(10, lambda: None))
        io_loop.remove_timeout(io_loop.call_at(io_loop.time() + 10, lambda: None))
        io_loop.add_handler(a, lambda fd, ev: None, IOLoop.READ)
        io_loop.update_handler(a, IOLoop.READ | IOLoop.WRITE)
        io_loop.remove_handler(a)
        results.append(io_loop.time() > 0)
        results.append(IOLoop.current() is io_loop)
        results.append(io_loop.is_running())
        io_loop.add_future(io_loop.run_in_executor(None, int, "7"), lambda f: results.append(f.result()))

    io_loop.add_callback(callback)
    run_for(io_loop, 0.2)
    assert results == [True, True, True, 7]
    a.close()
    b.close()


@pytest.mark.parametrize("value", [{}, [], 0, "", (), {"a": 1}])
def test_callback_returning_a_value_does_not_make_the_loop_spin(io_loop: IOLoop, value: object) -> None:
    calls = []

    def callback() -> object:
        calls.append(1)
        return value

    io_loop.add_callback(callback)
    run_for(io_loop, 0.05)
    assert calls == [1]


def test_callback_returning_a_failing_coroutine_logs_its_error(io_loop: IOLoop, app_log: LogCapture) -> None:
    async def fails() -> None:
        raise ValueError("from coroutine")

    io_loop.add_callback(fails)
    run_for(io_loop, 0.05)
    assert [r.exc_info[0] for r in app_log.records if r.exc_info] == [ValueError]


def test_non_callable_callback_raises_type_error(io_loop: IOLoop) -> None:
    with pytest.raises(TypeError, match="callable"):
        io_loop.add_callback(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        io_loop.call_soon(None)  # type: ignore[arg-type]
    io_loop.add_callback(io_loop.stop)
    io_loop.start()


def test_stop_before_start_makes_start_return_at_once(io_loop: IOLoop) -> None:
    io_loop.stop()
    io_loop.start()  # returns: the test would time out otherwise
    seen = []
    io_loop.add_callback(seen.append, 1)
    io_loop.add_callback(io_loop.stop)
    io_loop.start()
    assert seen == [1]


def test_callback_with_kwargs_is_a_partial(io_loop: IOLoop) -> None:
    seen = []
    io_loop.add_callback(functools.partial(seen.append), "p")
    io_loop.add_callback(lambda *, k: seen.append(k), k="kw")
    run_for(io_loop, 0.01)
    assert seen == ["p", "kw"]


def test_add_callback_after_close_is_dropped(io_loop: IOLoop) -> None:
    io_loop.close()
    io_loop.add_callback(lambda: None)  # no error, nothing runs
    with pytest.raises(RuntimeError, match="closed"):
        io_loop.start()


def test_closed_loop_refuses_timeouts_and_handlers(io_loop: IOLoop) -> None:
    io_loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        io_loop.add_timeout(io_loop.time(), lambda: None)
    with pytest.raises(RuntimeError, match="closed"):
        io_loop.add_handler(0, lambda fd, ev: None, IOLoop.READ)


def test_a_callback_whose_repr_raises_is_reported_and_the_batch_goes_on(io_loop: IOLoop, app_log: LogCapture) -> None:
    class BadRepr:
        def __repr__(self) -> str:
            raise ValueError("no repr")

        def __call__(self) -> None:
            raise RuntimeError("the real error")

    ran = []
    io_loop.add_callback(BadRepr())
    io_loop.add_callback(ran.append, "next")
    io_loop.add_callback(io_loop.stop)
    io_loop.start()
    assert ran == ["next"]
    [record] = app_log.records
    assert record.exc_info and record.exc_info[0] is RuntimeError
    assert "its __repr__ raised" in record.getMessage()


def test_a_cancelled_error_from_a_callback_is_ignored_as_tornado_does(io_loop: IOLoop, app_log: LogCapture) -> None:
    import asyncio

    def cancelled() -> None:
        raise asyncio.CancelledError

    ran = []
    io_loop.add_callback(cancelled)
    io_loop.add_callback(ran.append, "next")
    io_loop.add_callback(io_loop.stop)
    io_loop.start()
    assert ran == ["next"]
    assert app_log.records == []
