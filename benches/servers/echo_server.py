"""TCP echo servers for the echo workload, one per loop; each echoes every read back.

    python benches/servers/echo_server.py KIND[/STYLE] PORT

KIND is a loop; for the asyncio-API loops STYLE picks the server's code: a
``Protocol`` (the default), a ``BufferedProtocol`` (``/buffered``) or asyncio streams
(``/streams``). Prints ``ready`` once listening; with a ``skip: reason`` line and exit code 3 if the
loop's package is missing.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workloads import LOOPS, Unavailable, make_loop

#: The loops of the micro workloads, made the same way.
KINDS = LOOPS
STYLES = ["", "buffered", "streams"]
READ_SIZE = 256 * 1024


def serve_mioloop(port: int) -> None:
    """Tornado style: ``add_handler`` and non-blocking sockets."""
    from mioloop import IOLoop

    io_loop = IOLoop()
    pending: dict[socket.socket, bytes] = {}
    # One reusable buffer, as Tornado's IOStream reads with recv_into: no allocation
    # per read.
    buf = bytearray(READ_SIZE)
    view = memoryview(buf)

    def on_client(conn: socket.socket, events: int) -> None:
        try:
            if events & IOLoop.WRITE:
                data = pending.pop(conn)
                sent = conn.send(data)
            else:
                n = conn.recv_into(buf)
                if not n:
                    raise ConnectionResetError
                sent = conn.send(view[:n])
                if sent < n:
                    data = bytes(view[sent:n])
                    sent = 0
                else:
                    return
        except BlockingIOError:
            return
        except OSError:
            pending.pop(conn, None)
            io_loop.remove_handler(conn)
            conn.close()
            return
        if sent < len(data):
            pending[conn] = data[sent:]
            io_loop.update_handler(conn, IOLoop.WRITE)
        else:
            io_loop.update_handler(conn, IOLoop.READ)

    def on_accept(sock: socket.socket, events: int) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            io_loop.add_handler(conn, on_client, IOLoop.READ)

    server = socket.create_server(("127.0.0.1", port), backlog=128)
    server.setblocking(False)
    io_loop.add_handler(server, on_accept, IOLoop.READ)
    print("ready", flush=True)
    io_loop.start()


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


class BufferedEchoProtocol(asyncio.BufferedProtocol):
    """Reads into one reusable buffer (no ``bytes`` per read) and writes from it."""

    def __init__(self) -> None:
        self.buf = bytearray(READ_SIZE)
        self.view = memoryview(self.buf)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        self.transport.write(self.view[:nbytes])  # type: ignore[attr-defined]


async def echo_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(READ_SIZE):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


def serve_protocol(loop: asyncio.AbstractEventLoop, port: int, style: str) -> None:
    """asyncio style: a Protocol (or BufferedProtocol) writing the data back, or a
    streams handler."""
    asyncio.set_event_loop(loop)
    if style == "streams":
        server = loop.run_until_complete(asyncio.start_server(echo_stream, "127.0.0.1", port))
    else:
        factory = BufferedEchoProtocol if style == "buffered" else EchoProtocol
        server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", port))
    print("ready", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


def serve_tornado(port: int) -> None:
    """Tornado 6: ``TCPServer`` and ``IOStream``."""
    from tornado.iostream import StreamClosedError
    from tornado.tcpserver import TCPServer

    class EchoServer(TCPServer):
        async def handle_stream(self, stream, address):  # type: ignore[no-untyped-def]
            stream.set_nodelay(True)
            try:
                while True:
                    data = await stream.read_bytes(READ_SIZE, partial=True)
                    await stream.write(data)
            except StreamClosedError:
                pass

    async def main() -> None:
        EchoServer().listen(port, "127.0.0.1")
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.get_event_loop().run_until_complete(main())


def main() -> int:
    kind, _, style = sys.argv[1].partition("/")
    port = int(sys.argv[2])
    if kind not in KINDS or style not in STYLES or (style and (kind == "mioloop" or kind.startswith("tornado-"))):
        print(f"skip: unknown kind {sys.argv[1]}", flush=True)
        return 3
    if kind == "mioloop":
        serve_mioloop(port)
        return 0
    try:
        # The loops are made as the micro workloads make them (Tornado's kinds install
        # the asyncio loop underneath and return Tornado's IOLoop).
        loop = make_loop(kind)
    except Unavailable as e:
        print(f"skip: {e}", flush=True)
        return 3
    if kind.startswith("tornado-"):
        serve_tornado(port)
    else:
        serve_protocol(loop, port, style)
    return 0


if __name__ == "__main__":
    sys.exit(main())
