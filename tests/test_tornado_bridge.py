"""Tornado's own IOLoop on the engine: ``TornadoIOLoop``.

Each scenario runs on ``mioloop.TornadoIOLoop`` and on Tornado's own
``AsyncIOLoop`` over asyncio's loop, with the same expectations."""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.iostream
import tornado.netutil
import tornado.tcpclient
import tornado.tcpserver
import tornado.web
from tornado.ioloop import IOLoop
from tornado.platform.asyncio import AsyncIOLoop

import mioloop
from mioloop import TornadoIOLoop

from .conftest import LogCapture


@pytest.fixture
def tornado_configured() -> Iterator[None]:
    """Restores Tornado's configured IOLoop class."""
    configured = IOLoop.configured_class()
    yield
    IOLoop.configure(configured)


@pytest.fixture(params=["mioloop", "asyncio"])
def io_loop(request: pytest.FixtureRequest) -> Iterator[IOLoop]:
    """A Tornado IOLoop of its own: mioloop's, or Tornado's on asyncio's loop."""
    kind = TornadoIOLoop if request.param == "mioloop" else AsyncIOLoop
    loop = kind(make_current=False)
    yield loop
    if not loop.asyncio_loop.is_closed():
        loop.close(all_fds=True)


def run_until(io_loop: IOLoop, done: list[object], timeout: float = 5.0) -> None:
    """Runs the loop until ``done`` is not empty; fails after ``timeout``."""

    def check() -> None:
        if done or time.monotonic() > deadline:
            io_loop.stop()
        else:
            io_loop.call_later(0.001, check)

    deadline = time.monotonic() + timeout
    io_loop.add_callback(check)
    io_loop.start()
    assert done, f"nothing happened within {timeout} s"


@pytest.fixture
def app_log() -> Iterator[LogCapture]:
    logger = logging.getLogger("tornado.application")
    capture = LogCapture()
    logger.addHandler(capture)
    yield capture
    logger.removeHandler(capture)


# Making one (the front doors, legacy included, are in test_front_door.py)


def test_configure_by_name_makes_new_ioloops_own_a_mioloop_loop(tornado_configured: None) -> None:
    IOLoop.configure("mioloop.TornadoIOLoop")
    io_loop = IOLoop(make_current=False)
    assert isinstance(io_loop, TornadoIOLoop)
    assert isinstance(io_loop.asyncio_loop, mioloop.EventLoop)
    assert io_loop.run_sync(lambda: asyncio.sleep(0, "done")) == "done"
    io_loop.close()
    assert io_loop.asyncio_loop.is_closed()


def test_tornado_ioloop_refuses_an_asyncio_loop_of_another_kind() -> None:
    other = asyncio.SelectorEventLoop()
    with pytest.raises(TypeError, match=r"mioloop\.EventLoop"):
        TornadoIOLoop(asyncio_loop=other, make_current=False)
    assert not other.is_closed()
    other.close()


def test_importing_mioloop_does_not_import_tornado() -> None:
    code = "import sys, mioloop; mioloop.new_event_loop().close(); print('tornado' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# Tornado's semantics on the engine


def test_timeouts_take_wall_clock_deadlines_and_timedeltas(io_loop: IOLoop) -> None:
    fired: list[str] = []
    io_loop.add_timeout(time.time() + 0.01, fired.append, "wall")
    io_loop.add_timeout(datetime.timedelta(milliseconds=5), fired.append, "delta")
    io_loop.call_at(io_loop.time() - 1, fired.append, "past")
    cancelled = io_loop.call_later(0.005, fired.append, "cancelled")
    io_loop.remove_timeout(cancelled)
    io_loop.call_later(0.05, io_loop.stop)
    io_loop.start()
    assert fired == ["past", "delta", "wall"]
    assert abs(io_loop.time() - time.time()) < 1
    with pytest.raises(TypeError, match="Unsupported deadline"):
        io_loop.add_timeout("soon", lambda: None)  # type: ignore[arg-type]


def test_add_callback_passes_keywords_and_wakes_the_loop_from_another_thread(io_loop: IOLoop) -> None:
    got: list[object] = []

    def producer() -> None:
        time.sleep(0.02)
        io_loop.add_callback(lambda *a, **k: got.append((a, k)), 1, two=2)

    thread = threading.Thread(target=producer)
    io_loop.add_callback(thread.start)
    run_until(io_loop, got)
    thread.join()
    assert got == [((1,), {"two": 2})]


def test_a_callbacks_error_is_logged_on_tornado_application_and_the_loop_goes_on(
    io_loop: IOLoop, app_log: LogCapture
) -> None:
    done: list[bool] = []

    def fails() -> None:
        raise ZeroDivisionError("boom")

    async def coroutine_fails() -> None:
        raise KeyError("coro boom")

    io_loop.add_callback(fails)
    io_loop.spawn_callback(coroutine_fails)
    io_loop.call_later(0.01, done.append, True)
    run_until(io_loop, done)
    errors = [r.exc_info[1] for r in app_log.records if r.exc_info]
    assert [type(e) for e in errors] == [ZeroDivisionError, KeyError]
    assert all(r.getMessage().startswith("Exception in callback") for r in app_log.records)


def test_handlers_get_the_object_and_the_events_and_follow_updates(
    io_loop: IOLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    events: list[tuple[object, int]] = []

    def on_a(fileobj: object, mask: int) -> None:
        events.append((fileobj, mask))
        if mask & IOLoop.READ:
            a.recv(10)
            io_loop.update_handler(a, IOLoop.WRITE)
        else:
            io_loop.remove_handler(a)

    io_loop.add_handler(a, on_a, IOLoop.READ)
    b.send(b"x")
    io_loop.call_later(0.05, io_loop.stop)
    io_loop.start()
    assert events == [(a, IOLoop.READ), (a, IOLoop.WRITE)]
    io_loop.add_handler(b, on_a, IOLoop.READ)
    with pytest.raises(ValueError):
        io_loop.add_handler(b, on_a, IOLoop.READ)
    io_loop.remove_handler(b)


def test_close_all_fds_closes_objects_that_remove_their_own_handler(io_loop: IOLoop) -> None:
    a, b = socket.socketpair()

    class Stream:
        def fileno(self) -> int:
            return a.fileno()

        def close(self) -> None:
            io_loop.remove_handler(self)
            a.close()

    stream = Stream()
    io_loop.add_handler(stream, lambda *_: None, IOLoop.READ)
    io_loop.close(all_fds=True)
    assert a.fileno() == -1
    b.close()


# Tornado's stack on it


def test_http_server_and_client_round_trip(io_loop: IOLoop) -> None:
    class Hello(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write("hello " + self.get_argument("name"))

    async def main() -> list[bytes]:
        app = tornado.web.Application([(r"/", Hello)])
        [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets([sock])
        port = sock.getsockname()[1]
        client = tornado.httpclient.AsyncHTTPClient()
        bodies = []
        for name in ("a", "b"):
            response = await client.fetch(f"http://127.0.0.1:{port}/?name={name}")
            bodies.append(response.body)
        server.stop()
        await server.close_all_connections()
        client.close()
        return bodies

    assert io_loop.run_sync(main) == [b"hello a", b"hello b"]


def test_iostream_echo_through_a_tcp_server(io_loop: IOLoop) -> None:
    class Echo(tornado.tcpserver.TCPServer):
        async def handle_stream(self, stream: tornado.iostream.IOStream, address: object) -> None:
            try:
                while True:
                    line = await stream.read_until(b"\n")
                    await stream.write(line.upper())
            except tornado.iostream.StreamClosedError:
                pass

    async def main() -> list[bytes]:
        [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        server = Echo()
        server.add_sockets([sock])
        stream = await tornado.tcpclient.TCPClient().connect("127.0.0.1", sock.getsockname()[1])
        replies = []
        for line in (b"one\n", b"two\n" * 1000):
            await stream.write(line)
            replies.append(await stream.read_bytes(len(line)))
        stream.close()
        server.stop()
        return replies

    assert io_loop.run_sync(main) == [b"ONE\n", b"TWO\n" * 1000]


def test_subprocess_exit_callbacks_run_on_sigchld(io_loop: IOLoop) -> None:
    """Tornado's ``Subprocess`` hears of its children through
    ``add_signal_handler(SIGCHLD)`` on the running loop."""
    from tornado.process import Subprocess

    async def main() -> tuple[list[int], int, bytes]:
        Subprocess.initialize()
        try:
            exits: list[int] = []
            done = asyncio.get_running_loop().create_future()
            child = Subprocess(["sh", "-c", "exit 4"])
            child.set_exit_callback(lambda code: (exits.append(code), done.set_result(None)))
            await asyncio.wait_for(done, 5)
            echo = Subprocess(["echo", "piped"], stdout=Subprocess.STREAM)
            output = await echo.stdout.read_until_close()
            code = await asyncio.wait_for(echo.wait_for_exit(raise_error=False), 5)
            return exits, code, output
        finally:
            Subprocess.uninitialize()

    assert io_loop.run_sync(main) == ([4], 0, b"piped\n")
