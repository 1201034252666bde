"""aiohttp's server and client on the asyncio face: plain HTTP, HTTPS and
WebSockets, each run on mioloop and on asyncio's own loop with the same
expectations."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
from aiohttp import web

from .conftest import run

CERTS = Path(__file__).parent / "certs"


async def serve_and_fetch() -> list[str]:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello " + request.query.get("name", "?"))

    async def shout(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            await socket.send_str(message.data.upper())
        return socket

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/ws", shout)
    runner = web.AppRunner(app)
    await runner.setup()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(CERTS / "server.pem")
    plain = web.TCPSite(runner, "127.0.0.1", 0)
    secure = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await plain.start()
    await secure.start()
    plain_port = plain._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    secure_port = secure._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client_ctx = ssl.create_default_context(cafile=str(CERTS / "ca.pem"))
    replies = []
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{plain_port}/?name=plain") as response:
                replies.append(await response.text())
            async with session.get(f"https://localhost:{secure_port}/?name=tls", ssl=client_ctx) as response:
                replies.append(await response.text())
            async with session.ws_connect(f"http://127.0.0.1:{plain_port}/ws") as socket:
                await socket.send_str("ping")
                replies.append((await socket.receive()).data)
    finally:
        await runner.cleanup()
    return replies


def test_aiohttp_serves_http_https_and_websockets(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        assert run(loop, serve_and_fetch()) == ["hello plain", "hello tls", "PING"]
    finally:
        asyncio.set_event_loop(None)
