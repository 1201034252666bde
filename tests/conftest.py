"""Shared fixtures (a fresh loop per test, closed afterwards) and helpers."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

import mioloop
from mioloop import IOLoop

_T = TypeVar("_T")


def run(loop: asyncio.AbstractEventLoop, coro: Awaitable[_T], timeout: float = 10) -> _T:
    """Runs ``coro`` on ``loop``; fails (``TimeoutError``) after ``timeout`` seconds."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def open_fds() -> int:
    """How many fds this process has open (after collecting garbage)."""
    gc.collect()
    return len(os.listdir("/dev/fd"))  # Linux: a link to /proc/self/fd


@pytest.fixture(params=["mioloop", "asyncio"])
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    """The same test on mioloop's asyncio face and on asyncio's own selector loop
    (uvloop's Test_UV_X / Test_AIO_X pattern): both must behave alike."""
    loop = mioloop.new_event_loop() if request.param == "mioloop" else asyncio.SelectorEventLoop()
    yield loop
    loop.close()


@pytest.fixture(params=["tornado", "mioloop"])
def ioloop_kind(request: pytest.FixtureRequest) -> str:
    """Which classic IOLoop: Tornado's own (on asyncio) as the reference, or mioloop's."""
    return str(request.param)


@pytest.fixture
def make_loop(ioloop_kind: str) -> Iterator[Callable[[], Any]]:
    """Makes IOLoops of ``ioloop_kind``, closed (with their fds) afterwards."""
    import tornado.ioloop

    loops: list[Any] = []

    def make() -> Any:
        if ioloop_kind == "tornado":
            asyncio.set_event_loop(None)
            loop: Any = tornado.ioloop.IOLoop(make_current=False)
        else:
            loop = IOLoop(make_current=False)
        loops.append(loop)
        return loop

    yield make
    for loop in loops:
        try:
            loop.close(all_fds=True)
        except (RuntimeError, KeyError):
            # Tornado unmaps an IOLoop before a refused close: close what is left.
            if not loop.asyncio_loop.is_closed():
                loop.asyncio_loop.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair of non-blocking sockets, closed afterwards."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def io_loop() -> Iterator[IOLoop]:
    loop = IOLoop(make_current=True)
    yield loop
    if not loop.is_closed():
        loop.close(all_fds=True)
    IOLoop.clear_current()


def run_for(io_loop: IOLoop, seconds: float) -> None:
    """Runs the loop for about ``seconds``."""
    io_loop.add_timeout(io_loop.time() + seconds, io_loop.stop)
    io_loop.start()


def run_until(io_loop: IOLoop, done: Callable[[], bool], timeout: float = 5.0) -> None:
    """Runs the loop until ``done()`` (checked every millisecond); fails after ``timeout``."""
    deadline = io_loop.time() + timeout

    def check() -> None:
        if done() or io_loop.time() > deadline:
            io_loop.stop()
        else:
            io_loop.call_later(0.001, check)

    io_loop.add_callback(check)
    io_loop.start()
    assert done(), f"condition not reached within {timeout} s"


class LogCapture(logging.Handler):
    """Collects the records logged while installed."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def app_log() -> Iterator[LogCapture]:
    """Captures ``tornado.application``, where IOLoop logs callback errors."""
    logger = logging.getLogger("tornado.application")
    capture = LogCapture()
    logger.addHandler(capture)
    propagate, logger.propagate = logger.propagate, False
    yield capture
    logger.propagate = propagate
    logger.removeHandler(capture)
