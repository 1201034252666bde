"""Shared fixtures: a fresh loop per test, closed afterwards."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterator

import pytest

import mioloop
from mioloop import IOLoop


@pytest.fixture(params=["mioloop", "asyncio"])
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    """The same test on mioloop's asyncio face and on asyncio's own selector loop
    (uvloop's Test_UV_X / Test_AIO_X pattern): both must behave alike."""
    loop = mioloop.new_event_loop() if request.param == "mioloop" else asyncio.SelectorEventLoop()
    yield loop
    loop.close()


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
