"""Garbage collection, exit and fork (RELIABILITY 28-30)."""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import functools
import gc
import os
import socket
import subprocess
import sys
import textwrap
import threading
import weakref

import pytest

from mioloop import EventLoop, IOLoop

from .conftest import run_until


class Payload:
    pass


def on_event(payload: Payload, fd: object, events: int) -> None:
    pass


def test_close_and_collect_release_callbacks_arguments_and_the_loop() -> None:
    loop = IOLoop(make_current=False)
    payload = Payload()

    def callback(p: Payload) -> None:
        pass

    refs = [weakref.ref(loop), weakref.ref(payload), weakref.ref(callback)]
    loop.add_callback(callback, payload)
    loop.add_timeout(loop.time() + 60, callback, payload)
    a, b = socket.socketpair()
    loop.add_handler(a, functools.partial(on_event, payload), IOLoop.READ)
    loop.close()
    del loop, payload, callback
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
    a.close()
    b.close()


@pytest.mark.parametrize("via", ["callback", "timeout", "handler", "call_soon"])
def test_cycle_through_the_loop_is_collected_without_close(via: str) -> None:
    loop = IOLoop(make_current=False)
    payload = Payload()
    payload.loop = loop  # type: ignore[attr-defined]
    callback = functools.partial(id, payload)
    sock = socket.socket()
    if via == "callback":
        loop.add_callback(callback)
    elif via == "timeout":
        loop.add_timeout(loop.time() + 60, callback)
    elif via == "call_soon":
        loop.call_soon(callback)
    else:
        loop.add_handler(sock, functools.partial(on_event, payload), IOLoop.READ)
    refs = [weakref.ref(loop), weakref.ref(payload)]
    del loop, payload, callback
    gc.collect()
    assert [r() for r in refs] == [None, None]
    sock.close()


def test_timer_handle_does_not_keep_the_loop_alive() -> None:
    loop = EventLoop()
    handle = loop.call_later(60, lambda: None)
    ref = weakref.ref(loop)
    # Dropped open, the asyncio face warns as asyncio does.
    with pytest.warns(ResourceWarning, match="unclosed event loop"):
        del loop
        gc.collect()
    assert ref() is None
    handle.cancel()  # harmless once the loop is gone


def test_call_soon_handles_are_freed_once_run_and_dropped() -> None:
    # Each live handle holds a reference to its type: the count tells whether any
    # handle outlived its callback.
    loop = EventLoop()
    handle_type = type(loop.call_soon(lambda: None))
    loop.run_until_complete(asyncio.sleep(0))
    baseline = sys.getrefcount(handle_type)
    kept = [loop.call_soon(lambda: None) for _ in range(1000)]
    assert sys.getrefcount(handle_type) == baseline + 1000
    del kept
    loop.run_until_complete(asyncio.sleep(0))
    assert sys.getrefcount(handle_type) == baseline
    loop.close()


@pytest.mark.parametrize("face", ["asyncio", "tornado"])
@pytest.mark.parametrize("shape", ["chain", "burst"])
def test_a_callback_that_ran_lets_go_of_its_function_arguments_and_context(face: str, shape: str) -> None:
    # A chain runs one callback an iteration (taken under the iteration's first
    # lock), a burst runs them in batches: both let go of what each one held.
    loop = EventLoop() if face == "asyncio" else IOLoop()
    schedule = loop.call_soon if face == "asyncio" else loop.add_callback
    payload = Payload()
    left = [200]
    seen: list[Payload] = []

    def step(arg: Payload) -> None:
        seen.append(arg)
        left[0] -= 1
        if not left[0]:
            loop.stop()
        elif shape == "chain":
            schedule(step, arg)

    func_before, payload_before = sys.getrefcount(step), sys.getrefcount(payload)
    if shape == "chain":
        schedule(step, payload)
    else:
        for _ in range(left[0]):
            schedule(step, payload)
    if isinstance(loop, IOLoop):
        loop.start()
    else:
        loop.run_forever()
    assert len(seen) == 200
    seen.clear()
    assert (sys.getrefcount(step), sys.getrefcount(payload)) == (func_before, payload_before)
    loop.close()


def test_a_new_handle_never_inherits_the_state_of_a_freed_one() -> None:
    # The memory of freed handles is kept for the next ones: what the old ones
    # were (cancelled, made in debug mode, weakly referenced) must not show.
    loop = EventLoop()
    loop.set_debug(True)
    old = [loop.call_soon(print, "old") for _ in range(8)]
    old += [loop.call_later(60, print, "old") for _ in range(8)]
    refs = [weakref.ref(handle) for handle in old]
    for handle in old:
        handle.cancel()
    del old, handle
    loop.run_until_complete(asyncio.sleep(0))
    assert all(ref() is None for ref in refs)
    loop.set_debug(False)
    new = [loop.call_soon(len, "new") for _ in range(8)]
    new += [loop.call_later(60, len, "new") for _ in range(8)]
    for handle in new:
        assert not handle.cancelled()
        assert handle._source_traceback is None  # type: ignore[attr-defined]
        assert "len(" in repr(handle) and "print" not in repr(handle)
        assert weakref.ref(handle)() is handle
        handle.cancel()
    loop.close()


def test_collections_while_callbacks_wait_in_every_queue_leave_them_intact() -> None:
    # A callback's context copy stays on the collector's lists in a short queue
    # and is taken off in a long one, a timer or another thread's: collections
    # while they wait, and while each runs, must find every list consistent, and
    # each callback must still see its own context.
    loop = EventLoop()
    var: contextvars.ContextVar[int] = contextvars.ContextVar("var")
    seen: list[int] = []
    all_ran = loop.create_future()
    count = 300

    def check() -> None:
        gc.collect()
        seen.append(var.get(-1))
        if len(seen) == count:
            all_ran.set_result(None)

    def schedule(i: int, how: str) -> asyncio.Handle | None:
        var.set(i)
        if how == "soon":
            return loop.call_soon(check)
        if how == "later":
            return loop.call_later(0, check)
        thread = threading.Thread(target=lambda: (var.set(i), loop.call_soon_threadsafe(check)))
        thread.start()
        thread.join()
        return None

    cancelled = []
    for i in range(count):
        contextvars.copy_context().run(schedule, i, ("soon", "soon", "later", "thread")[i % 4])
        if i % 7 == 0:
            cancelled.append(contextvars.copy_context().run(schedule, -1 - i, ("soon", "later")[i % 2]))
        if i % 50 == 0:
            gc.collect()
    for handle in cancelled:
        assert handle is not None
        handle.cancel()
    gc.collect()
    loop.run_until_complete(all_ran)
    gc.collect()
    assert sorted(seen) == list(range(count))
    loop.close()


def test_call_soon_handles_cannot_be_made_or_subclassed_from_python() -> None:
    loop = EventLoop()
    handle_type = type(loop.call_soon(lambda: None))
    with pytest.raises(TypeError, match="cannot create"):
        handle_type()
    with pytest.raises(TypeError, match="not an acceptable base type"):
        type("Sub", (handle_type,), {})
    loop.close()


def test_timer_handles_are_freed_once_run_or_cancelled_and_dropped() -> None:
    # As for call_soon's handles: each live timer handle holds a reference to its type.
    loop = EventLoop()
    handle_type = type(loop.call_later(0, lambda: None))
    loop.run_until_complete(asyncio.sleep(0.01))
    baseline = sys.getrefcount(handle_type)
    ran = [loop.call_later(0, lambda: None) for _ in range(500)]
    cancelled = [loop.call_at(loop.time() + 60, lambda: None) for _ in range(500)]
    assert sys.getrefcount(handle_type) == baseline + 1000
    for handle in cancelled:
        handle.cancel()
    assert all(h.cancelled() for h in cancelled) and not any(h.cancelled() for h in ran)
    loop.run_until_complete(asyncio.sleep(0.01))
    del ran, cancelled, handle
    assert sys.getrefcount(handle_type) == baseline
    loop.close()


def test_timer_handles_cannot_be_made_or_subclassed_from_python() -> None:
    loop = EventLoop()
    handle = loop.call_later(60, lambda: None)
    assert handle.when() == pytest.approx(loop.time() + 60, abs=1)
    assert repr(handle).startswith("<TimerHandle when=")
    with pytest.raises(TypeError, match="cannot create"):
        type(handle)()
    with pytest.raises(TypeError, match="not an acceptable base type"):
        type("Sub", (type(handle),), {})
    handle.cancel()
    assert repr(handle).startswith("<TimerHandle cancelled when=")
    loop.close()


def heap_in_use() -> int:
    """Bytes the C allocator has handed out (glibc's mallinfo2), after a collection."""
    gc.collect()

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
        ]

    mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


@pytest.mark.parametrize("what", ["timers", "callbacks"])
def test_a_burst_gives_its_memory_back_once_it_ran(loop: asyncio.AbstractEventLoop, what: str) -> None:
    # 200,000 timers used to leave 32 MB behind in the loop, 200,000 callbacks 10 MB,
    # until the loop itself was freed (asyncio's loop: nothing). Debug mode (on under
    # -X dev) would keep a traceback per handle on asyncio's side.
    loop.set_debug(False)
    loop.run_until_complete(asyncio.sleep(0))
    before = heap_in_use()
    for _ in range(200_000):
        if what == "timers":
            loop.call_later(0, int)
        else:
            loop.call_soon(int)
    loop.run_until_complete(asyncio.sleep(0.01))
    assert heap_in_use() - before < 2_000_000


def test_exit_without_closing_the_loop_prints_nothing() -> None:
    code = textwrap.dedent(
        """
        import os
        from mioloop import IOLoop
        loop = IOLoop()
        r, w = os.pipe()
        loop.add_handler(r, lambda fd, ev: None, IOLoop.READ)
        loop.add_timeout(loop.time() + 60, print)
        loop.add_callback(print, "queued")
        loop.run_sync(lambda: None)
        loop.add_callback(print, "never")
        """
    )
    result = subprocess.run([sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout == "queued\n"


# pytest's faulthandler watchdog (faulthandler_timeout) is a second OS thread, which
# Python 3.15 counts before a fork. The child here runs only the loop.
FORK_WITH_WATCHDOG = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


@FORK_WITH_WATCHDOG
def test_child_after_fork_gets_a_clear_error_and_the_parent_keeps_working(io_loop: IOLoop) -> None:
    a, b = socket.socketpair()
    got = []
    io_loop.add_handler(a, lambda s, ev: got.append(s.recv(100)), IOLoop.READ)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            try:
                io_loop.add_handler(b, lambda fd, ev: None, IOLoop.READ)
            except RuntimeError as e:
                if "fork" in str(e):
                    try:
                        io_loop.start()
                    except RuntimeError:
                        code = 0
            if code == 0:
                code = 2  # until the child's close and fresh loop have worked
                io_loop.close()  # must not touch the parent's poll
                fresh = IOLoop(make_current=False)
                fresh.add_callback(fresh.stop)
                fresh.start()
                fresh.close()
                code = 0
        finally:
            os.write(w, bytes([code]))
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    child_result = os.read(r, 1)
    os.close(r)
    assert child_result == b"\x00"
    assert os.waitstatus_to_exitcode(status) == 0
    b.send(b"still here")
    run_until(io_loop, lambda: bool(got))
    assert got == [b"still here"]
    io_loop.remove_handler(a)
    a.close()
    b.close()


@FORK_WITH_WATCHDOG
def test_a_forked_child_serves_on_a_loop_of_its_own_while_the_parent_serves_on(
    request: pytest.FixtureRequest,
) -> None:
    """The parent's asyncio-face loop runs an echo server; the forked child
    refuses the inherited loop, then serves and talks to itself on a new loop."""

    async def start_echo(loop: asyncio.AbstractEventLoop) -> tuple[asyncio.AbstractServer, int]:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.read(100))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        return server, server.sockets[0].getsockname()[1]

    async def ask(port: int, message: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(message)
        reply = await reader.read(100)
        writer.close()
        await writer.wait_closed()
        return reply

    parent = EventLoop()
    request.addfinalizer(parent.close)
    server, port = parent.run_until_complete(start_echo(parent))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            try:
                parent.run_until_complete(asyncio.sleep(0))
            except RuntimeError as e:
                code = 0 if "fork" in str(e) else 3
            if code == 0:
                code = 2
                child = EventLoop()
                child_server, child_port = child.run_until_complete(start_echo(child))
                reply = child.run_until_complete(asyncio.wait_for(ask(child_port, b"child"), 5))
                child_server.close()
                child.close()
                code = 0 if reply == b"child" else 4
        finally:
            os.write(w, bytes([code]))
            os._exit(code)
    os.close(w)
    # The parent serves while the child runs.
    assert parent.run_until_complete(asyncio.wait_for(ask(port, b"parent"), 5)) == b"parent"
    _, status = os.waitpid(pid, 0)
    child_result = os.read(r, 1)
    os.close(r)
    assert child_result == b"\x00"
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent.run_until_complete(asyncio.wait_for(ask(port, b"again"), 5)) == b"again"
    server.close()


@pytest.mark.parametrize("face", ["asyncio", "ioloop"])
def test_a_closed_loop_holds_no_fd_however_long_it_lives(face: str) -> None:
    # Its poll, the poll's registry, the waker and the signal socket pair go at
    # close(), not when the object is collected: 100 closed loops kept alive hold
    # none (asyncio's own loop: none either).
    before = len(os.listdir("/dev/fd"))
    kept = []
    for _ in range(100):
        loop = EventLoop() if face == "asyncio" else IOLoop(make_current=False)
        if face == "asyncio":
            loop.run_until_complete(asyncio.sleep(0))
        else:
            loop.run_sync(lambda: None)
        loop.close()
        kept.append(loop)
    assert len(os.listdir("/dev/fd")) == before
    # Closed, each still answers as a closed loop does.
    assert all(loop.is_closed() for loop in kept if isinstance(loop, EventLoop))
    with pytest.raises(RuntimeError, match="closed"):
        kept[0].call_soon(print) if face == "asyncio" else kept[0].add_handler(0, print, IOLoop.READ)


def test_a_class_without_the_faces_hooks_cannot_make_a_loop() -> None:
    from mioloop._mioloop import LoopCore

    class Bare(LoopCore):  # type: ignore[misc]
        pass

    with pytest.raises(TypeError, match="_dispatch_signals"):
        Bare()
