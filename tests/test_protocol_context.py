"""The context a protocol's callbacks run in: a copy of the one current where the
server, connection, endpoint, pipe or subprocess was made (frameworks keep
request-scoped state in context variables). Each scenario runs on mioloop and on
asyncio's own loop with the same expectations.

Every test sets ``var`` to ``"made"`` where the transport is made, then to
``"later"`` before the peer does anything: callbacks that see ``"later"`` ran in
the current context, ``"unset"`` the loop's own."""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import run

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

CERTS = Path(__file__).parent / "certs"


class Seen:
    """Records which value of ``var`` each protocol callback saw."""

    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = {}
        self.lost = asyncio.get_running_loop().create_future()

    def saw(self, name: str) -> None:
        self.seen.setdefault(name, set()).add(var.get())

    def values(self) -> set[str]:
        return set().union(*self.seen.values())


class StreamSeen(Seen, asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.saw("connection_made")

    def data_received(self, data: bytes) -> None:
        self.saw("data_received")

    def eof_received(self) -> None:
        self.saw("eof_received")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.saw("connection_lost")
        self.lost.set_result(None)


class BufferedSeen(Seen, asyncio.BufferedProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.saw("connection_made")

    def get_buffer(self, sizehint: int) -> bytearray:
        self.saw("get_buffer")
        return bytearray(1024)

    def buffer_updated(self, nbytes: int) -> None:
        self.saw("buffer_updated")

    def eof_received(self) -> None:
        self.saw("eof_received")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.saw("connection_lost")
        self.lost.set_result(None)


class DatagramSeen(Seen, asyncio.DatagramProtocol):
    def __init__(self) -> None:
        super().__init__()
        self.received = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.saw("connection_made")

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.saw("datagram_received")
        if not self.received.done():
            self.received.set_result(None)

    def error_received(self, exc: Exception) -> None:
        self.saw("error_received")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.saw("connection_lost")
        self.lost.set_result(None)


@pytest.mark.parametrize("protocol", [StreamSeen, BufferedSeen])
def test_a_servers_connections_see_the_context_the_server_was_made_in(
    loop: asyncio.AbstractEventLoop, protocol: type[Seen]
) -> None:
    async def main() -> tuple[set[str], dict[str, set[str]]]:
        made: list[Seen] = []
        factory_saw: set[str] = set()

        def factory() -> Any:
            factory_saw.add(var.get())
            made.append(protocol())
            return made[-1]

        var.set("made")
        server = await loop.create_server(factory, "127.0.0.1", 0)
        var.set("later")
        client = socket.create_connection(server.sockets[0].getsockname())
        client.setblocking(False)
        await loop.sock_sendall(client, b"data")
        client.shutdown(socket.SHUT_WR)
        while not made:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        client.close()
        await made[0].lost
        server.close()
        await server.wait_closed()
        return factory_saw, made[0].seen

    factory_saw, seen = run(loop, main())
    assert factory_saw == {"made"}
    assert all(values == {"made"} for values in seen.values()), seen
    assert "connection_lost" in seen and "eof_received" in seen


def test_a_connections_callbacks_see_the_context_it_was_made_in(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> dict[str, set[str]]:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        var.set("made")
        connecting = asyncio.ensure_future(
            loop.create_connection(StreamSeen, *listener.getsockname()[:2])  # type: ignore[arg-type]
        )
        peer, _ = await loop.sock_accept(listener)
        _, proto = await connecting
        var.set("later")
        await loop.sock_sendall(peer, b"data")
        peer.shutdown(socket.SHUT_WR)
        await asyncio.sleep(0.05)
        peer.close()
        await proto.lost
        listener.close()
        return proto.seen

    seen = run(loop, main())
    assert set(seen) == {"connection_made", "data_received", "eof_received", "connection_lost"}
    assert all(values == {"made"} for values in seen.values()), seen


def test_a_tls_servers_protocol_sees_the_context_the_server_was_made_in(loop: asyncio.AbstractEventLoop) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(CERTS / "server.pem")
    client_ctx = ssl.create_default_context(cafile=str(CERTS / "ca.pem"))

    async def main() -> dict[str, set[str]]:
        made: list[StreamSeen] = []

        def factory() -> StreamSeen:
            made.append(StreamSeen())
            return made[-1]

        var.set("made")
        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_ctx)
        var.set("later")
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
        writer.write(b"data")
        await writer.drain()
        while not made or "data_received" not in made[0].seen:
            await asyncio.sleep(0.001)
        writer.close()
        await writer.wait_closed()
        await made[0].lost
        made[0].transport.close()  # 3.10's TLS transport warns if left open
        server.close()
        await server.wait_closed()
        return made[0].seen

    seen = run(loop, main())
    assert {"connection_made", "data_received", "connection_lost"} <= set(seen)
    assert all(values == {"made"} for values in seen.values()), seen


def test_a_datagram_endpoints_callbacks_see_the_context_it_was_made_in(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        var.set("made")
        transport, proto = await loop.create_datagram_endpoint(DatagramSeen, local_addr=("127.0.0.1", 0))
        # A peer that is gone: the port's refusal comes back on a connected socket.
        closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()
        closed.close()
        refused, refused_proto = await loop.create_datagram_endpoint(DatagramSeen, remote_addr=dead)
        var.set("later")
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.sendto(b"data", transport.get_extra_info("sockname"))
        await proto.received
        while "error_received" not in refused_proto.seen:
            refused.sendto(b"x")
            await asyncio.sleep(0.01)
        sender.close()
        var.set("made")  # closed by us: connection_lost runs in the closer's context
        transport.close()
        refused.close()
        await proto.lost
        await refused_proto.lost
        return proto.seen, refused_proto.seen

    seen, refused_seen = run(loop, main())
    assert set(seen) == {"connection_made", "datagram_received", "connection_lost"}, seen
    assert "error_received" in refused_seen
    assert all(values == {"made"} for values in [*seen.values(), *refused_seen.values()]), (seen, refused_seen)


def test_a_read_pipes_callbacks_see_the_context_it_was_made_in(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> dict[str, set[str]]:
        r, w = os.pipe()
        var.set("made")
        _, proto = await loop.connect_read_pipe(StreamSeen, os.fdopen(r, "rb", 0))
        var.set("later")
        os.write(w, b"data")
        await asyncio.sleep(0.02)
        os.close(w)
        await proto.lost
        return proto.seen

    seen = run(loop, main())
    assert {"connection_made", "data_received", "eof_received", "connection_lost"} == set(seen)
    assert all(values == {"made"} for values in seen.values()), seen


class SubprocessSeen(Seen, asyncio.SubprocessProtocol):
    def __init__(self) -> None:
        super().__init__()
        self.exited = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.saw("connection_made")

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.saw("pipe_data_received")

    def pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self.saw(f"pipe_connection_lost {fd}")

    def process_exited(self) -> None:
        self.saw("process_exited")
        self.exited.set_result(None)


@pytest.mark.parametrize("exit_seen_by", ["pidfd", "thread"])
def test_a_subprocess_protocols_callbacks_see_the_context_it_was_started_in(
    loop: asyncio.AbstractEventLoop, exit_seen_by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if exit_seen_by == "thread":
        monkeypatch.delattr(os, "pidfd_open", raising=False)  # mioloop's fallback
        # asyncio 3.12 and 3.13 keep the child watcher their policy chose first.
        get_policy = getattr(asyncio.events, "_get_event_loop_policy", asyncio.get_event_loop_policy)
        if hasattr(get_policy(), "_watcher"):
            monkeypatch.setattr(get_policy(), "_watcher", None)
        # From 3.14 asyncio's loop picks its watcher when it is made.
        threaded = getattr(asyncio.unix_events, "_ThreadedChildWatcher", None)
        if hasattr(loop, "_watcher") and threaded is not None:
            monkeypatch.setattr(loop, "_watcher", threaded())

    async def main() -> dict[str, set[str]]:
        var.set("made")
        transport, proto = await loop.subprocess_exec(
            SubprocessSeen, sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read())"
        )
        var.set("later")
        stdin = transport.get_pipe_transport(0)
        stdin.write(b"data")  # type: ignore[union-attr]
        stdin.write_eof()  # type: ignore[union-attr]
        await proto.exited
        await asyncio.sleep(0.05)
        transport.close()
        return proto.seen

    seen = run(loop, main())
    assert set(seen) == {
        "connection_made",
        "pipe_data_received",
        "pipe_connection_lost 0",
        "pipe_connection_lost 1",
        "pipe_connection_lost 2",
        "process_exited",
    }
    # stdin was closed by write_eof() in "later": as asyncio, the closer's context.
    assert seen.pop("pipe_connection_lost 0") == {"later"}
    if isinstance(loop, asyncio.SelectorEventLoop) and (exit_seen_by == "thread" or sys.version_info < (3, 12)):
        # asyncio's threaded child watcher reports the exit from its thread (it
        # is the watcher before 3.12, and here without pidfds).
        assert seen.pop("process_exited") == {"unset"}
    assert all(values == {"made"} for values in seen.values()), seen
