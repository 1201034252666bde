"""add_reader / add_writer of the asyncio face, checked against asyncio's own selector
loop: the same scenario on both loops, the same result."""

from __future__ import annotations

import asyncio
import socket

import pytest

import mioloop


def run_briefly(loop: asyncio.AbstractEventLoop, seconds: float = 0.05) -> None:
    loop.run_until_complete(asyncio.sleep(seconds))


def test_reader_is_level_triggered(loop: asyncio.AbstractEventLoop, pair) -> None:
    a, b = pair
    b.send(b"abc")
    got = []
    loop.add_reader(a, lambda: got.append(a.recv(1)))
    run_briefly(loop)
    assert got == [b"a", b"b", b"c"]
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False


def test_writer_runs_while_writable_and_is_removed(loop: asyncio.AbstractEventLoop, pair) -> None:
    a, _ = pair
    calls = []

    def on_writable(tag: str) -> None:
        calls.append(tag)
        if len(calls) == 3:
            loop.remove_writer(a.fileno())

    loop.add_writer(a.fileno(), on_writable, "w")
    run_briefly(loop)
    assert calls == ["w", "w", "w"]
    assert loop.remove_writer(a.fileno()) is False


def test_reader_and_writer_on_one_fd(loop: asyncio.AbstractEventLoop, pair) -> None:
    a, b = pair
    seen: list[str] = []
    loop.add_writer(a, lambda: (seen.append("w"), loop.remove_writer(a)))
    loop.add_reader(a, lambda: (seen.append("r"), a.recv(10), loop.remove_reader(a)))
    b.send(b"x")
    run_briefly(loop)
    assert sorted(seen) == ["r", "w"]


def test_add_reader_replaces_the_previous_callback(loop: asyncio.AbstractEventLoop, pair) -> None:
    a, b = pair
    seen = []
    loop.add_reader(a, seen.append, "old")
    loop.add_reader(a, lambda: (seen.append("new"), a.recv(10)))
    b.send(b"x")
    run_briefly(loop, 0.02)
    loop.remove_reader(a)
    assert seen and set(seen) == {"new"}


def test_bad_file_descriptors_raise_value_error(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(ValueError):
        loop.add_reader(-1, print)
    with pytest.raises(ValueError):
        loop.add_reader(object(), print)  # type: ignore[arg-type]


def test_closed_loop_refuses_readers(loop: asyncio.AbstractEventLoop, pair) -> None:
    loop.close()
    with pytest.raises(RuntimeError):
        loop.add_reader(pair[0], print)


def test_tornado_http_server_and_client_run_on_the_event_loop() -> None:
    import tornado.httpclient
    import tornado.web

    class Hello(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write("Hello, world")

    loop = mioloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:

        async def main() -> list[bytes]:
            sock, port = _bound_socket()
            app = tornado.web.Application([(r"/", Hello)])
            from tornado.httpserver import HTTPServer

            server = HTTPServer(app)
            server.add_sockets([sock])
            client = tornado.httpclient.AsyncHTTPClient()
            bodies = []
            for _ in range(3):  # keep-alive reuse and fresh connections alike
                response = await client.fetch(f"http://127.0.0.1:{port}/")
                bodies.append(response.body)
            server.stop()
            await server.close_all_connections()
            client.close()
            return bodies

        assert loop.run_until_complete(main()) == [b"Hello, world"] * 3
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _bound_socket() -> tuple[socket.socket, int]:
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock, sock.getsockname()[1]


def test_removing_a_closed_sockets_watcher_finds_it_by_the_socket(loop: asyncio.AbstractEventLoop) -> None:
    # anyio closes a socket while a receive waits on it, then removes the reader;
    # asyncio's selector finds the registration by the object. Once none is left,
    # the closed socket's fd (-1) is invalid.
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        loop.add_reader(a, lambda: None)
        loop.add_writer(c, lambda: None)
        a.close()
        c.close()
        assert loop.remove_reader(a) is True
        assert loop.remove_writer(c) is True
        for closed in (a, c):
            with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
                loop.remove_reader(closed)
            with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
                loop.remove_writer(closed)
        run_briefly(loop, 0.01)
    finally:
        for sock in (a, b, c, d):
            sock.close()


def test_removing_the_watcher_of_an_object_without_a_file_raises(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.remove_reader(object())
