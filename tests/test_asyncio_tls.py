"""TLS on the asyncio face: ``ssl=`` on the connection and server methods, and
``start_tls``. Each scenario runs on mioloop and on asyncio's own loop with the
same expectations. The certificates are in ``tests/certs`` (``make.sh``)."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import ssl
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Any

import pytest

from .conftest import open_fds, run

CERTS = Path(__file__).parent / "certs"


def server_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERTS / "server.pem")
    return context


def client_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(CERTS / "ca.pem"))


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def settle(loop: asyncio.AbstractEventLoop) -> None:
    """A few iterations, for closes scheduled on the next one to happen."""
    for _ in range(5):
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("size", [1024, 1024 * 1024])
def test_streams_echo_over_tls_returns_every_byte(loop: asyncio.AbstractEventLoop, size: int) -> None:
    async def main() -> bytes:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_context())
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(), server_hostname="localhost"
        )
        payload = os.urandom(size)
        writer.write(payload)
        got = await reader.readexactly(size)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        assert got == payload
        return got

    assert len(run(loop, main())) == size


def test_tls_transport_reports_the_session(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> dict[str, Any]:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_context())
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context(), server_hostname="localhost")
        info = {
            name: writer.get_extra_info(name)
            for name in ("ssl_object", "peercert", "cipher", "compression", "sslcontext", "peername", "socket")
        }
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return info

    info = run(loop, main())
    assert isinstance(info["ssl_object"], ssl.SSLObject)
    assert info["ssl_object"].version() == "TLSv1.3"
    assert dict(pair[0] for pair in info["peercert"]["subject"]) == {"commonName": "localhost"}
    assert info["cipher"][1] == "TLSv1.3"
    assert info["compression"] is None
    assert isinstance(info["sslcontext"], ssl.SSLContext)
    assert info["peername"][0] == "127.0.0.1"
    assert info["socket"] is not None


def test_unverifiable_certificate_fails_the_connection_and_frees_the_socket(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_context())
        port = server.sockets[0].getsockname()[1]
        before = open_fds()
        # The default context does not trust the test CA.
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection("127.0.0.1", port, ssl=True, server_hostname="localhost")
        with pytest.raises(ssl.SSLCertVerificationError, match=r"[Hh]ostname mismatch"):
            await asyncio.open_connection("127.0.0.1", port, ssl=client_context(), server_hostname="example.org")
        await settle(loop)
        assert open_fds() == before
        # The server and the loop go on.
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(), server_hostname="localhost"
        )
        writer.write(b"still there")
        assert await reader.readexactly(11) == b"still there"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_a_server_that_never_answers_times_the_handshake_out(loop: asyncio.AbstractEventLoop) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def main() -> float:
        start = loop.time()
        with pytest.raises(ConnectionAbortedError, match=r"SSL handshake is taking longer than 0\.2 seconds"):
            await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_context(), server_hostname="localhost", ssl_handshake_timeout=0.2
            )
        return loop.time() - start

    try:
        took = run(loop, main())
    finally:
        listener.close()
    assert 0.15 < took < 5


def test_a_peer_that_drops_mid_handshake_fails_the_connection(loop: asyncio.AbstractEventLoop) -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    async def main() -> None:
        server = await asyncio.start_server(drop, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        before = open_fds()
        with pytest.raises(ConnectionError):
            await asyncio.open_connection("127.0.0.1", port, ssl=client_context(), server_hostname="localhost")
        await settle(loop)
        assert open_fds() == before
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_a_client_speaking_plaintext_does_not_stop_the_tls_server(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_context())
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        # The server ends the connection: EOF, or a reset.
        try:
            assert await reader.read() == b""
        except ConnectionResetError:
            pass
        writer.close()
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(), server_hostname="localhost"
        )
        writer.write(b"ping")
        got = await reader.readexactly(4)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == b"ping"


def test_close_sends_close_notify_and_the_peer_sees_a_clean_eof(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[Any] = []

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            seen.append(data)

        def eof_received(self) -> None:
            seen.append("eof")

        def connection_lost(self, exc: BaseException | None) -> None:
            seen.append(("lost", exc))
            self.transport.close()

    async def main() -> None:
        server = await loop.create_server(Server, "127.0.0.1", 0, ssl=server_context())
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(
            asyncio.Protocol, "127.0.0.1", port, ssl=client_context(), server_hostname="localhost"
        )
        transport.write(b"bye")
        transport.close()
        for _ in range(200):
            if seen and seen[-1] == ("lost", None):
                break
            await asyncio.sleep(0.01)
        server.close()
        await server.wait_closed()

    run(loop, main())
    # 3.10's TLS protocol does not pass the close_notify on as eof_received().
    assert seen == ([b"bye", "eof", ("lost", None)] if sys.version_info >= (3, 11) else [b"bye", ("lost", None)])


def test_server_close_reaches_the_client_as_eof(loop: asyncio.AbstractEventLoop) -> None:
    async def greet_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    async def main() -> bytes:
        server = await asyncio.start_server(greet_and_close, "127.0.0.1", 0, ssl=server_context())
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context(), server_hostname="localhost"
        )
        got = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == b"hello"


def test_start_tls_upgrades_a_plain_connection_on_both_sides(loop: asyncio.AbstractEventLoop) -> None:
    upgraded: asyncio.Future[asyncio.Transport] = loop.create_future()

    class StartTlsServer(asyncio.Protocol):
        """Answers b"STARTTLS" with b"GO", upgrades, then answers the first
        message over TLS in upper case."""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.received: asyncio.Future[bytes] = loop.create_future()

        def data_received(self, data: bytes) -> None:
            if data == b"STARTTLS":
                self.transport.write(b"GO")  # type: ignore[attr-defined]
                # The client's hello may arrive before the upgrade task runs.
                self.transport.pause_reading()  # type: ignore[attr-defined]
                loop.create_task(self.upgrade())
            else:
                self.received.set_result(data)

        async def upgrade(self) -> None:
            tls = await loop.start_tls(self.transport, self, server_context(), server_side=True)  # type: ignore[arg-type]
            tls.write((await self.received).upper())  # type: ignore[union-attr]
            upgraded.set_result(tls)  # type: ignore[arg-type]

    async def main() -> tuple[bytes, bytes]:
        server = await loop.create_server(StartTlsServer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"STARTTLS")
        go = await reader.readexactly(2)
        transport = await loop.start_tls(
            writer.transport, writer.transport.get_protocol(), client_context(), server_hostname="localhost"
        )
        assert transport is not None
        assert transport.get_extra_info("ssl_object") is not None
        transport.write(b"secret")
        reply = await reader.readexactly(6)
        server_transport = await upgraded
        assert server_transport.get_extra_info("ssl_object").server_side
        transport.close()
        writer.close()
        server_transport.close()
        server.close()
        await server.wait_closed()
        return go, reply

    assert run(loop, main()) == (b"GO", b"SECRET")


def test_tls_over_unix_sockets(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "tls.sock")
            server = await asyncio.start_unix_server(echo, path, ssl=server_context())
            reader, writer = await asyncio.open_unix_connection(path, ssl=client_context(), server_hostname="localhost")
            writer.write(b"over unix")
            got = await reader.readexactly(9)
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()
            return got

    assert run(loop, main()) == b"over unix"


def test_connect_accepted_socket_serves_tls(loop: asyncio.AbstractEventLoop) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)  # type: ignore[attr-defined]

    async def main() -> bytes:
        connecting = asyncio.ensure_future(
            asyncio.open_connection("127.0.0.1", port, ssl=client_context(), server_hostname="localhost")
        )
        conn, _ = await loop.sock_accept(listener)
        accepted, _ = await loop.connect_accepted_socket(Echo, conn, ssl=server_context())
        reader, writer = await connecting
        writer.write(b"accepted")
        got = await reader.readexactly(8)
        writer.close()
        accepted.close()
        await writer.wait_closed()
        return got

    try:
        assert run(loop, main()) == b"accepted"
    finally:
        listener.close()


def test_sendfile_over_tls_sends_the_file(loop: asyncio.AbstractEventLoop) -> None:
    content = os.urandom(200_000)

    async def main() -> bytes:
        received = bytearray()
        done = loop.create_future()

        async def collect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.extend(await reader.readexactly(len(content)))
            done.set_result(None)
            writer.close()

        server = await asyncio.start_server(collect, "127.0.0.1", 0, ssl=server_context())
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(
            asyncio.Protocol, "127.0.0.1", port, ssl=client_context(), server_hostname="localhost"
        )
        with tempfile.TemporaryFile() as file:
            file.write(content)
            file.seek(0)
            sent = await loop.sendfile(transport, file)
        await done
        transport.close()
        server.close()
        await server.wait_closed()
        assert sent == len(content)
        return bytes(received)

    assert run(loop, main()) == content


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda loop: loop.create_connection(asyncio.Protocol, "127.0.0.1", 1, server_hostname="x"),
            ValueError,
            "server_hostname is only meaningful with ssl",
        ),
        (
            lambda loop: loop.create_connection(asyncio.Protocol, "127.0.0.1", 1, ssl_handshake_timeout=1),
            ValueError,
            "ssl_handshake_timeout is only meaningful with ssl",
        ),
        (
            lambda loop: loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=True),
            TypeError,
            "ssl argument must be an SSLContext or None",
        ),
        (
            lambda loop: loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl_handshake_timeout=1),
            ValueError,
            "ssl_handshake_timeout is only meaningful with ssl",
        ),
        (
            lambda loop: loop.create_unix_connection(asyncio.Protocol, "/nonexistent", ssl=client_context()),
            ValueError,
            "server_hostname when using ssl",
        ),
    ],
)
def test_bad_tls_arguments_are_refused_and_the_loop_goes_on(
    loop: asyncio.AbstractEventLoop, call: Any, error: type[Exception], message: str
) -> None:
    before = open_fds()
    with pytest.raises(error, match=message):
        run(loop, call(loop))
    run(loop, settle(loop))
    assert open_fds() == before
    assert run(loop, asyncio.sleep(0, "usable")) == "usable"


@pytest.mark.parametrize("loop", ["mioloop"], indirect=True)
def test_a_bad_handshake_timeout_is_refused_before_connecting(loop: asyncio.AbstractEventLoop) -> None:
    """asyncio connects first, then its TLS protocol refuses the timeout and the
    connected socket is left open; mioloop checks before connecting."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        before = open_fds()
        with pytest.raises(ValueError, match="ssl_handshake_timeout should be a positive number, got -1"):
            run(
                loop,
                loop.create_connection(
                    asyncio.Protocol, "127.0.0.1", port, ssl=client_context(), ssl_handshake_timeout=-1
                ),
            )
        with pytest.raises(ValueError, match="ssl_shutdown_timeout should be a positive number, got 0"):
            run(
                loop, loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=server_context(), ssl_shutdown_timeout=0)
            )
        assert open_fds() == before
    finally:
        listener.close()


def test_start_tls_refuses_what_it_cannot_upgrade(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        with pytest.raises(TypeError, match=r"sslcontext is expected to be an instance of ssl\.SSLContext"):
            await loop.start_tls(writer.transport, writer.transport.get_protocol(), "not a context")  # type: ignore[arg-type]

        class NotUpgradable(asyncio.Transport):
            pass

        with pytest.raises(TypeError, match="is not supported by start_tls"):
            await loop.start_tls(NotUpgradable(), asyncio.Protocol(), client_context())
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(loop, main())


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ssl_shutdown_timeout is new in 3.11")
def test_shutdown_timeout_aborts_a_peer_that_never_answers_close_notify(loop: asyncio.AbstractEventLoop) -> None:
    """The client closes; the server reads nothing more, so its close_notify never
    comes back: after ``ssl_shutdown_timeout`` the client's connection is aborted."""
    accepted: list[socket.socket] = []

    async def main() -> tuple[float, Any]:
        raw = socket.create_server(("127.0.0.1", 0))
        port = raw.getsockname()[1]
        server_ctx = server_context()
        lost: asyncio.Future[Any] = loop.create_future()

        class Client(asyncio.Protocol):
            def connection_lost(self, exc: BaseException | None) -> None:
                lost.set_result(exc)

        def serve() -> None:
            conn, _ = raw.accept()
            accepted.append(conn)
            tls = server_ctx.wrap_socket(conn, server_side=True)
            accepted.append(tls)
            # Handshake done; then silence (no close_notify answer).

        serving = loop.run_in_executor(None, serve)
        transport, _ = await loop.create_connection(
            Client,
            "127.0.0.1",
            port,
            ssl=client_context(),
            server_hostname="localhost",
            ssl_shutdown_timeout=0.3,
        )
        await serving
        start = loop.time()
        transport.close()
        exc = await lost
        raw.close()
        return loop.time() - start, exc

    took, exc = run(loop, main())
    for sock in accepted:
        sock.close()
    assert 0.2 < took < 5
    assert exc is None or isinstance(exc, (TimeoutError, ConnectionError))


#: asyncio hands a server's buffered bytes to start_tls's TLS protocol from 3.14
#: (CPython gh-142352); mioloop does on every version with that TLS protocol.
BUFFERED_HELLO = ["mioloop", "asyncio"] if sys.version_info >= (3, 14) else ["mioloop"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10's TLS protocol buffers nothing before its handshake")
@pytest.mark.parametrize("loop", BUFFERED_HELLO, indirect=True)
def test_start_tls_on_a_server_uses_the_hello_already_read(loop: asyncio.AbstractEventLoop) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The client's hello is in the reader's buffer before the server upgrades.
        while not reader._buffer:  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)
        await writer.start_tls(server_context())
        line = await reader.readline()
        writer.write(line.upper())
        await writer.drain()
        writer.close()

    async def main() -> bytes:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await writer.start_tls(client_context(), server_hostname="localhost")
        writer.write(b"ping\n")
        reply = await reader.readline()
        writer.close()
        server.close()
        await server.wait_closed()
        return reply

    assert run(loop, main()) == b"PING\n"


#: asyncio's own loop leaves no cycle after a failed handshake from 3.14
#: (CPython gh-159049); mioloop on every version.
NO_CYCLES = ["mioloop", "asyncio"] if sys.version_info >= (3, 14) else ["mioloop"]


@pytest.mark.parametrize("loop", NO_CYCLES, indirect=True)
def test_a_refused_certificate_leaves_no_cycle_holding_the_transport(loop: asyncio.AbstractEventLoop) -> None:
    from asyncio import sslproto
    from unittest import mock

    made: list[tuple[weakref.ref[asyncio.BaseTransport], Any]] = []
    server_side_lost = asyncio.Event()
    connection_made = sslproto.SSLProtocol.connection_made
    connection_lost = sslproto.SSLProtocol.connection_lost

    def remember(protocol: sslproto.SSLProtocol, transport: asyncio.BaseTransport) -> None:
        made.append((weakref.ref(transport), transport.get_extra_info("peername")))
        connection_made(protocol, transport)

    def lost(protocol: sslproto.SSLProtocol, exc: BaseException | None) -> None:
        if protocol._server_side:
            server_side_lost.set()
        connection_lost(protocol, exc)

    async def main() -> int:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_context())
        port: int = server.sockets[0].getsockname()[1]
        with (
            mock.patch.object(sslproto.SSLProtocol, "connection_made", remember),
            mock.patch.object(sslproto.SSLProtocol, "connection_lost", lost),
        ):
            with pytest.raises(ssl.SSLCertVerificationError):
                # Not our test CA: the server's certificate is refused.
                await asyncio.open_connection(
                    "127.0.0.1", port, ssl=ssl.create_default_context(), server_hostname="localhost"
                )
            # The server's end hears of it too, before the loop closes.
            await asyncio.wait_for(server_side_lost.wait(), 10)
        server.close()
        return port

    gc.collect()
    gc.disable()
    try:
        port = run(loop, main())
        # The client's transport is the one connected to the server's port.
        clients = [ref() for ref, peer in made if peer[1] == port]
    finally:
        gc.enable()
    assert clients == [None]
