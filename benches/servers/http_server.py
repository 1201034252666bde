"""A "hello world" HTTP server of one framework under one loop (the HTTP workload).

    python benches/servers/http_server.py FRAMEWORK KIND PORT

FRAMEWORK is ``tornado`` (a ``tornado.web.Application``), ``uvicorn`` (uvicorn with
httptools serving a Starlette app) or ``aiohttp`` (an ``aiohttp.web.Application``);
each answers ``GET /`` with a plain-text "Hello, world" and keeps the connection
alive. Prints ``ready`` once listening; ``skip: reason`` and exit code 3 if it
cannot run.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workloads import Unavailable, make_loop

#: ``mioloop``: a mioloop loop, on which Tornado's IOLoop is ``mioloop.TornadoIOLoop``
#: (Tornado only); ``mioloop-asyncio``: mioloop's asyncio loop, under Tornado's own
#: asyncio glue (``AsyncIOMainLoop``, made before Tornado asks) for Tornado.
KINDS = ["mioloop", "mioloop-asyncio", "asyncio", "uvloop", "rloop"]
FRAMEWORKS = ["tornado", "uvicorn", "aiohttp"]
TEXT = "Hello, world"


async def tornado_server(port: int, kind: str) -> None:
    import tornado.web
    from tornado.platform.asyncio import AsyncIOMainLoop

    class Hello(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write(TEXT)

    if kind == "mioloop-asyncio":
        AsyncIOMainLoop()  # Tornado's glue, mapped to this loop before Tornado asks
    app = tornado.web.Application([(r"/", Hello)])
    app.listen(port, "127.0.0.1", xheaders=False)


async def uvicorn_server(port: int, kind: str) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(TEXT)

    app = Starlette(routes=[Route("/", hello)])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http="httptools", lifespan="off", access_log=False, log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # startup failed: its exception
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)


async def aiohttp_server(port: int, kind: str) -> None:
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=TEXT)

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()


SERVERS: dict[str, Callable[[int, str], Awaitable[None]]] = {
    "tornado": tornado_server,
    "uvicorn": uvicorn_server,
    "aiohttp": aiohttp_server,
}


def main() -> int:
    framework, kind, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if framework not in FRAMEWORKS or kind not in KINDS:
        print(f"skip: unknown server {framework} {kind}", flush=True)
        return 3
    if kind == "mioloop" and framework != "tornado":
        print("skip: the IOLoop face serves Tornado only", flush=True)
        return 3
    try:
        loop = make_loop("mioloop-asyncio" if kind.startswith("mioloop") else kind)
        __import__(framework)
    except (ImportError, Unavailable) as e:
        print(f"skip: {e}", flush=True)
        return 3

    async def serve() -> None:
        await SERVERS[framework](port, kind)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.set_event_loop(loop)
    loop.run_until_complete(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
