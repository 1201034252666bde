"""asyncio semantics of the event loop that programs rely on: contextvars, nested
runs, fd watcher errors, and the ways to make mioloop asyncio's loop. Each scenario
runs on mioloop and on asyncio's own loop with the same expectations."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import socket
import sys
import weakref
from typing import Any

import pytest

import mioloop
from mioloop import IOLoop

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
var_obj: contextvars.ContextVar[object] = contextvars.ContextVar("var_obj")


def run_briefly(loop: asyncio.AbstractEventLoop, seconds: float = 0.02) -> None:
    loop.run_until_complete(asyncio.sleep(seconds))


# contextvars


def test_a_callback_cannot_change_the_callers_context(loop: asyncio.AbstractEventLoop) -> None:
    loop.call_soon(var.set, "x")
    run_briefly(loop)
    assert var.get() == "unset"


def test_a_callback_runs_in_the_context_current_when_it_was_scheduled(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[str] = []

    async def main() -> None:
        var.set("task value")
        loop.call_soon(lambda: seen.append(var.get()))
        loop.call_later(0.001, lambda: seen.append(var.get()))
        loop.call_soon_threadsafe(lambda: seen.append(var.get()))
        await asyncio.sleep(0.01)

    loop.run_until_complete(main())
    assert seen == ["task value"] * 3


def test_a_callback_runs_in_the_context_given(loop: asyncio.AbstractEventLoop) -> None:
    context = contextvars.copy_context()
    context.run(var.set, "given")
    seen: list[str] = []
    loop.call_soon(lambda: seen.append(var.get()), context=context)
    loop.call_later(0, lambda: seen.append(var.get()), context=context)
    run_briefly(loop)
    assert seen == ["given", "given"]
    loop.call_soon(var.set, "changed", context=context)
    run_briefly(loop)
    assert context[var] == "changed"
    assert var.get() == "unset"


def test_queued_callbacks_keep_their_own_contexts_through_a_full_collection(
    loop: asyncio.AbstractEventLoop,
) -> None:
    seen: list[tuple[str, str]] = []

    def record(expected: str) -> None:
        seen.append((expected, var.get()))
        var.set("changed by " + expected)  # stays in this callback's context

    def schedule(i: int) -> None:
        var.set(f"v{i}")
        loop.call_soon(record, f"v{i}")
        loop.call_later(0.001, record, f"v{i}")
        loop.call_soon_threadsafe(record, f"v{i}")

    for i in range(2000):
        contextvars.copy_context().run(schedule, i)
    gc.collect()

    async def all_ran() -> None:
        # Another thread's callbacks come in bounded batches: wait for them all.
        while len(seen) < 6000:
            await asyncio.sleep(0.001)

    loop.run_until_complete(asyncio.wait_for(all_ran(), 10))
    assert len(seen) == 6000
    assert [expected for expected, got in seen if got != expected] == []


class _Value:
    """A context variable's value that can refer back to its context."""

    context: contextvars.Context | None = None


def test_dropped_callbacks_release_their_contexts() -> None:
    loop = mioloop.new_event_loop()
    value = _Value()
    ref = weakref.ref(value)

    def schedule(held: _Value) -> None:
        var_obj.set(held)
        loop.call_soon(print, "never")
        loop.call_later(3600, print, "never")

    contextvars.copy_context().run(schedule, value)
    del value
    loop.close()
    gc.collect()
    assert ref() is None


def test_a_cycle_through_a_callbacks_context_is_collected_once_the_callback_ran() -> None:
    loop = mioloop.new_event_loop()
    try:
        contextvars.copy_context().run(lambda: loop.call_soon(lambda: None))
        # Only introspection can reach the context a queued callback runs in.
        (context,) = [o for o in gc.get_referents(loop) if isinstance(o, contextvars.Context)]
        value = _Value()
        value.context = context  # value -> context -> value
        context.run(var_obj.set, value)
        ref = weakref.ref(value)
        run_briefly(loop)
        del context, value
        gc.collect()
        assert ref() is None
    finally:
        loop.close()


def test_a_reader_runs_in_the_context_current_when_it_was_added(loop: asyncio.AbstractEventLoop) -> None:
    a, b = socket.socketpair()
    seen: list[str] = []

    def on_readable() -> None:
        seen.append(var.get())
        a.recv(10)
        loop.remove_reader(a)

    try:
        token = var.set("reader")
        loop.add_reader(a, on_readable)
        var.reset(token)
        b.send(b"x")
        run_briefly(loop)
    finally:
        a.close()
        b.close()
    assert seen == ["reader"]


def test_ioloop_callbacks_and_handlers_capture_the_context(io_loop: IOLoop) -> None:
    a, b = socket.socketpair()
    seen: list[str] = []

    def on_readable(fd: socket.socket, events: int) -> None:
        seen.append("handler " + var.get())
        fd.recv(10)
        io_loop.remove_handler(fd)
        io_loop.stop()

    try:
        token = var.set("tornado")
        io_loop.add_callback(lambda: seen.append("callback " + var.get()))
        io_loop.add_timeout(io_loop.time(), lambda: seen.append("timeout " + var.get()))
        io_loop.add_handler(a, on_readable, IOLoop.READ)
        io_loop.add_callback(var.set, "changed")
        var.reset(token)
        b.send(b"x")
        io_loop.start()
    finally:
        a.close()
        b.close()
    assert var.get() == "unset"
    assert sorted(seen) == ["callback tornado", "handler tornado", "timeout tornado"]


def test_a_context_that_is_not_a_context_is_refused(loop: asyncio.AbstractEventLoop) -> None:
    if isinstance(loop, mioloop.EventLoop):
        with pytest.raises(TypeError):
            loop.call_soon(print, context={})  # type: ignore[arg-type]
        assert loop._stats()["ready"] == 0


def test_call_soon_takes_context_by_name_however_the_keyword_is_passed(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # A call site's names, a dict unpacked at each call, a Task's own: each is
    # matched by name, and another name is refused wherever it comes after them.
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    context = contextvars.copy_context()
    context.run(var.set, "given")
    seen: list[str] = []

    async def step() -> None:
        await asyncio.sleep(0)
        seen.append("task " + var.get())

    for _ in range(3):
        loop.call_soon(lambda: seen.append(var.get()), context=context)
        loop.call_soon(lambda: seen.append(var.get()), **{"context": context})
        with pytest.raises(TypeError, match="keyword"):
            loop.call_soon(print, **{"contxt": context})  # type: ignore[arg-type]
        loop.run_until_complete(step())
    assert seen == ["given", "given", "task unset"] * 3


# Nested runs


def test_a_refused_nested_run_never_runs_the_coroutine(loop: asyncio.AbstractEventLoop) -> None:
    ran: list[str] = []

    async def inner() -> None:
        ran.append("inner")

    async def outer() -> None:
        coro = inner()
        with pytest.raises(RuntimeError):
            loop.run_until_complete(coro)
        coro.close()
        await asyncio.sleep(0.01)

    loop.run_until_complete(outer())
    assert ran == []


# Watcher errors


def test_a_raising_reader_is_reported_as_itself_and_the_writer_still_runs(
    loop: asyncio.AbstractEventLoop,
) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    errors: list[dict] = []
    wrote: list[bool] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))

    def bad_reader() -> None:
        loop.remove_reader(a)
        raise ValueError("reader failed")

    def writer() -> None:
        wrote.append(True)
        loop.remove_writer(a)

    try:
        b.send(b"x")
        loop.add_reader(a, bad_reader)
        loop.add_writer(a, writer)
        run_briefly(loop)
    finally:
        a.close()
        b.close()
    assert wrote == [True]
    assert len(errors) == 1
    assert str(errors[0]["exception"]) == "reader failed"
    assert errors[0]["message"].startswith("Exception in callback")
    if isinstance(loop, mioloop.EventLoop):
        # Reported against the reader itself, not a dispatcher in between.
        assert errors[0]["callback"] is bad_reader


def test_a_writer_removed_by_the_reader_of_the_same_event_does_not_run(loop: asyncio.AbstractEventLoop) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    calls: list[str] = []

    def reader() -> None:
        calls.append("r")
        a.recv(10)
        loop.remove_reader(a)
        loop.remove_writer(a)

    try:
        b.send(b"x")
        loop.add_reader(a, reader)
        loop.add_writer(a, lambda: calls.append("w"))
        run_briefly(loop)
    finally:
        a.close()
        b.close()
    # asyncio's selector runs the reader first for an fd ready both ways.
    assert calls == ["r"]


def test_readers_and_tornado_handlers_do_not_share_an_fd(io_loop: IOLoop) -> None:
    a, b = socket.socketpair()
    try:
        io_loop.add_handler(a, lambda fd, events: None, IOLoop.READ)
        with pytest.raises(ValueError):
            io_loop.add_reader(a, print)
        io_loop.remove_handler(a)
        io_loop.add_reader(a, print)
        with pytest.raises(ValueError):
            io_loop.add_handler(a, lambda fd, events: None, IOLoop.READ)
        io_loop.remove_handler(a)  # not a handler: left alone
        assert io_loop.remove_reader(a) is True
    finally:
        a.close()
        b.close()


# Making mioloop asyncio's loop


async def _which_loop() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__name__


def test_run_runs_a_coroutine_on_a_new_mioloop_loop_and_closes_it() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> str:
        loops.append(asyncio.get_running_loop())
        return await _which_loop()

    assert mioloop.run(main()) == "EventLoop"
    assert loops[0].is_closed()


def test_run_cancels_the_tasks_left_over() -> None:
    cancelled: list[bool] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> None:
        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0.01)

    mioloop.run(main())
    assert cancelled == [True]


def test_run_refuses_inside_a_running_loop() -> None:
    async def main() -> None:
        coro = _which_loop()
        with pytest.raises(RuntimeError):
            mioloop.run(coro)
        coro.close()

    mioloop.run(main())


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is new in 3.12")
def test_asyncio_run_takes_mioloop_as_its_loop_factory() -> None:
    assert asyncio.run(_which_loop(), loop_factory=mioloop.new_event_loop) == "EventLoop"  # type: ignore[call-arg]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is new in 3.11")
def test_asyncio_runner_takes_mioloop_as_its_loop_factory() -> None:
    with asyncio.Runner(loop_factory=mioloop.new_event_loop) as runner:  # type: ignore[attr-defined]
        assert runner.run(_which_loop()) == "EventLoop"
        assert runner.run(_which_loop()) == "EventLoop"


def test_callbacks_from_another_thread_keep_their_order(loop: asyncio.AbstractEventLoop) -> None:
    # The other thread's call_soon_threadsafe happens before this thread's call_soon.
    import threading

    order: list[str] = []
    thread = threading.Thread(target=loop.call_soon_threadsafe, args=(order.append, "other thread"))
    thread.start()
    thread.join()
    loop.call_soon(order.append, "loop thread")
    run_briefly(loop)
    assert order == ["other thread", "loop thread"]


# Asynchronous generators and the task factory


def test_shutdown_asyncgens_finalizes_unfinished_generators(loop: asyncio.AbstractEventLoop) -> None:
    finalized: list[str] = []

    async def numbers():  # type: ignore[no-untyped-def]
        try:
            for i in range(10):
                yield i
                await asyncio.sleep(0)
        finally:
            finalized.append("finally ran")

    kept = []

    async def main() -> None:
        agen = numbers()
        kept.append(agen)  # still referenced: only shutdown_asyncgens can finish it
        assert await agen.__anext__() == 0

    loop.run_until_complete(main())
    assert finalized == []
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert finalized == ["finally ran"]


def test_a_generator_dropped_half_way_is_closed_on_the_loop(loop: asyncio.AbstractEventLoop) -> None:
    finalized: list[bool] = []

    async def ticker():  # type: ignore[no-untyped-def]
        try:
            while True:
                yield asyncio.get_running_loop()
                await asyncio.sleep(0)
        finally:
            finalized.append(asyncio.get_running_loop() is loop)

    async def main() -> None:
        async for _ in ticker():
            break  # the generator is dropped unfinished
        for _ in range(10):
            await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert finalized == [True]


def test_the_task_factory_makes_every_task(loop: asyncio.AbstractEventLoop) -> None:
    made: list[str] = []

    def factory(loop_: asyncio.AbstractEventLoop, coro, **kwargs):  # type: ignore[no-untyped-def]
        made.append(type(loop_).__name__)
        return asyncio.Task(coro, loop=loop_, **kwargs)

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def child() -> str:
        return "done"

    async def main() -> tuple[str, str]:
        task = asyncio.get_running_loop().create_task(child(), name="named")
        return await task, task.get_name()

    assert loop.run_until_complete(main()) == ("done", "named")
    assert len(made) == 2  # main's task and child's
    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    with pytest.raises(TypeError):
        loop.set_task_factory(42)  # type: ignore[arg-type]


def test_create_task_names_the_task_and_create_future_attaches_to_the_loop(loop: asyncio.AbstractEventLoop) -> None:
    async def child() -> str:
        return "done"

    async def main() -> tuple[str, str]:
        task = loop.create_task(child(), name="named")
        return task.get_name(), await task

    assert loop.run_until_complete(main()) == ("named", "done")
    future = loop.create_future()
    assert future.get_loop() is loop
    assert not future.done()


def test_create_task_and_create_future_make_the_classes_asyncio_names_at_the_call(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    class MyTask(asyncio.Task):  # type: ignore[type-arg]
        pass

    class MyFuture(asyncio.Future):  # type: ignore[type-arg]
        pass

    async def child() -> None:
        pass

    before = loop.create_task(child())
    monkeypatch.setattr(asyncio.tasks, "Task", MyTask)
    monkeypatch.setattr(asyncio.futures, "Future", MyFuture)
    after = loop.create_task(child())
    future = loop.create_future()
    monkeypatch.undo()
    loop.run_until_complete(asyncio.gather(before, after))
    assert (type(before), type(after), type(future)) == (asyncio.Task, MyTask, MyFuture)


#: asyncio's create_task takes ``context=`` from 3.11; mioloop's on 3.10 too.
TASK_CONTEXT = ["mioloop", "asyncio"] if sys.version_info >= (3, 11) else ["mioloop"]


@pytest.mark.parametrize("loop", TASK_CONTEXT, indirect=True)
def test_create_task_runs_the_task_in_the_context_given(loop: asyncio.AbstractEventLoop) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outside")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "given")

    async def child() -> str:
        return var.get()

    async def main() -> tuple[str, str]:
        plain = loop.create_task(child())
        in_ctx = loop.create_task(child(), context=ctx)  # type: ignore[call-arg,unused-ignore]
        return await plain, await in_ctx

    assert loop.run_until_complete(main()) == ("outside", "given")


def test_create_task_and_create_future_refuse_bad_calls(loop: asyncio.AbstractEventLoop) -> None:
    async def child() -> None:
        pass

    coro = child()
    with pytest.raises(TypeError):
        loop.create_task(coro, "positional name")  # type: ignore[misc]
    with pytest.raises(TypeError):
        loop.create_future(1)  # type: ignore[call-arg]
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.create_task(coro)
    coro.close()


# Running and stopping


def test_stop_before_run_forever_runs_one_iteration(loop: asyncio.AbstractEventLoop) -> None:
    ran: list[str] = []
    loop.stop()
    loop.call_soon(ran.append, "first")
    loop.run_forever()
    assert ran == ["first"]
    # The stop was spent: the next run goes on until its own stop.
    loop.call_soon(ran.append, "second")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ran == ["first", "second"]


def test_stop_before_run_until_complete_still_finishes_a_one_step_task(loop: asyncio.AbstractEventLoop) -> None:
    async def answer() -> int:
        return 42

    loop.stop()
    assert loop.run_until_complete(answer()) == 42


def test_keyboard_interrupt_out_of_run_until_complete_leaves_no_stale_stop(loop: asyncio.AbstractEventLoop) -> None:
    async def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(interrupted())
    ran: list[str] = []
    loop.call_later(0.01, ran.append, "timer")
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert ran == ["timer"]


# Errors around errors, and closing with work left


def test_an_exception_handler_that_raises_is_logged_and_the_loop_goes_on(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        raise RuntimeError("the handler broke")

    def fails() -> None:
        raise ZeroDivisionError

    loop.set_exception_handler(handler)
    ran: list[str] = []
    loop.call_soon(fails)
    loop.call_soon(ran.append, "after")
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.run_until_complete(asyncio.sleep(0.01))
    assert ran == ["after"]
    [record] = [r for r in caplog.records if "Unhandled error in exception handler" in r.getMessage()]
    assert isinstance(record.exc_info[1], RuntimeError)  # type: ignore[index]


def test_closing_with_a_task_pending_leaves_it_pending_and_reports_it_when_dropped(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    async def forever() -> None:
        await asyncio.sleep(3600)

    task = loop.create_task(forever())
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    assert loop.is_closed()
    assert not task.done()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        del task
        gc.collect()
    assert any("Task was destroyed but it is pending!" in r.getMessage() for r in caplog.records)


def test_a_timer_handle_tells_the_time_it_was_given(loop: asyncio.AbstractEventLoop) -> None:
    # aiohttp schedules at whole seconds (ceil) and reads the handle's _when back.
    at_int = loop.call_at(int(loop.time()) + 100, print)
    at_float = loop.call_at(loop.time() + 100.123456789, print)
    assert type(at_int.when()) is int and type(at_int._when) is int  # type: ignore[attr-defined]
    assert at_float.when() == at_float._when  # type: ignore[attr-defined]
    assert f"when={at_int.when()} " in repr(at_int)
    loop.set_debug(1)  # any truthy value, as asyncio takes it
    assert loop.get_debug()
    at_int.cancel()
    at_float.cancel()


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio does so from 3.12 (get_context() is new there)")
@pytest.mark.parametrize("failing", ["callback", "timer", "task"])
def test_the_exception_handler_runs_in_the_context_of_what_failed(
    loop: asyncio.AbstractEventLoop, failing: str
) -> None:
    # CPython gh-96704: the handler sees the context variables the failure set.
    seen: list[str] = []
    loop.set_exception_handler(lambda _, context: seen.append(var.get()))

    def callback() -> None:
        var.set("inside")
        raise ZeroDivisionError

    async def task() -> None:
        var.set("inside")
        raise ZeroDivisionError

    async def main() -> None:
        if failing == "callback":
            handle = loop.call_soon(callback)
            assert handle.get_context() is not None
        elif failing == "timer":
            timer = loop.call_later(0, callback)
            assert timer.get_context() is not None
            await asyncio.sleep(0.01)
        else:
            loop.create_task(task())  # dropped: reported as never retrieved
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        gc.collect()

    loop.run_until_complete(main())
    assert seen == ["inside"]


def test_a_timer_whose_context_is_entered_elsewhere_fails_and_the_loop_goes_on(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # The timer's context is the one running the loop: the callback cannot enter
    # it, and that failure is reported without the report needing it either.
    context = contextvars.copy_context()
    ran: list[str] = []

    def main() -> None:
        loop.call_later(0, ran.append, "timer", context=context)
        loop.run_until_complete(asyncio.sleep(0.01))

    context.run(main)
    assert ran == []
    assert loop.run_until_complete(asyncio.sleep(0, "still running")) == "still running"


#: Where ``create_task`` passes other keywords on to the task: asyncio's from
#: 3.13.4 (3.13.0 here refuses them), mioloop's on 3.13 and later.
TASK_KEYWORDS = ["mioloop", "asyncio"] if sys.version_info >= (3, 14) else ["mioloop"]


@pytest.mark.skipif(sys.version_info < (3, 13), reason="create_task takes no other keywords before 3.13")
@pytest.mark.parametrize("loop", TASK_KEYWORDS, indirect=True)
def test_create_task_passes_other_keywords_to_the_task(loop: asyncio.AbstractEventLoop) -> None:
    steps: list[str] = []

    async def child() -> None:
        steps.append("child started")

    async def main() -> None:
        task = loop.create_task(child(), eager_start=True)  # type: ignore[call-arg]
        steps.append("create_task returned")
        await task

    loop.run_until_complete(main())
    assert steps == ["child started", "create_task returned"]


@pytest.mark.skipif(sys.version_info < (3, 14), reason="asyncio passes name and context to the factory from 3.14")
def test_a_task_factory_is_given_name_and_context_from_314(loop: asyncio.AbstractEventLoop) -> None:
    given: list[dict[str, Any]] = []

    def factory(loop_: asyncio.AbstractEventLoop, coro, **kwargs):  # type: ignore[no-untyped-def]
        given.append(kwargs)
        return asyncio.Task(coro, loop=loop_, **kwargs)

    loop.set_task_factory(factory)

    async def child() -> None:
        pass

    async def main() -> None:
        await loop.create_task(child(), name="named", context=contextvars.copy_context())

    loop.run_until_complete(main())
    assert sorted(given[-1]) == ["context", "name"]
    assert given[-1]["name"] == "named"


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="create_task passes other keywords on from 3.13")
def test_create_task_refuses_other_keywords_before_313(loop: asyncio.AbstractEventLoop) -> None:
    async def child() -> None:
        pass

    coro = child()
    with pytest.raises(TypeError):
        loop.create_task(coro, eager_start=True)  # type: ignore[call-arg]
    coro.close()
