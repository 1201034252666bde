"""asyncio's debug mode and resource warnings on the asyncio face, each scenario
run on mioloop and on asyncio's own loop with the same expectations."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
import weakref
from typing import Any

import pytest

import mioloop

from .conftest import open_fds


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def asyncio_log() -> Any:
    logger = logging.getLogger("asyncio")
    capture = Capture()
    logger.addHandler(capture)
    yield capture
    logger.removeHandler(capture)


def slow() -> None:
    time.sleep(0.06)


@pytest.mark.parametrize("debug", [True, False])
def test_slow_callbacks_are_logged_in_debug_mode_only(
    loop: asyncio.AbstractEventLoop, asyncio_log: Capture, debug: bool
) -> None:
    loop.set_debug(debug)
    loop.slow_callback_duration = 0.05  # type: ignore[attr-defined]
    loop.call_soon(slow)
    loop.call_soon(lambda: None)
    loop.call_later(0.001, slow)
    loop.run_until_complete(asyncio.sleep(0.05))
    slow_reports = [m for m in asyncio_log.messages if m.startswith("Executing") and "slow" in m]
    if debug:
        assert len(slow_reports) == 2
        assert all(" took 0.0" in m or " took 0.1" in m for m in slow_reports)
    else:
        assert slow_reports == []


def test_debug_mode_refuses_call_soon_from_another_thread(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(True)
    errors: list[BaseException] = []

    def from_thread() -> None:
        for schedule in (
            lambda: loop.call_soon(print),
            lambda: loop.call_later(1, print),
            lambda: loop.call_at(loop.time() + 1, print),
        ):
            try:
                schedule()
            except RuntimeError as exc:
                errors.append(exc)
        loop.call_soon_threadsafe(loop.stop)

    loop.call_soon(threading.Thread(target=from_thread).start)
    loop.run_forever()
    assert [str(e) for e in errors] == [
        "Non-thread-safe operation invoked on an event loop other than the current one"
    ] * 3


def test_debug_mode_tracks_where_coroutines_were_made(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(True)
    before = sys.get_coroutine_origin_tracking_depth()

    async def depth() -> int:
        return sys.get_coroutine_origin_tracking_depth()

    assert loop.run_until_complete(depth()) == asyncio.constants.DEBUG_STACK_DEPTH
    assert sys.get_coroutine_origin_tracking_depth() == before


def test_a_loop_dropped_open_warns_and_is_closed(loop_kind: str) -> None:
    loop = mioloop.new_event_loop() if loop_kind == "mioloop" else asyncio.SelectorEventLoop()
    with pytest.warns(ResourceWarning, match="unclosed event loop"):
        del loop
        gc.collect()


def test_a_transport_dropped_open_warns(loop: asyncio.AbstractEventLoop) -> None:
    async def connect() -> tuple[Any, Any]:
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        datagram, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        server.close()
        return transport, datagram

    transport, datagram = loop.run_until_complete(connect())
    with warnings.catch_warnings():
        # The server's side of the connection is dropped open too.
        warnings.simplefilter("ignore", ResourceWarning)
        loop.close()
        gc.collect()
    with pytest.warns(ResourceWarning, match="unclosed transport") as caught:
        del transport, datagram
        gc.collect()
    assert len([w for w in caught if "unclosed transport" in str(w.message)]) == 2


@pytest.mark.parametrize("kind", ["stream", "datagram"])
@pytest.mark.parametrize("loop_name", ["mioloop", "asyncio"])
def test_a_transport_in_a_cycle_collected_open_warns_and_prints_no_traceback(loop_name: str, kind: str) -> None:
    # The collector clears the socket's slots before it frees the transport: a
    # warning that ran then failed in socket.close() (_io_refs).
    code = f"""
import asyncio, gc, socket, mioloop
loop = mioloop.new_event_loop() if {loop_name!r} == "mioloop" else asyncio.SelectorEventLoop()
class Keep(asyncio.DatagramProtocol if {kind!r} == "datagram" else asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport  # a cycle: transport -> protocol -> transport
async def main():
    if {kind!r} == "datagram":
        return await loop.create_datagram_endpoint(Keep, local_addr=("127.0.0.1", 0))
    a, b = socket.socketpair()
    peer.append(b)  # kept open: the transport sees no EOF and stays open
    return await loop.connect_accepted_socket(Keep, a)
peer = []
made = loop.run_until_complete(main())
loop.close()
del made
gc.collect()
print("collected")
for sock in peer:
    sock.close()
"""
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "always::ResourceWarning", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout == "collected\n", result.stderr
    assert "unclosed transport" in result.stderr
    assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr


@pytest.fixture(params=["mioloop", "asyncio"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def test_a_loop_dropped_open_is_closed_even_when_warnings_are_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[type[BaseException]] = []
    # Keeps only the type: the hook's argument refers to the loop.
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: seen.append(type(unraisable.exc_value)))
    before = open_fds()
    loop = mioloop.new_event_loop()
    # Only close() gives a signal back: dropping the loop alone would not.
    loop.add_signal_handler(signal.SIGUSR2, print)
    assert signal.getsignal(signal.SIGUSR2) is not signal.SIG_DFL
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del loop
        gc.collect()
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL
    assert open_fds() == before
    assert seen == [ResourceWarning]


# Handles as asyncio shows them


def noop(*args: object) -> None:
    pass


def same_but_times(text: str) -> str:
    return re.sub(r"when=[0-9.]+", "when=T", text)


@pytest.mark.parametrize("debug", [False, True])
def test_handles_name_their_callback_as_asyncios_do(debug: bool) -> None:
    reprs: dict[str, list[str]] = {}
    for name, make in (("mioloop", mioloop.new_event_loop), ("asyncio", asyncio.SelectorEventLoop)):
        loop = make()
        loop.set_debug(debug)
        soon = loop.call_soon(noop, 1, "two")
        later = loop.call_later(60, functools.partial(noop, 3))
        shown = [repr(soon), repr(later)]
        soon.cancel()
        later.cancel()
        shown += [repr(soon), repr(later)]
        reprs[name] = [same_but_times(text) for text in shown]
        loop.close()
    assert reprs["mioloop"] == reprs["asyncio"]
    # (From 3.13 asyncio shows a callback's arguments in debug mode only.)
    shown = debug or sys.version_info < (3, 13)
    args, partial_args = ("1, 'two'", "3") if shown else ("", "")
    assert reprs["mioloop"][0].startswith(f"<Handle noop({args}) at ")
    assert reprs["mioloop"][1].startswith(f"<TimerHandle when=T noop({partial_args})() at ")
    assert ("created at " in reprs["mioloop"][0]) is debug


def test_handles_can_be_weakly_referenced_and_know_where_they_were_made_in_debug_mode(
    loop: asyncio.AbstractEventLoop,
) -> None:
    loop.set_debug(False)  # -X dev turns it on
    soon = loop.call_soon(noop)
    later = loop.call_later(60, noop)
    refs = [weakref.ref(soon), weakref.ref(later)]
    assert [ref() for ref in refs] == [soon, later]
    assert soon._source_traceback is None  # type: ignore[attr-defined]
    assert later._source_traceback is None  # type: ignore[attr-defined]
    loop.set_debug(True)
    made_here = sys._getframe().f_lineno + 1
    traced = [loop.call_soon(noop), loop.call_at(loop.time() + 60, noop)]
    for handle in traced:
        frame = handle._source_traceback[-1]  # type: ignore[attr-defined]
        assert (frame[0], frame[1]) == (__file__, made_here)
    loop.close()
    del soon, later, traced, handle
    gc.collect()
    assert [ref() for ref in refs] == [None, None]


def test_a_slow_task_step_is_named_by_its_task(loop: asyncio.AbstractEventLoop, asyncio_log: Capture) -> None:
    async def sluggish() -> None:
        time.sleep(0.06)

    loop.set_debug(True)
    loop.slow_callback_duration = 0.05  # type: ignore[attr-defined]
    loop.run_until_complete(loop.create_task(sluggish(), name="the-slow-one"))
    slow = [m for m in asyncio_log.messages if m.startswith("Executing")]
    assert len(slow) == 1, slow
    assert slow[0].startswith("Executing <Task finished name='the-slow-one' coro=<")
    assert "sluggish()" in slow[0]


@pytest.mark.parametrize("debug", [False, True])
def test_a_failing_callback_is_reported_with_its_handle(loop: asyncio.AbstractEventLoop, debug: bool) -> None:
    def boom() -> None:
        raise ZeroDivisionError

    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    loop.set_debug(debug)
    handle = loop.call_soon(boom)
    loop.run_until_complete(asyncio.sleep(0.01))
    [context] = reported
    assert context["message"].startswith("Exception in callback ")
    assert "boom() at " in context["message"]
    assert context["handle"] is handle
    assert isinstance(context["exception"], ZeroDivisionError)
    assert ("source_traceback" in context) is debug
